"""The stability experiment: models x templates x label phrasings over one dataset sample.

Quantifies the study's claim (absolute log-probs move with model, prompt and phrasing;
rankings hold, or don't): per-config ranking metrics, agreement between configs that
differ in one factor, and per transform the spread of the true label's score across
configs and the mean rank agreement.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..backends.base import Backend
from ..backends.jobs import DEFAULT_CONCURRENCY, ScoreRow, make_jobs, score_jobs
from ..data.datasets import Dataset, Example
from ..data.prompts import LabelSet, Template
from .metrics import (
    AgreementMetrics,
    MatrixCache,
    agreement,
    group_tau,
    mean_kendall_tau,
    ranking_metrics,
)
from .table import to_frame
from .transforms import (
    CONTENT_FREE_INPUTS,
    CONTENT_FREE_PREFIX,
    TRANSFORMS,
    apply_transforms,
    split_content_free,
)

__all__ = [
    "PairAgreement",
    "content_free_examples",
    "pair_agreement",
    "run_grid",
    "stability_summary",
]


def content_free_examples(inputs: Sequence[str] = CONTENT_FREE_INPUTS) -> list[Example]:
    return [Example(f"{CONTENT_FREE_PREFIX}{t}", t, ()) for t in inputs]


def run_grid(
    backends: Sequence[Backend],
    dataset: Dataset,
    templates: Sequence[Template],
    label_sets: Sequence[LabelSet],
    *,
    content_free: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = False,
    on_rows: Callable[[list[ScoreRow]], None] | None = None,
    scorer: Callable[..., list[ScoreRow]] = score_jobs,
) -> pd.DataFrame:
    """Score the whole grid; content-free inputs too when ``content_free`` (calibration).
    ``scorer`` has :func:`~logprob_eval.backends.jobs.score_jobs`'s signature (e.g. a batch run)."""
    examples: list[Example] = list(dataset)
    if content_free:
        examples += content_free_examples()
    rows: list[ScoreRow] = []
    for backend in backends:
        jobs = make_jobs(examples, templates, label_sets)
        rows += scorer(
            backend,
            jobs,
            concurrency=concurrency,
            progress=progress,
            on_result=(lambda i, r: on_rows(r)) if on_rows else None,
        )
    return to_frame(rows)


def _pairs_differing_in(configs: pd.DataFrame, factor: str) -> list[tuple[str, str]]:
    others = [c for c in ("model", "method", "template", "label_set") if c != factor]
    pairs = []
    for _, grp in configs.groupby(others):
        ids = sorted(grp["config"])
        pairs += list(itertools.combinations(ids, 2))
    return pairs


@dataclass
class PairAgreement:
    """How config ``b`` agrees with config ``a`` (``a`` < ``b``): the agreement metrics on
    the raw scores and the mean per-text Kendall tau under each score transform. Depends
    on the two configs' rows only, so it can be computed where they were scored."""

    agreement: AgreementMetrics
    transform_taus: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.agreement.as_dict(),
            "tau_by_text": self.agreement.tau_by_text,
            "transform_taus": self.transform_taus,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PairAgreement:
        fields_ = {k: v for k, v in data.items() if k != "transform_taus"}
        return cls(AgreementMetrics(**fields_), dict(data["transform_taus"]))


def pair_agreement(
    transformed: MatrixCache, a: str, b: str, transforms: Sequence[str] = TRANSFORMS
) -> PairAgreement:
    """:class:`PairAgreement` of configs ``a`` and ``b`` (in config order) from a cache of
    their rows after :func:`~.transforms.apply_transforms` (content-free rows left out)."""
    a, b = sorted((a, b))
    return PairAgreement(
        agreement(None, a, b, cache=transformed),
        {t: mean_kendall_tau(transformed, a, b, score=f"score_{t}") for t in transforms},
    )


def _tau_groups(configs: pd.DataFrame, objects: dict[str, list[Any]]) -> dict[str, Any]:
    """Mean per-text Kendall tau of each group of configs differing only in the template
    (or only in the label phrasing), with its bootstrap interval over texts."""
    out: dict[str, Any] = {}
    row = configs.set_index("config")
    for factor in ("template", "label_set"):
        groups: dict[str, list[Any]] = {}
        for ag in objects.get(factor, []):
            r = row.loc[ag.a]
            fixed = r["label_set"] if factor == "template" else r["template"]
            groups.setdefault(f"{r['model']}/{r['method']}/{fixed} across {factor}s", []).append(ag)
        for name, pairs in sorted(groups.items()):
            mean, ci, _ = group_tau(pairs)
            out[name] = {"mean_kendall_tau": mean, "ci": ci, "n_pairs": len(pairs)}
    return out


def _spread(df: pd.DataFrame, col: str) -> float:
    """Mean over (text, true label) of the std of its score across configs."""
    true = df[df["is_true"] & np.isfinite(df[col].astype(float))]
    if true.empty:
        return math.nan
    per = true.groupby(["example_id", "label"])[col].std(ddof=0)
    return float(per.mean())


def stability_summary(
    df: pd.DataFrame,
    *,
    transforms: Sequence[str] = TRANSFORMS,
    k: int = 3,
    ranking: Mapping[str, dict[str, Any]] | None = None,
    pairs: Mapping[tuple[str, str], PairAgreement] | None = None,
) -> dict[str, Any]:
    """Every stability metric of a scored grid, JSON-ready (``ranking``: per-config ranking
    metrics already computed with the same ``k``; ``pairs``: :class:`PairAgreement` already
    computed with the same transforms, by (config a, config b) in config order)."""
    real, cf = split_content_free(df)
    tdf, notes = apply_transforms(real, list(transforms), cf)
    configs = real.drop_duplicates("config")[["config", "model", "method", "template", "label_set"]]
    per_config = {
        c: (ranking or {}).get(c) or ranking_metrics(real, c, k=k).as_dict()
        for c in configs["config"]
    }
    by_factor = {f: _pairs_differing_in(configs, f) for f in ("template", "label_set", "model")}
    known = {k: p for k, p in (pairs or {}).items() if set(transforms) <= set(p.transform_taus)}
    raw_cache = MatrixCache(real)
    objects = {
        f: [
            known[(a, b)].agreement if (a, b) in known else agreement(real, a, b, cache=raw_cache)
            for a, b in ps
        ]
        for f, ps in by_factor.items()
    }
    agreements = {f: [x.as_dict() for x in objs] for f, objs in objects.items()}
    # transforms are compared on the pairs of configs of one model and method
    same_model = [p for f in ("template", "label_set") for p in by_factor[f]]
    t_cache = MatrixCache(tdf)
    per_transform: dict[str, Any] = {}
    for t in transforms:
        col = f"score_{t}"
        taus = [
            known[(a, b)].transform_taus[t]
            if (a, b) in known
            else mean_kendall_tau(t_cache, a, b, score=col)
            for a, b in same_model
        ]
        taus = [x for x in taus if not math.isnan(x)]
        per_transform[t] = {
            "true_label_spread": _spread(tdf, col),
            "mean_kendall_tau": float(np.mean(taus)) if taus else math.nan,
            "note": notes.get(t, ""),
        }
    return {
        "configs": per_config,
        "agreement": agreements,
        "tau_groups": _tau_groups(configs, objects),
        "transforms": per_transform,
        "n_texts": int(real["example_id"].nunique()),
    }
