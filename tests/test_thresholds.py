from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from logprob_eval.errors import ConfigError
from logprob_eval.experiments import effective_scores, sweep, transfer
from logprob_eval.experiments.table import to_frame

from .test_metrics import frame

CFG = "m:x/exact/t/normal"


def test_perfectly_separable_case_finds_f1_one():
    df = to_frame(
        frame(
            {
                "e1": {"A": (-1.0, True), "B": (-3.0, False)},
                "e2": {"A": (-2.0, False), "B": (-0.5, True)},
            }
        )
    )
    s = sweep(df, CFG)
    assert s.best_f1 == 1.0
    assert -2.0 < s.best_threshold <= -1.0
    assert s.average_precision == 1.0
    assert s.per_label_f1 == {"A": 1.0, "B": 1.0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_sweep_point_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    table = {
        f"e{i}": {f"L{j}": (float(rng.normal()), bool(rng.random() < 0.3)) for j in range(6)}
        for i in range(30)
    }
    table["e0"] = {f"L{j}": (float(rng.normal()), False) for j in range(6)}  # no true label
    df = to_frame(frame(table))
    s = sweep(df, CFG)
    ex = sorted(table)
    y = np.array([[table[e][f"L{j}"][1] for j in range(6)] for e in ex])
    sc = np.array([[table[e][f"L{j}"][0] for j in range(6)] for e in ex])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, t in enumerate(s.thresholds):
            pred = sc >= t
            p, r, f, _ = precision_recall_fscore_support(y, pred, average="micro", zero_division=0)
            assert (s.precision_micro[i], s.recall_micro[i], s.f1_micro[i]) == pytest.approx(
                (p, r, f)
            )
            assert s.f1_macro[i] == pytest.approx(
                f1_score(y, pred, average="macro", zero_division=0)
            )
            assert s.f1_samples[i] == pytest.approx(
                f1_score(y, pred, average="samples", zero_division=0)
            )


def test_bound_policy_is_explicit():
    rows = frame(
        {
            "e1": {"A": (-1.0, True), "B": (-3.0, False)},
            "e2": {"A": (-0.5, True), "B": (-2.0, False)},
        }
    )
    rows[0]["status"] = "upper_bound"  # e1/A: a bound of -1.0
    df = to_frame(rows)
    opt = effective_scores(df, bounds="optimistic")
    pes = effective_scores(df, bounds="pessimistic")
    assert opt.iloc[0] == -1.0  # may pass thresholds <= -1 ...
    assert pes.iloc[0] == -math.inf  # ... or never
    assert sweep(df, CFG, bounds="optimistic").best_f1 == 1.0
    assert sweep(df, CFG, bounds="pessimistic").best_f1 < 1.0
    with pytest.raises(ConfigError, match="bounds="):
        effective_scores(df, bounds="hopeful")


def test_pessimistic_sweeps_threshold_the_lower_end():
    rows = frame(
        {
            "e1": {"A": (-1.0, True), "B": (-3.0, False)},
            "e2": {"A": (-0.5, True), "B": (-2.0, False)},
        }
    )
    for row in rows:
        row["lower"] = row["logprob"]
    rows[0].update(status="upper_bound", lower=-1.2)  # e1/A in [-1.2, -1.0]
    rows[1].update(status="upper_bound", lower=-math.inf)  # e1/B: no exact part
    df = to_frame(rows)
    pes = effective_scores(df, bounds="pessimistic")
    assert list(pes) == [-1.2, -math.inf, -0.5, -2.0]
    assert list(effective_scores(df, bounds="optimistic")) == [-1.0, -3.0, -0.5, -2.0]
    assert sweep(df, CFG, bounds="pessimistic").best_f1 == 1.0  # -1.2 still beats -2.0
    # a transformed column has no lower end: a bound never passes there
    df["renorm"] = df["logprob"]
    assert effective_scores(df, "renorm", bounds="pessimistic").iloc[0] == -math.inf


def test_missing_never_passes_and_all_missing_is_explained():
    rows = frame({"e": {"A": (-math.inf, True), "B": (-math.inf, False)}})
    for r in rows:
        r["status"] = "missing"
    s = sweep(to_frame(rows), CFG)
    assert math.isnan(s.best_f1) and "every score is missing" in s.notes[0]


def test_empty_threshold_range_is_an_error():
    df = to_frame(frame({"e": {"A": (-1.0, True), "B": (-2.0, False)}}))
    with pytest.raises(ConfigError, match=r"range .* is empty"):
        sweep(df, CFG, low=0.0, high=-5.0)


def test_label_without_positives_is_noted():
    df = to_frame(
        frame(
            {
                "e1": {"A": (-1.0, True), "B": (-2.0, False)},
                "e2": {"A": (-1.5, True), "B": (-0.2, False)},
            }
        )
    )
    s = sweep(df, CFG)
    assert math.isnan(s.per_label_thresholds["B"])
    assert any("'B' has no positives" in n for n in s.notes)


def test_transfer_from_dev_to_test():
    rng = np.random.default_rng(2)
    table = {}
    for i in range(40):
        truth = rng.random(4) < 0.4
        table[f"e{i:02d}"] = {
            f"L{j}": (float(rng.normal(1.5 if truth[j] else 0.0)), bool(truth[j])) for j in range(4)
        }
    df = to_frame(frame(table))
    ids = sorted(table)
    out = transfer(df, CFG, ids[:20], ids[20:])
    assert 0 < out["kept"] <= 1.0
    assert out["test_f1_at_dev_threshold"] <= out["test_best_f1"] + 1e-12
