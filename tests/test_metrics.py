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


def test_auc_is_not_symmetric_in_the_truth():
    """One true label ranked first of four: AUC 1; the same scores with the truth inverted
    give 0 (a hand case where both are 0.5 cannot tell them apart)."""
    df = to_frame(
        frame(
            {"e": {"A": (-0.5, True), "B": (-1.0, False), "C": (-2.0, False), "D": (-3.0, False)}}
        )
    )
    m = ranking_metrics(df, "m:x/exact/t/normal")
    assert m.auc == 1.0 and m.per_text["e"]["auc"] == 1.0
    inv = to_frame(
        frame({"e": {"A": (-0.5, False), "B": (-1.0, True), "C": (-2.0, True), "D": (-3.0, True)}})
    )
    assert ranking_metrics(inv, "m:x/exact/t/normal").auc == pytest.approx(0.0)


def test_mrr_counts_the_best_ranked_true_label_only():
    """True labels at ranks 1 and 3 of a text: its reciprocal rank is 1, not (1 + 1/3) / 2;
    false labels never count."""
    df = to_frame(
        frame(
            {
                "e1": {
                    "A": (-0.5, True),
                    "B": (-1.0, False),
                    "C": (-2.0, True),
                    "D": (-3.0, False),
                },
                "e2": {
                    "A": (-0.5, False),
                    "B": (-1.0, False),
                    "C": (-2.0, False),
                    "D": (-3.0, True),
                },
            }
        )
    )
    m = ranking_metrics(df, "m:x/exact/t/normal", k=2)
    assert m.mrr == pytest.approx((1 + 1 / 4) / 2)
    assert (m.top1_acc, m.topk_acc) == (0.5, 0.5)
    assert m.per_text["e1"]["rr"] == 1.0 and m.per_text["e2"]["rr"] == 0.25
    assert m.per_text["e2"]["top_label"] == "A" and m.per_text["e2"]["best_true_rank"] == 4.0


def test_tie_for_top_k_is_not_a_hit_and_per_text_values_average_to_the_metric():
    # the true label ties with three others for ranks 2-5 (average rank 3.5): outside top-3
    df = to_frame(
        frame(
            {
                "e": {
                    "A": (-0.5, False),
                    "B": (-1.0, True),
                    "C": (-1.0, False),
                    "D": (-1.0, False),
                    "E": (-1.0, False),
                }
            }
        )
    )
    m = ranking_metrics(df, "m:x/exact/t/normal", k=3)
    assert m.topk_acc == 0.0 and m.mrr == pytest.approx(1 / 3.5)


def test_per_text_outcomes_and_intervals_of_a_larger_case():
    rng = np.random.default_rng(4)
    table = {
        f"e{i:02d}": {f"L{j}": (float(rng.normal()), bool(j == i % 6)) for j in range(6)}
        for i in range(40)
    }
    m = ranking_metrics(to_frame(frame(table)), "m:x/exact/t/normal")
    per = m.per_text
    assert len(per) == 40 and m.labels == [f"L{j}" for j in range(6)]
    for metric, name in (("top1_acc", "top1"), ("topk_acc", "topk"), ("mrr", "rr"), ("auc", "auc")):
        assert np.mean([o[name] for o in per.values()]) == pytest.approx(getattr(m, metric))
        lo, hi = m.ci[metric]
        assert lo <= getattr(m, metric) <= hi and hi - lo > 0.05
    assert per["e07"]["scores"] == [table["e07"][f"L{j}"][0] for j in range(6)]
    assert per["e07"]["true"] == ["L1"]
    assert m.ci == ranking_metrics(to_frame(frame(table)), "m:x/exact/t/normal").ci


def test_group_tau_is_the_mean_of_its_pairs_with_an_interval_over_texts():
    from logprob_eval.experiments.metrics import group_tau

    a, b = "m:x/exact/t1/normal", "m:x/exact/t2/normal"
    same = agreement(_two_configs(0.5, False), a, b)
    rev = agreement(_two_configs(0.0, True), a, b)
    mean, (lo, hi), by_text = group_tau([same, rev])
    assert mean == pytest.approx((same.kendall_tau + rev.kendall_tau) / 2)  # (1 + -1) / 2
    assert mean == pytest.approx(0.0) and lo <= 0.0 <= hi
    assert set(by_text) == set(same.tau_by_text)
    m2, ci2, _ = group_tau([same])
    assert m2 == pytest.approx(1.0) and ci2 == [pytest.approx(1.0), pytest.approx(1.0)]
