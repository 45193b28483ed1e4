from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from logprob_eval.experiments import agreement, agreement_matrix, per_example_auc, ranking_metrics
from logprob_eval.experiments.table import to_frame


def frame(
    table: dict[str, dict[str, tuple[float, bool]]],
    *,
    template: str = "t",
    label_set: str = "normal",
    status: str = "exact",
) -> list[dict]:
    """{example: {label: (logprob, is_true)}} -> score rows of one config."""
    return [
        dict(
            example_id=ex,
            model="m:x",
            method="exact",
            template=template,
            label_set=label_set,
            label=lab,
            phrase=lab,
            logprob=lp,
            status=status,
            is_true=t,
            n_tokens=1,
        )
        for ex, labs in table.items()
        for lab, (lp, t) in labs.items()
    ]


def test_auc_hand_computed_and_against_sklearn():
    s = np.array([[3.0, 2.0, 1.0, 0.0]])
    y = np.array([[True, False, True, False]])
    assert per_example_auc(s, y)[0] == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    s = rng.normal(size=(50, 10)).round(1)  # rounding makes ties
    y = rng.random((50, 10)) < 0.3
    y[:, 0] = True
    y[:, 1] = False
    ours = per_example_auc(s, y)
    ref = [roc_auc_score(y[i], s[i]) for i in range(50)]
    assert ours == pytest.approx(ref)


def test_auc_undefined_when_all_labels_true():
    assert math.isnan(per_example_auc(np.array([[1.0, 2.0]]), np.array([[True, True]]))[0])


def test_ranking_metrics_hand_computed():
    df = to_frame(
        frame(
            {
                "e1": {"A": (-1.0, True), "B": (-2.0, False), "C": (-3.0, False)},
                "e2": {"A": (-1.0, False), "B": (-2.0, False), "C": (-3.0, True)},
            }
        )
    )
    m = ranking_metrics(df, "m:x/exact/t/normal", k=2)
    assert (m.n_examples, m.top1_acc, m.topk_acc) == (2, 0.5, 0.5)
    assert m.mrr == pytest.approx((1 + 1 / 3) / 2)
    assert m.auc == pytest.approx(0.5)
    assert m.coverage == 1.0
    assert m.worst[0]["example_id"] == "e2" and m.worst[0]["top_label"] == "A"


def test_ties_at_the_top_are_not_a_hit():
    df = to_frame(frame({"e": {"A": (-1.0, True), "B": (-1.0, False), "C": (-5.0, False)}}))
    m = ranking_metrics(df, "m:x/exact/t/normal")
    assert m.top1_acc == 0.0
    assert m.mrr == pytest.approx(1 / 1.5)


def test_missing_and_failed_rows():
    rows = frame({"e": {"A": (-math.inf, True), "B": (-1.0, False)}})
    rows[0]["status"] = "missing"
    rows += frame({"f": {"A": (math.nan, True), "B": (math.nan, False)}}, status="error")
    m = ranking_metrics(to_frame(rows), "m:x/exact/t/normal")
    assert m.n_examples == 1 and m.n_errors == 2
    assert m.top1_acc == 0.0  # a missing score ranks last
    assert m.coverage == 0.5


def test_all_rows_failed_gives_nan_with_a_reason():
    rows = frame({"e": {"A": (math.nan, True), "B": (math.nan, False)}}, status="error")
    m = ranking_metrics(to_frame(rows), "m:x/exact/t/normal")
    assert math.isnan(m.top1_acc) and "all 2 rows failed" in m.notes[0]


def _two_configs(shift: float, reverse: bool) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    a, b = {}, {}
    for e in range(20):
        vals = rng.normal(size=5)
        truth = rng.random(5) < 0.4
        a[f"e{e}"] = {f"L{j}": (float(vals[j]), bool(truth[j])) for j in range(5)}
        b[f"e{e}"] = {
            f"L{j}": (float((-vals[j] if reverse else vals[j]) + shift), bool(truth[j]))
            for j in range(5)
        }
    return to_frame(frame(a, template="t1") + frame(b, template="t2"))


def test_agreement_identical_shifted_and_reversed():
    same = agreement(_two_configs(2.0, False), "m:x/exact/t1/normal", "m:x/exact/t2/normal")
    assert same.kendall_tau == pytest.approx(1.0)
    assert same.top1_agreement == 1.0
    assert same.median_shift == pytest.approx(2.0)
    assert same.wasserstein == pytest.approx(2.0)
    rev = agreement(_two_configs(0.0, True), "m:x/exact/t1/normal", "m:x/exact/t2/normal")
    assert rev.kendall_tau == pytest.approx(-1.0)


def test_agreement_tau_matches_scipy_per_text():
    df = _two_configs(0.0, False)
    rng = np.random.default_rng(3)
    df.loc[df["template"] == "t2", "logprob"] += rng.normal(scale=0.8, size=100)
    ag = agreement(df, "m:x/exact/t1/normal", "m:x/exact/t2/normal")
    taus = []
    for _, g in df.groupby("example_id"):
        x = g[g["template"] == "t1"].sort_values("label")["logprob"]
        y = g[g["template"] == "t2"].sort_values("label")["logprob"]
        taus.append(stats.kendalltau(x, y).statistic)
    assert ag.kendall_tau == pytest.approx(np.mean(taus))
    mat = agreement_matrix(df, ["m:x/exact/t1/normal", "m:x/exact/t2/normal"])
    assert mat.iat[0, 1] == pytest.approx(ag.kendall_tau)
    assert mat.iat[0, 0] == 1.0


def test_agreement_with_nothing_in_common():
    df = to_frame(
        frame({"e": {"A": (-1.0, True), "B": (-2.0, False)}}, template="t1")
        + frame({"f": {"A": (-1.0, True), "B": (-2.0, False)}}, template="t2")
    )
    ag = agreement(df, "m:x/exact/t1/normal", "m:x/exact/t2/normal")
    assert math.isnan(ag.kendall_tau) and ag.notes


def test_vectorised_kendall_tau_matches_scipy_row_by_row():
    from logprob_eval.experiments.metrics import kendall_tau_rows

    rng = np.random.default_rng(7)
    a = rng.integers(0, 4, size=(200, 10)).astype(float)  # many ties
    b = a + rng.integers(-2, 3, size=(200, 10))
    a[0] = 1.0  # a constant row: tau undefined
    ours = kendall_tau_rows(a, b)
    assert math.isnan(ours[0])
    for i in range(1, 200):
        ref = stats.kendalltau(a[i], b[i]).statistic
        assert ours[i] == pytest.approx(ref) or (math.isnan(ref) and math.isnan(ours[i]))
