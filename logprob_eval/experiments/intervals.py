"""Bootstrap intervals over texts, and paired tests between two runs of the same texts.

Every headline metric is a function of the texts it was computed on. A *statistic* here is
a function of **index resamples**: given integer arrays ``idx`` of shape ``(..., m)`` (which
texts were drawn, with repetition), it returns the metric of each resample, shape
``(...)``. Resampling text indices (not label rows) makes each text a cluster: its labels
stay together. The same statistic serves

* :func:`bootstrap_interval`: the BCa interval of scipy's ``stats.bootstrap`` over the
  indices ``0..n-1``, seeded, vectorised (see "Scale" below);
* :func:`paired_difference`: a paired bootstrap of ``metric(B) - metric(A)`` over the
  texts both runs share (the same resampled texts in both), whose interval and p-value are
  two readings of the same resampled differences (see there), so they always agree;
* :func:`mcnemar_difference`: for paired hits (top-1), McNemar's exact test with the exact
  interval it inverts to; :func:`mcnemar_exact` gives its counts and p-value.

Statistics provided: the mean of per-text values (top-1, top-k, MRR, AUC, Kendall tau)
and, from the text x label score matrix, the best micro F1 over every distinct score and
the micro average precision, both computed with each text weighted by how often it was
drawn (equal to recomputing them on the resampled texts).

Where BCa is undefined (every resample gives the same value, e.g. a metric that is 0 on
every text) the percentile interval of the same resamples is used; an interval is NaN only
when the statistic itself is.

Scale. The BCa interval is scipy's (``stats.bootstrap(..., method="BCa")``: the same draws,
the same bias correction, acceleration and quantiles; a test checks the equality), computed
here so that it stays linear in the number of texts:

* the resamples are drawn and evaluated in batches of rows (:data:`CHUNK` elements at a
  time), so memory does not grow with ``resamples x texts`` (drawing in batches gives the
  same indices as one draw);
* BCa's acceleration needs the statistic on every leave-one-out sample (the jackknife):
  ``n`` evaluations of an O(n) statistic, quadratic. The statistics here compute all
  leave-one-out values at once in about linear time (:mod:`.leave_one_out`); any other
  callable is evaluated on the leave-one-out samples, as scipy does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse, special, stats

from . import leave_one_out as loo

__all__ = [
    "CONFIDENCE",
    "N_RESAMPLES",
    "SEED",
    "PairedResult",
    "Statistic",
    "average_precision_statistic",
    "best_f1_statistic",
    "bootstrap_interval",
    "jackknife",
    "mcnemar_difference",
    "mcnemar_exact",
    "mean_statistic",
    "paired_difference",
    "resample_weights",
]

Statistic = Callable[[np.ndarray], np.ndarray]
"""Index resamples ``(..., m)`` -> the metric of each ``(...)``. A statistic may also have
``leave_one_out() -> (n,)``: its value with each text left out (the jackknife)."""
CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0
CHUNK = 1 << 21
"""Elements (indices, or text x label pairs) one batch of resamples holds at most."""


def _by_rows(fn: Callable[[np.ndarray], np.ndarray], idx: np.ndarray, row_cost: int) -> np.ndarray:
    """``fn`` over the resamples (rows) of ``idx`` ``(..., m)``, a batch of rows at a time
    (``row_cost``: the elements one row needs): rows are independent, so the result is that
    of one call, with memory bounded by :data:`CHUNK`."""
    idx = np.asarray(idx, dtype=np.int64)
    flat = idx.reshape(-1, idx.shape[-1])
    step = max(1, CHUNK // max(1, row_cost))
    parts = [np.asarray(fn(flat[i : i + step])) for i in range(0, len(flat), step)]
    out = np.concatenate(parts) if parts else np.empty(0)
    return out.reshape(idx.shape[:-1])


def resample_weights(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` texts was drawn in each resample: ``(..., m) -> (..., n)``."""
    idx = np.asarray(idx, dtype=np.int64)
    flat = idx.reshape(-1, idx.shape[-1])
    offsets = (np.arange(flat.shape[0]) * n)[:, None]
    counts = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * n)
    return counts.reshape(*idx.shape[:-1], n).astype(float)


class _Mean:
    """The mean of per-text values over a resample (NaN values left out); for a matrix
    ``(rows, n)``, the mean over the rows of each row's mean (NaN rows left out)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.atleast_2d(np.asarray(values, dtype=float))
        self.one_row = np.ndim(values) == 1

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        return _by_rows(self._rows, idx, self.values.size)

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        drawn = self.values[:, idx]  # (rows, resamples, m)
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample of NaNs only
            means = np.nanmean(drawn, axis=-1)
            return np.asarray(means[0] if self.one_row else np.nanmean(means, axis=0))

    def leave_one_out(self) -> np.ndarray:
        means = loo.means(self.values)
        if self.one_row:
            return means[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.asarray(np.nanmean(means, axis=0))


def mean_statistic(values: np.ndarray) -> Statistic:
    """The mean of per-text ``values`` over a resample (NaN values left out). With a
    matrix ``(rows, n)`` (per-text values of several config pairs), the mean over rows of
    each row's mean: a resample draws texts, and a text moves in every row at once."""
    return _Mean(values)


class _Cumulative:
    """Text x label scores flattened and sorted once, for weighted sweeps over thresholds.

    ``ends`` are the positions of the last pair of every distinct score (descending): the
    predictions of threshold ``t`` are exactly the pairs up to the end of ``t``'s group.
    A resample weighs each text by how often it was drawn; its counts are read only at the
    groups that hold a true pair (``steps``): elsewhere the true positives stay as they were
    and the predictions grow, so the best F1 never peaks there and average precision does
    not step. The pairs between two such groups count together (``per_step``, a sparse
    text x step matrix), so a batch of resamples is two sparse products and two cumulative
    sums over the steps.
    """

    def __init__(self, scores: np.ndarray, truth: np.ndarray, *, rank_missing: bool) -> None:
        s = np.asarray(scores, dtype=float)
        if rank_missing:  # AP ranks every pair; missing scores tie below the rest
            finite = s[np.isfinite(s)]
            s = np.where(np.isfinite(s), s, (finite.min() - 1.0) if len(finite) else -1.0)
        n, n_lab = s.shape
        flat = s.ravel()
        keep = np.isfinite(flat)  # for F1: a missing score is never predicted
        order = np.argsort(-flat[keep], kind="stable")
        self.scores = flat[keep][order]
        self.text = np.repeat(np.arange(n), n_lab)[keep][order]
        self.y = np.asarray(truth, dtype=bool).ravel()[keep][order].astype(float)
        self.y_all_text = np.repeat(np.arange(n), n_lab)[np.asarray(truth, dtype=bool).ravel()]
        last = np.r_[self.scores[1:] != self.scores[:-1], True] if len(self.scores) else []
        self.ends = np.nonzero(last)[0]
        self.n = n
        group = np.searchsorted(self.ends, np.arange(len(self.text)))
        self.steps = np.unique(group[self.y > 0])
        step = np.searchsorted(self.steps, group)  # the first step at or after each pair
        within = step < len(self.steps)  # pairs after the last step change nothing read

        def per_step(weights: np.ndarray) -> Any:
            shape = (n, len(self.steps))
            cells = (self.text[within], step[within])
            return sparse.csr_array((weights[within], cells), shape=shape)

        self.per_step = per_step(np.ones(len(self.text)))
        self.true_per_step = per_step(self.y)
        self.positives = np.bincount(self.y_all_text, minlength=n).astype(float)

    def counts(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(true positives, predicted) at every step, and all positives, per resample."""
        w = resample_weights(idx, self.n)
        tp = np.cumsum(w @ self.true_per_step, axis=-1)
        pred = np.cumsum(w @ self.per_step, axis=-1)
        return tp, pred, w @ self.positives

    def full_counts(self) -> tuple[np.ndarray, np.ndarray, int]:
        """:meth:`counts` of the texts themselves (every weight 1)."""
        tp = np.cumsum(self.y)[self.ends]
        return tp, (self.ends + 1).astype(float), len(self.y_all_text)


class _BestF1:
    """Best micro F1 over every distinct finite score used as a threshold (``>=``)."""

    def __init__(self, scores: np.ndarray, truth: np.ndarray) -> None:
        self.cum = _Cumulative(scores, truth, rank_missing=False)

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        if not len(self.cum.ends):
            return np.full(np.shape(idx)[:-1], np.nan)
        if not len(self.cum.steps):  # no true pair is ever predicted
            return np.zeros(np.shape(idx)[:-1])
        return _by_rows(self._rows, idx, 4 * len(self.cum.steps) + 2 * self.cum.n)

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        tp, pred, positives = self.cum.counts(idx)
        den = pred + positives[..., None]
        f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
        return np.asarray(f1.max(axis=-1))

    def leave_one_out(self) -> np.ndarray:
        if not len(self.cum.ends):
            return np.full(self.cum.n, np.nan)
        return loo.best_f1(self.cum)


class _AveragePrecision:
    """Micro average precision over all text x label pairs (scikit-learn's)."""

    def __init__(self, scores: np.ndarray, truth: np.ndarray) -> None:
        self.cum = _Cumulative(scores, truth, rank_missing=True)

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        if not len(self.cum.steps):  # no true label: no recall
            return np.full(np.shape(idx)[:-1], np.nan)
        return _by_rows(self._rows, idx, 4 * len(self.cum.steps) + 2 * self.cum.n)

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        tp, pred, positives = self.cum.counts(idx)
        precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = tp / positives[..., None]
        step = np.diff(recall, axis=-1, prepend=0.0)
        return np.asarray((step * precision).sum(axis=-1))

    def leave_one_out(self) -> np.ndarray:
        if not len(self.cum.ends):
            return np.full(self.cum.n, np.nan)
        return loo.average_precision(self.cum)


def best_f1_statistic(scores: np.ndarray, truth: np.ndarray) -> Statistic:
    """Best micro F1 over every distinct finite score used as a threshold (``>=``).

    ``-inf`` (missing) never passes a threshold; with no finite score the statistic is NaN.
    """
    return _BestF1(scores, truth)


def average_precision_statistic(scores: np.ndarray, truth: np.ndarray) -> Statistic:
    """Micro average precision over all text x label pairs, scikit-learn's definition
    (sum over thresholds of the recall step times the precision); missing scores rank last.
    NaN when a resample holds no true label."""
    return _AveragePrecision(scores, truth)


def _percentile(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = dist[np.isfinite(dist)]
    if not len(finite):
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(finite, [tail, 1 - tail])
    return float(lo), float(hi)


def _draws(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The resamples' text indices, a batch of rows at a time: the same indices as scipy's
    one draw ``rng.integers(0, n, (n_resamples, n))`` (a generator's stream does not depend
    on how it is split into calls)."""
    rng = np.random.default_rng(seed)
    rows = max(1, CHUNK // n)
    for start in range(0, n_resamples, rows):
        yield rng.integers(0, n, (min(rows, n_resamples - start), n))


def jackknife(statistic: Statistic, n: int) -> np.ndarray:
    """The statistic with each of the ``n`` texts left out: its ``leave_one_out()`` where
    it has one, else evaluated on the leave-one-out samples (a batch at a time)."""
    fast = getattr(statistic, "leave_one_out", None)
    if fast is not None:
        return np.asarray(fast(), dtype=float)
    keep = np.arange(n)
    rows = max(1, CHUNK // n)
    parts = []
    for start in range(0, n, rows):
        left_out = np.arange(start, min(n, start + rows))
        idx = np.array([np.delete(keep, i) for i in left_out]).reshape(len(left_out), n - 1)
        parts.append(np.asarray(statistic(idx), dtype=float))
    return np.concatenate(parts)


def _quantiles(dist: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The quantiles scipy's ``bootstrap`` reads off its distribution (``stats.quantile``
    since scipy 1.15, ``np.percentile`` before)."""
    quantile = getattr(stats, "quantile", None)
    if quantile is not None:
        return np.asarray(quantile(dist, levels))
    return np.asarray(np.percentile(dist, levels * 100))


def _bca(
    dist: np.ndarray, point: float, jack: np.ndarray, confidence: float
) -> tuple[float, float]:
    """scipy's BCa interval (``scipy.stats._resampling._bca_interval``, after Efron and
    Tibshirani 14.3 and 15.4) from the bootstrap distribution, the estimate and the
    jackknife values; NaN where it is undefined."""
    z0 = special.ndtri(((dist < point).sum() + (dist <= point).sum()) / (2 * len(dist)))
    n = float(len(jack))
    u = (n - 1) * (np.mean(jack) - jack)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = 1 / 6 * (np.sum(u**3) / n**3) / (np.sum(u**2) / n**2) ** (3 / 2)
        z = float(special.ndtri((1 - confidence) / 2))
        levels = np.array([special.ndtr(z0 + (z0 + c) / (1 - a * (z0 + c))) for c in (z, -z)])
    if not np.isfinite(levels).all():
        return math.nan, math.nan
    lo, hi = _quantiles(dist, levels)
    return float(lo), float(hi)


def _settled(values: np.ndarray) -> np.ndarray:
    """A statistic's values rounded to 12 decimals. A metric is a ratio of counts, and the
    same resample can come out 1 ulp apart by the order of its sums (a batch of resamples
    against the data alone): unrounded, that noise decides whether BCa counts a resample
    that holds each text once as tied with the estimate, and moves ``z0`` (on 6 texts,
    about 35 of 2,000 resamples, and an interval end by up to 0.02)."""
    return np.round(np.asarray(values, dtype=float), 12)


def _bootstrap(
    statistic: Statistic, n: int, confidence: float, n_resamples: int, seed: int
) -> tuple[float, float, np.ndarray]:
    """(BCa low, high, bootstrap distribution) of ``statistic`` over ``n`` texts."""
    dist = _settled(np.concatenate([statistic(idx) for idx in _draws(n, n_resamples, seed)]))
    point = float(_settled(statistic(np.arange(n)[None, :]))[0])
    lo, hi = _bca(dist, point, _settled(jackknife(statistic, n)), confidence)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = _percentile(dist, confidence)
    return lo, hi, dist


def bootstrap_interval(
    statistic: Statistic,
    n: int,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """The BCa bootstrap interval of ``statistic`` over ``n`` texts (same seed, same numbers)."""
    point = float(np.asarray(statistic(np.arange(n)[None, :]))[0]) if n else math.nan
    if n < 2 or math.isnan(point):
        return math.nan, math.nan
    lo, hi, _ = _bootstrap(statistic, n, confidence, n_resamples, seed)
    # the interval always holds the estimate (BCa can exclude it when a resample is rare)
    return min(lo, point), max(hi, point)


@dataclass(frozen=True)
class PairedResult:
    """``metric(B) - metric(A)`` on the texts both runs share: the estimate, the interval
    and the p-value of one procedure (``test``); ``low < 0 < high`` exactly when ``p_value``
    is at least ``1 - confidence``."""

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    p_value: float
    n: int
    test: str = "paired bootstrap"

    def as_dict(self) -> dict[str, float | str | int]:
        return dict(self.__dict__)


def _tail_cut(n_resamples: int, confidence: float) -> int:
    """How many resamples the interval leaves out at each end: the largest count ``c`` with
    ``2 (c + 1) / (B + 1) < 1 - confidence`` (the p-value of ``c`` resamples beyond 0)."""
    alpha = 1 - confidence
    cut = math.ceil(alpha * (n_resamples + 1) / 2) - 2
    if cut < 0:
        raise ValueError(
            f"n_resamples={n_resamples} cannot give a {confidence:.0%} interval: the smallest "
            f"p-value of so few resamples is {2 / (n_resamples + 1):.3g}; use at least "
            f"{math.floor(2 / alpha)} resamples"
        )
    return cut


def paired_difference(
    metric: str,
    stat_a: Statistic,
    stat_b: Statistic,
    n: int,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> PairedResult:
    """Paired bootstrap of ``stat_b - stat_a`` over ``n`` shared texts (index ``i`` is the
    same text in both runs).

    One procedure gives both numbers. ``n_resamples`` resamples of the text indices are
    drawn (``default_rng(seed).integers(0, n, (B, n))``, in batches: :func:`_draws`) and
    the difference computed on each; ``B`` counts those where it is defined. With ``c`` the
    number of resampled differences on the far side of zero (``min(#(d <= 0), #(d >= 0))``):

    * **p-value** (two-sided): ``min(1, 2 (c + 1) / (B + 1))`` (never 0 from finitely many
      resamples);
    * **interval**: the sorted differences with the ``j`` smallest and the ``j`` largest left
      out, ``j`` the largest count whose p-value is below ``1 - confidence``
      (:func:`_tail_cut`; 49 of 2,000 at 95%): a percentile interval.

    The interval's high end is below zero exactly when at most ``j`` resampled differences
    are at or above zero, that is exactly when the p-value is below ``1 - confidence``
    (likewise the low end above zero): the interval excludes zero if and only if
    ``p < 1 - confidence``, so the two can never contradict each other. The interval is that
    of the resampled differences and need not hold the estimate when their distribution is
    skewed (rare for means, possible for best F1)."""
    full = np.arange(n)[None, :]
    a = float(np.asarray(stat_a(full))[0]) if n else math.nan
    b = float(np.asarray(stat_b(full))[0]) if n else math.nan
    diff = b - a
    cut = _tail_cut(n_resamples, confidence)
    if n < 2 or math.isnan(diff):
        return PairedResult(metric, a, b, diff, math.nan, math.nan, math.nan, n)
    dist = np.concatenate(
        [np.asarray(stat_b(idx)) - np.asarray(stat_a(idx)) for idx in _draws(n, n_resamples, seed)]
    )
    d = np.sort(dist[np.isfinite(dist)])
    if len(d) < 2 * cut + 2:  # too few defined resamples for this confidence
        return PairedResult(metric, a, b, diff, math.nan, math.nan, math.nan, n)
    beyond = min(int((d <= 0).sum()), int((d >= 0).sum()))
    p = min(1.0, 2 * (beyond + 1) / (len(d) + 1))
    return PairedResult(metric, a, b, diff, float(d[cut]), float(d[len(d) - 1 - cut]), p, n)


def mcnemar_difference(
    metric: str, hits_a: np.ndarray, hits_b: np.ndarray, *, confidence: float = CONFIDENCE
) -> PairedResult:
    """The difference of two hit rates on the same texts (top-1), judged by McNemar's exact
    test, with the interval that test inverts to.

    Only the ``m`` discordant texts carry information: ``lost`` (hit in A, miss in B) and
    ``gained`` (the reverse). Given ``m``, ``gained`` is binomial with ``theta``; no change
    is ``theta = 1/2``. The p-value is :func:`mcnemar_exact`'s (scipy's ``binomtest``; for
    ``theta = 1/2`` it equals twice the smaller tail). The interval is the Clopper-Pearson
    interval of ``theta`` (scipy's ``proportion_ci(method="exact")``, the inversion of the
    same two tails) mapped onto the difference, ``diff = m / n * (2 theta - 1)``: it excludes
    zero exactly when ``theta = 1/2`` is rejected, i.e. when ``p < 1 - confidence``. With no
    discordant text the difference is 0, its interval ``[0, 0]`` and ``p = 1``."""
    a = np.asarray(hits_a, dtype=bool)
    b = np.asarray(hits_b, dtype=bool)
    n = len(a)
    lost, gained, p = mcnemar_exact(a, b)
    m = lost + gained
    mean_a = float(a.mean()) if n else math.nan
    mean_b = float(b.mean()) if n else math.nan
    test = "McNemar exact"
    if not n:
        return PairedResult(metric, mean_a, mean_b, math.nan, math.nan, math.nan, math.nan, 0, test)
    diff = (gained - lost) / n
    if m == 0:
        return PairedResult(metric, mean_a, mean_b, diff, 0.0, 0.0, 1.0, n, test)
    ci = stats.binomtest(gained, m, 0.5).proportion_ci(confidence, method="exact")
    low, high = (m / n * (2 * t - 1) for t in (ci.low, ci.high))
    return PairedResult(metric, mean_a, mean_b, diff, float(low), float(high), p, n, test)


def mcnemar_exact(hits_a: np.ndarray, hits_b: np.ndarray) -> tuple[int, int, float]:
    """McNemar's exact test on paired binary outcomes: (lost, gained, two-sided p).

    ``lost`` texts are hits in A and misses in B, ``gained`` the reverse; under no change
    each discordant text is a fair coin (scipy's ``binomtest``)."""
    a = np.asarray(hits_a, dtype=bool)
    b = np.asarray(hits_b, dtype=bool)
    lost, gained = int((a & ~b).sum()), int((~a & b).sum())
    if lost + gained == 0:
        return lost, gained, 1.0
    return lost, gained, float(stats.binomtest(lost, lost + gained, 0.5).pvalue)
