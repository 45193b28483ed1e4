"""Pair agreements computed where the cases were scored (the stability tests, on xdist
workers) give the report exactly what it would compute itself."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest

from logprob_eval.experiments.metrics import MatrixCache
from logprob_eval.experiments.stability import PairAgreement, pair_agreement, stability_summary
from logprob_eval.experiments.table import to_frame
from logprob_eval.experiments.transforms import apply_transforms, split_content_free

LABELS = ["Art", "Food", "Science", "Sports"]
TEXTS = [f"t{i}" for i in range(12)] + ["__cf__:N/A", "__cf__:"]


@pytest.fixture
def grid():
    """Random scores for 3 templates x 2 label phrasings of one model (seeded)."""
    rng = np.random.default_rng(7)
    rows = []
    for template, label_set in itertools.product(["simple", "json", "question"], ["a", "b"]):
        for i, text in enumerate(TEXTS):
            for j, label in enumerate(LABELS):
                rows.append(
                    {
                        "example_id": text,
                        "model": "local:m",
                        "method": "exact",
                        "template": template,
                        "label_set": label_set,
                        "label": label,
                        "logprob": float(-rng.exponential(2.0)),
                        "status": "exact",
                        "is_true": (not text.startswith("__cf__")) and j == i % 4,
                        "n_tokens": 1 + j % 2,
                    }
                )
    return to_frame(rows)


def _pairs_as_a_worker_computes_them(df):
    real, content_free = split_content_free(df)
    transformed, _ = apply_transforms(real, content_free=content_free)
    cache = MatrixCache(transformed)
    configs = sorted(real["config"].unique())
    return {
        (a, b): pair_agreement(cache, b, a)  # either order: stored in config order
        for a, b in itertools.combinations(configs, 2)
    }


def test_precomputed_pairs_give_the_same_summary(grid):
    pairs = _pairs_as_a_worker_computes_them(grid)
    shipped = {  # through JSON, as the xdist workers hand them over
        k: PairAgreement.from_json(json.loads(json.dumps(p.as_json()))) for k, p in pairs.items()
    }
    alone = stability_summary(grid)
    given = stability_summary(grid, pairs=shipped)
    assert json.dumps(given, sort_keys=True) == json.dumps(alone, sort_keys=True)
    assert alone["agreement"]["template"] and alone["transforms"]["pmi"]["mean_kendall_tau"]


def test_the_summary_reads_the_given_pairs_instead_of_recomputing(grid):
    pairs = _pairs_as_a_worker_computes_them(grid)
    for p in pairs.values():  # marked values: they must come out as given
        p.transform_taus = dict.fromkeys(p.transform_taus, 0.25)
        p.agreement = dataclasses.replace(p.agreement, top1_agreement=0.5)
    summary = stability_summary(grid, pairs=pairs)
    assert {t["mean_kendall_tau"] for t in summary["transforms"].values()} == {0.25}
    assert {a["top1_agreement"] for a in summary["agreement"]["template"]} == {0.5}


def test_pairs_missing_a_transform_are_not_used(grid):
    pairs = _pairs_as_a_worker_computes_them(grid)
    for p in pairs.values():  # computed with other transforms: stale for this summary
        p.transform_taus.pop("pmi")
        p.transform_taus["raw"] = 0.25
    summary = stability_summary(grid, pairs=pairs)
    assert json.dumps(summary, sort_keys=True) == json.dumps(
        stability_summary(grid), sort_keys=True
    )
