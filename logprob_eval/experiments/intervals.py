"""Bootstrap intervals over texts, and paired tests between two runs of the same texts.

Every headline metric is a function of the texts it was computed on. A *statistic* here is
a function of **index resamples**: given integer arrays ``idx`` of shape ``(..., m)`` (which
texts were drawn, with repetition), it returns the metric of each resample, shape
``(...)``. Resampling text indices (not label rows) makes each text a cluster: its labels
stay together. The same statistic serves

* :func:`bootstrap_interval`: scipy's ``stats.bootstrap`` (BCa) over the indices
  ``0..n-1``, seeded, vectorised;
* :func:`paired_difference`: the same resamples applied to both runs of the texts they
  share (a paired bootstrap of ``metric(B) - metric(A)``), with a bootstrap p-value;
* :func:`mcnemar_exact`: McNemar's exact test for paired binary outcomes (top-1 hits):
  the discordant texts, ``binomtest(b, b + c, 0.5)``.

Statistics provided: the mean of per-text values (top-1, top-k, MRR, AUC, Kendall tau)
and, from the text x label score matrix, the best micro F1 over every distinct score and
the micro average precision, both computed with each text weighted by how often it was
drawn (equal to recomputing them on the resampled texts).

Where BCa is undefined (every resample gives the same value, e.g. a metric that is 0 on
every text) the percentile interval of the same resamples is used; an interval is NaN only
when the statistic itself is.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "CONFIDENCE",
    "N_RESAMPLES",
    "SEED",
    "PairedResult",
    "Statistic",
    "average_precision_statistic",
    "best_f1_statistic",
    "bootstrap_interval",
    "mcnemar_exact",
    "mean_statistic",
    "paired_difference",
    "resample_weights",
]

Statistic = Callable[[np.ndarray], np.ndarray]
CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0


def resample_weights(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` texts was drawn in each resample: ``(..., m) -> (..., n)``."""
    idx = np.asarray(idx, dtype=np.int64)
    flat = idx.reshape(-1, idx.shape[-1])
    offsets = (np.arange(flat.shape[0]) * n)[:, None]
    counts = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * n)
    return counts.reshape(*idx.shape[:-1], n).astype(float)


def mean_statistic(values: np.ndarray) -> Statistic:
    """The mean of per-text ``values`` over a resample (NaN values left out)."""
    vals = np.asarray(values, dtype=float)

    def stat(idx: np.ndarray) -> np.ndarray:
        drawn = vals[np.asarray(idx, dtype=np.int64)]
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample of NaNs only
            return np.asarray(np.nanmean(drawn, axis=-1))

    return stat


class _Cumulative:
    """Text x label scores flattened and sorted once, for weighted sweeps over thresholds.

    ``ends`` are the positions of the last pair of every distinct score (descending): the
    predictions of threshold ``t`` are exactly the pairs up to the end of ``t``'s group.
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

    def counts(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(true positives, predicted, all positives) at every threshold, per resample."""
        w = resample_weights(idx, self.n)
        pair_w = w[..., self.text]
        tp = np.cumsum(pair_w * self.y, axis=-1)[..., self.ends]
        pred = np.cumsum(pair_w, axis=-1)[..., self.ends]
        positives = w[..., self.y_all_text].sum(axis=-1)
        return tp, pred, positives


def best_f1_statistic(scores: np.ndarray, truth: np.ndarray) -> Statistic:
    """Best micro F1 over every distinct finite score used as a threshold (``>=``).

    ``-inf`` (missing) never passes a threshold; with no finite score the statistic is NaN.
    """
    cum = _Cumulative(scores, truth, rank_missing=False)

    def stat(idx: np.ndarray) -> np.ndarray:
        if not len(cum.ends):
            return np.full(np.shape(idx)[:-1], np.nan)
        tp, pred, positives = cum.counts(idx)
        den = pred + positives[..., None]
        f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
        return np.asarray(f1.max(axis=-1))

    return stat


def average_precision_statistic(scores: np.ndarray, truth: np.ndarray) -> Statistic:
    """Micro average precision over all text x label pairs, scikit-learn's definition
    (sum over thresholds of the recall step times the precision); missing scores rank last.
    NaN when a resample holds no true label."""
    cum = _Cumulative(scores, truth, rank_missing=True)

    def stat(idx: np.ndarray) -> np.ndarray:
        if not len(cum.ends):
            return np.full(np.shape(idx)[:-1], np.nan)
        tp, pred, positives = cum.counts(idx)
        precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = tp / positives[..., None]
        step = np.diff(recall, axis=-1, prepend=0.0)
        return np.asarray((step * precision).sum(axis=-1))

    return stat


def _percentile(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = dist[np.isfinite(dist)]
    if not len(finite):
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(finite, [tail, 1 - tail])
    return float(lo), float(hi)


def _bootstrap(
    statistic: Statistic, n: int, confidence: float, n_resamples: int, seed: int
) -> tuple[float, float, np.ndarray]:
    with warnings.catch_warnings():
        # BCa is undefined for a degenerate resample distribution: handled below
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (np.arange(n),),
            lambda idx, axis=-1: statistic(idx),  # scipy passes the resampled axis last
            vectorized=True,
            axis=-1,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    dist = np.asarray(res.bootstrap_distribution)
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
    """``metric(B) - metric(A)`` on the texts both runs share."""

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
    same text in both). The p-value is two-sided: twice the share of resampled differences
    on the far side of zero, as ``(count + 1) / (resamples + 1)`` (capped at 1)."""
    full = np.arange(n)[None, :]
    a = float(np.asarray(stat_a(full))[0]) if n else math.nan
    b = float(np.asarray(stat_b(full))[0]) if n else math.nan
    diff = b - a
    if n < 2 or math.isnan(diff):
        return PairedResult(metric, a, b, diff, math.nan, math.nan, math.nan, n)

    def stat(idx: np.ndarray) -> np.ndarray:
        return np.asarray(stat_b(idx)) - np.asarray(stat_a(idx))

    lo, hi, dist = _bootstrap(stat, n, confidence, n_resamples, seed)
    lo, hi = min(lo, diff), max(hi, diff)
    finite = dist[np.isfinite(dist)]
    if not len(finite) or np.all(finite == 0):
        p = 1.0
    else:
        # (count + 1) / (resamples + 1): a p-value is never 0 from finitely many resamples
        tail = min((finite <= 0).sum(), (finite >= 0).sum())
        p = float(min(1.0, 2 * (tail + 1) / (len(finite) + 1)))
    return PairedResult(metric, a, b, diff, lo, hi, p, n)


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
