"""Bootstrap intervals and paired tests (experiments.intervals): values, coverage, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, f1_score

from logprob_eval.experiments.intervals import (
    average_precision_statistic,
    best_f1_statistic,
    bootstrap_interval,
    mcnemar_difference,
    mcnemar_exact,
    mean_statistic,
    paired_difference,
    resample_weights,
)
from logprob_eval.experiments.table import to_frame
from logprob_eval.experiments.thresholds import sweep

from .test_metrics import frame


def _scores(seed: int, n: int = 40, n_lab: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, n_lab)).round(1)  # rounding makes ties across texts
    y = rng.random((n, n_lab)) < 0.25
    s[0, 2] = -np.inf  # a missing score
    return s, y


def test_resample_weights_count_draws_per_row():
    idx = np.array([[0, 0, 2], [1, 2, 2]])
    assert resample_weights(idx, 3).tolist() == [[2, 0, 1], [0, 1, 2]]


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_f1_and_ap_equal_sklearn_on_the_resampled_texts(seed):
    s, y = _scores(seed)
    rng = np.random.default_rng(seed + 10)
    idx = rng.integers(0, len(s), size=(4, len(s)))
    f1 = best_f1_statistic(s, y)(idx)
    ap = average_precision_statistic(s, y)(idx)
    finite = np.unique(s[np.isfinite(s)])
    ranked = np.where(np.isfinite(s), s, finite.min() - 1)
    for b in range(4):
        rs, ry, rr = s[idx[b]], y[idx[b]], ranked[idx[b]]  # the resample, texts repeated
        best = max(f1_score(ry.ravel(), (rs >= t).ravel(), zero_division=0) for t in finite)
        assert f1[b] == pytest.approx(best)
        assert ap[b] == pytest.approx(average_precision_score(ry.ravel(), rr.ravel()))


def test_statistics_on_all_texts_equal_the_sweep():
    s, y = _scores(3)
    table = {
        f"e{i:02d}": {f"L{j}": (float(s[i, j]), bool(y[i, j])) for j in range(s.shape[1])}
        for i in range(len(s))
    }
    rows = frame(table)
    for r in rows:
        if r["logprob"] == -math.inf:
            r["status"] = "missing"
    sw = sweep(to_frame(rows), "m:x/exact/t/normal")
    full = np.arange(len(s))[None, :]
    assert best_f1_statistic(s, y)(full)[0] == pytest.approx(sw.best_f1)
    assert average_precision_statistic(s, y)(full)[0] == pytest.approx(sw.average_precision)
    lo, hi = sw.ci["best_f1"]
    assert lo < sw.best_f1 < hi


def test_same_seed_same_interval_other_seed_other_interval():
    v = np.random.default_rng(0).random(60)
    a = bootstrap_interval(mean_statistic(v), 60, seed=7)
    assert a == bootstrap_interval(mean_statistic(v), 60, seed=7)
    assert a != bootstrap_interval(mean_statistic(v), 60, seed=8)
    assert a[0] < v.mean() < a[1]


def test_constant_values_give_a_point_interval_and_nan_stays_nan():
    assert bootstrap_interval(mean_statistic(np.zeros(60)), 60) == (0.0, 0.0)
    assert all(math.isnan(x) for x in bootstrap_interval(mean_statistic(np.full(5, np.nan)), 5))
    assert all(math.isnan(x) for x in bootstrap_interval(mean_statistic(np.ones(1)), 1))


@pytest.mark.parametrize(
    ("name", "true_mean"),
    [("bernoulli", 0.6), ("beta", 4 / 6), ("reciprocal_rank", float(np.mean(1 / np.arange(1, 5))))],
)
def test_95_percent_intervals_cover_the_true_value_93_to_97_percent(name, true_mean):
    """200 seeded trials of 60 texts drawn from a known distribution (the shapes of top-1
    hits, per-text AUCs and reciprocal ranks)."""
    draws = {
        "bernoulli": lambda r: (r.random(60) < 0.6).astype(float),
        "beta": lambda r: r.beta(4, 2, 60),
        "reciprocal_rank": lambda r: 1.0 / r.integers(1, 5, 60),
    }
    hits = 0
    for trial in range(200):
        values = draws[name](np.random.default_rng(1000 + trial))
        lo, hi = bootstrap_interval(mean_statistic(values), 60, seed=trial)
        hits += lo <= true_mean <= hi
    assert 0.93 <= hits / 200 <= 0.97


def test_paired_intervals_cover_the_true_difference():
    """600 trials (not 200: the paired interval's expected coverage at 60 texts is about
    94%, and 200 trials scatter by 1.6 points; 200 trials from these seeds give 92.5%)."""
    hits = 0
    for trial in range(600):
        rng = np.random.default_rng(1000 + trial)
        a = rng.beta(4, 2, 60)
        b = a - 0.03 + rng.normal(0, 0.08, 60)  # the true mean difference is -0.03
        res = paired_difference("auc", mean_statistic(a), mean_statistic(b), 60, seed=trial)
        hits += res.low <= -0.03 <= res.high
    assert 0.93 <= hits / 600 <= 0.97


def test_paired_difference_of_identical_runs_is_zero_with_p_one():
    v = np.random.default_rng(0).random(60)
    res = paired_difference("auc", mean_statistic(v), mean_statistic(v.copy()), 60)
    assert (res.diff, res.low, res.high, res.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_is_tighter_than_unpaired_on_correlated_texts():
    rng = np.random.default_rng(1)
    a = rng.random(60)
    b = a - 0.05 + rng.normal(0, 0.01, 60)  # texts vary a lot, the change little
    res = paired_difference("auc", mean_statistic(a), mean_statistic(b), 60)
    assert res.high < 0 and res.p_value < 0.01
    assert res.diff == pytest.approx(b.mean() - a.mean())


def test_mcnemar_exact_counts_discordant_texts():
    a = np.array([1] * 10 + [0] * 50, dtype=bool)
    assert mcnemar_exact(a, np.zeros(60, dtype=bool)) == (10, 0, pytest.approx(2 * 0.5**10))
    b = a.copy()
    b[:3] = False
    b[20:22] = True
    lost, gained, p = mcnemar_exact(a, b)
    assert (lost, gained) == (3, 2) and p == pytest.approx(1.0)
    assert mcnemar_exact(a, a) == (0, 0, 1.0)


def test_paired_bootstrap_interval_and_p_value_are_read_off_the_same_resamples():
    """Reference: the resamples drawn as documented, each difference computed in a plain
    loop; the interval leaves 49 of 2,000 out at each end, p = 2 (c + 1) / (B + 1)."""
    rng = np.random.default_rng(5)
    a = rng.random(30)
    b = a - 0.04 + rng.normal(0, 0.08, 30)
    res = paired_difference("auc", mean_statistic(a), mean_statistic(b), 30, seed=11)
    idx = np.random.default_rng(11).integers(0, 30, size=(2000, 30))
    d = sorted(float(np.mean(b[row]) - np.mean(a[row])) for row in idx)
    c = min(sum(x <= 0 for x in d), sum(x >= 0 for x in d))
    assert res.low == pytest.approx(d[49]) and res.high == pytest.approx(d[1950])
    assert res.p_value == pytest.approx(min(1.0, 2 * (c + 1) / 2001))
    assert res.diff == pytest.approx(b.mean() - a.mean()) and res.test == "paired bootstrap"


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99])
def test_paired_interval_excludes_zero_exactly_when_p_is_below_alpha(confidence):
    """Over 300 seeded pairs of runs, from no change to clear drops (many near the edge),
    for a mean metric and for best F1: never an interval off zero beside p >= alpha, nor
    the reverse."""
    alpha = 1 - confidence
    both = {True: 0, False: 0}
    for trial in range(300):
        rng = np.random.default_rng(trial)
        a = rng.random(40)
        b = a + rng.normal(-0.03 * (trial % 5), 0.15, 40)
        res = paired_difference(
            "auc", mean_statistic(a), mean_statistic(b), 40, confidence=confidence, seed=trial
        )
        significant = res.high < 0 or res.low > 0
        assert significant == (res.p_value < alpha), (trial, res)
        both[significant] += 1
    assert min(both.values()) > 30  # both verdicts are exercised, many times
    for seed in range(20):
        s, y = _scores(seed)
        s2 = s + np.random.default_rng(seed).normal(0, 0.5, s.shape)
        res = paired_difference(
            "best_f1",
            best_f1_statistic(s, y),
            best_f1_statistic(s2, y),
            len(s),
            confidence=confidence,
            seed=seed,
        )
        assert (res.high < 0 or res.low > 0) == (res.p_value < alpha)


def test_too_few_resamples_for_the_confidence_is_an_error():
    v = np.ones(10)
    with pytest.raises(ValueError, match="n_resamples=30 cannot give a 95% interval"):
        paired_difference("auc", mean_statistic(v), mean_statistic(v), 10, n_resamples=30)


@pytest.mark.parametrize(
    ("lost", "gained"), [(10, 0), (6, 1), (3, 1), (0, 7), (5, 5), (12, 3), (1, 0)]
)
def test_mcnemar_difference_against_scipy(lost, gained):
    """p: scipy's binomtest; interval: its exact (Clopper-Pearson) interval of the share of
    gains among the flipped texts, times (flipped / n), mapped to 2 theta - 1."""
    n = 60
    a = np.zeros(n, dtype=bool)
    b = np.zeros(n, dtype=bool)
    a[:lost] = True  # lost: hit in A only
    b[lost : lost + gained] = True  # gained: hit in B only
    a[50:], b[50:] = True, True  # 10 texts hit in both
    res = mcnemar_difference("top1_acc", a, b)
    m = lost + gained
    test = stats.binomtest(gained, m, 0.5)
    ci = test.proportion_ci(0.95, method="exact")
    assert res.p_value == pytest.approx(test.pvalue)
    assert res.p_value == pytest.approx(stats.binomtest(lost, m, 0.5).pvalue)
    assert res.low == pytest.approx(m / n * (2 * ci.low - 1))
    assert res.high == pytest.approx(m / n * (2 * ci.high - 1))
    assert res.diff == pytest.approx((gained - lost) / n) == pytest.approx(b.mean() - a.mean())
    assert (res.a, res.b, res.test) == (
        pytest.approx(a.mean()),
        pytest.approx(b.mean()),
        "McNemar exact",
    )


def test_mcnemar_interval_excludes_zero_exactly_when_p_is_below_alpha():
    for lost in range(0, 21):
        for gained in range(0, 21):
            a = np.r_[np.ones(lost), np.zeros(gained), np.ones(5)].astype(bool)
            b = np.r_[np.zeros(lost), np.ones(gained), np.ones(5)].astype(bool)
            for confidence in (0.95, 0.99):
                res = mcnemar_difference("top1_acc", a, b, confidence=confidence)
                significant = res.high < 0 or res.low > 0
                assert significant == (res.p_value < 1 - confidence), (lost, gained, res)
    same = mcnemar_difference("top1_acc", np.ones(5, bool), np.ones(5, bool))
    assert (same.diff, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_float_noise_in_the_estimate_does_not_decide_ties_with_it():
    # six yes/no texts: about 1 in 65 resamples holds each text once and ties with the
    # estimate. Computed 1 ulp apart (another order of the same sums), the estimate must still
    # tie with them, or BCa's bias correction z0 moves and the interval with it.
    values = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    plain = mean_statistic(values)

    def noisy(idx: np.ndarray) -> np.ndarray:
        out = np.array(plain(idx), dtype=float)
        return np.nextafter(out, np.inf) if np.ndim(idx) == 1 else out  # the estimate alone

    assert noisy(np.arange(6)) != plain(np.arange(6)[None, :])[0]  # the noise is there
    assert bootstrap_interval(noisy, 6) == bootstrap_interval(plain, 6)
