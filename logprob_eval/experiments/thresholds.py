"""Multi-label threshold experiments: predict every label whose score passes a threshold.

How scores enter a sweep (``bounds=``):

* ``exact`` scores are used as they are;
* an ``upper_bound`` is at most its value, so it can never pass a threshold above it.
  ``"optimistic"`` (default) lets it pass thresholds at or below its value (the bound is
  the best available estimate); ``"pessimistic"`` thresholds its guaranteed lower end
  (the ``lower`` column: the exact contributions alone, ``-inf`` when there are none), so
  it passes only thresholds its value is sure to reach. (For a transformed score column,
  or a table without ``lower``, a bound never passes.)
* ``missing`` scores never pass (``-inf``); failed rows (``error``) are left out with
  their examples.

The sweep is exact: every distinct finite score observed is a threshold (any other
threshold predicts the same set as the smallest observed score at or above it, or nothing),
so the best F1 is the best any global threshold can reach, and a threshold tuned elsewhere
never beats it on the same texts.

Precision, recall and F1 (micro, macro, per-sample) follow scikit-learn's definitions
(``zero_division=0``; the tests check every point against scikit-learn); the PR curve and
average precision (micro over all text x label pairs) are scikit-learn's. Best F1 and AP
carry a seeded bootstrap interval over texts (``ci``, :mod:`.intervals`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve

from ..errors import ConfigError
from . import intervals as iv
from .table import label_matrix

__all__ = ["BoundPolicy", "ThresholdSweep", "effective_scores", "sweep", "transfer"]

BoundPolicy = Literal["optimistic", "pessimistic"]
BOUND_POLICIES: tuple[BoundPolicy, ...] = ("optimistic", "pessimistic")


@dataclass
class ThresholdSweep:
    config: str
    score: str
    bounds: str
    n_examples: int
    thresholds: list[float]
    precision_micro: list[float]
    recall_micro: list[float]
    f1_micro: list[float]
    f1_macro: list[float]
    f1_samples: list[float]
    best_threshold: float
    best_f1: float
    average_precision: float
    pr_precision: list[float]
    pr_recall: list[float]
    per_label_thresholds: dict[str, float]
    per_label_f1: dict[str, float]
    notes: list[str] = field(default_factory=list)
    ci: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in (
                "config",
                "score",
                "bounds",
                "n_examples",
                "best_threshold",
                "best_f1",
                "average_precision",
                "per_label_thresholds",
                "per_label_f1",
                "notes",
                "ci",
            )
        }


def effective_scores(
    df: pd.DataFrame, score: str = "logprob", bounds: BoundPolicy = "optimistic"
) -> pd.Series:
    """The scores a sweep compares with thresholds (NaN for failed rows)."""
    if bounds not in BOUND_POLICIES:
        raise ConfigError(f"bounds={bounds!r} must be one of {', '.join(BOUND_POLICIES)}")
    s = df[score].astype(float).copy()
    s[df["status"] == "missing"] = -np.inf
    if bounds == "pessimistic":
        bound = df["status"] == "upper_bound"
        if score == "logprob" and "lower" in df:
            s[bound] = df.loc[bound, "lower"].astype(float)
        else:
            s[bound] = -np.inf
    s[df["status"] == "error"] = np.nan
    return s


def _matrices(
    df: pd.DataFrame,
    config: str,
    score: str,
    bounds: BoundPolicy,
    examples: list[str] | None = None,
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    part = df[df["config"] == config].copy()
    part["_eff"] = effective_scores(part, score, bounds)
    ids, labels, s, y = label_matrix(part, config, "_eff", examples)
    keep = ~np.isnan(s).any(axis=1)
    return [i for i, k in zip(ids, keep, strict=True) if k], labels, s[keep], y[keep]


def _grid(s: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    """Every distinct finite score in ``[lo, hi]`` (the whole observed range by default)."""
    finite = np.unique(s[np.isfinite(s)])
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(
            f"threshold range [{lo}, {hi}] is empty: the low end must not exceed the high end"
        )
    if lo is not None:
        finite = finite[finite >= lo]
    if hi is not None:
        finite = finite[finite <= hi]
    return finite


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's ``zero_division=0``)."""
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _sweep_prf(y: np.ndarray, s: np.ndarray, grid: np.ndarray) -> list[tuple[float, ...]]:
    """(precision, recall, F1 micro, F1 macro, F1 per-sample) at every threshold of ``grid``.

    The pairs a threshold predicts (score >= threshold) are a prefix of the pairs sorted by
    score, descending: the confusion counts of every threshold are cumulative sums over
    the sorted pairs, read where its prefix ends. Per label (micro, macro) the counts are
    those sums; per text (per-sample F1) only the text of each added pair changes its F1,
    so the mean over texts is the cumulative sum of those changes. The averages are
    scikit-learn's definitions with ``zero_division=0`` (tests check every point against
    ``precision_recall_fscore_support``). Memory and time grow with pairs + thresholds.
    """
    n, n_lab = s.shape
    order = np.argsort(-s.ravel(), kind="stable")
    ends = np.searchsorted(-s.ravel()[order], -grid, side="right")  # prefix length per threshold
    label = np.tile(np.arange(n_lab), n)[order]
    true = y.ravel()[order]
    per_label = np.zeros((len(order) + 1, n_lab), dtype=np.int64)  # row j: after j pairs
    per_label[np.arange(1, len(order) + 1), label] = 1
    n_pred = np.cumsum(per_label, axis=0)[ends]  # per (threshold, label)
    per_label[np.arange(1, len(order) + 1), label] = true
    tp = np.cumsum(per_label, axis=0)[ends]
    fp, fn = n_pred - tp, y.sum(axis=0)[None, :] - tp
    p_mi = _safe_div(tp.sum(1), tp.sum(1) + fp.sum(1))
    r_mi = _safe_div(tp.sum(1), tp.sum(1) + fn.sum(1))
    f_mi = _safe_div(2 * tp.sum(1), 2 * tp.sum(1) + fp.sum(1) + fn.sum(1))
    f_ma = _safe_div(2 * tp, 2 * tp + fp + fn).mean(axis=1)
    f_sa = _mean_text_f1(y, order, ends)
    return [tuple(row) for row in np.column_stack([p_mi, r_mi, f_mi, f_ma, f_sa]).tolist()]


def _mean_text_f1(y: np.ndarray, order: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The mean over texts of each text's F1 when the first ``ends[t]`` pairs of ``order``
    are predicted: ``2 tp / (predicted + true)`` per text (0 when both are 0, and before any
    of its pairs is predicted)."""
    n, n_lab = y.shape
    text = order // n_lab
    true = y.ravel()[order].astype(np.int64)
    by_text = np.argsort(text, kind="stable")  # each text's pairs, in score order
    start = np.searchsorted(text[by_text], np.arange(n))  # where each text's pairs begin
    rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
    tp = np.cumsum(true[by_text])
    tp -= np.repeat(tp[start] - true[by_text][start], np.diff(np.r_[start, len(order)]))
    f1 = _safe_div(2 * tp, rank + 1 + y.sum(axis=1)[text[by_text]])
    change = f1 - np.where(rank > 0, np.r_[0.0, f1[:-1]], 0.0)  # F1 after minus before
    per_pair = np.empty(len(order))
    per_pair[by_text] = change
    return np.r_[0.0, np.cumsum(per_pair)][ends] / n


def _finite_for_ranking(s: np.ndarray) -> np.ndarray:
    finite = s[np.isfinite(s)]
    floor = (finite.min() - 1.0) if len(finite) else -1.0
    return np.where(np.isfinite(s), s, floor)


def sweep(
    df: pd.DataFrame,
    config: str,
    *,
    score: str = "logprob",
    bounds: BoundPolicy = "optimistic",
    low: float | None = None,
    high: float | None = None,
    examples: list[str] | None = None,
    intervals: bool = True,
    seed: int = iv.SEED,
) -> ThresholdSweep:
    """Sweep a global threshold over every distinct observed score of one config
    (within ``[low, high]`` when given); with ``intervals``, bootstrap intervals over texts
    for the best F1 and the average precision."""
    ids, labels, s, y = _matrices(df, config, score, bounds, examples)
    notes: list[str] = []
    nan = math.nan
    empty = ThresholdSweep(
        config,
        score,
        bounds,
        len(ids),
        [],
        [],
        [],
        [],
        [],
        [],
        nan,
        nan,
        nan,
        [],
        [],
        {},
        {},
        notes,
    )
    if not ids:
        notes.append("no scored examples for this config")
        return empty
    grid = _grid(s, low, high)
    if not len(grid):
        notes.append("every score is missing: no threshold can be swept")
        return empty
    cols = _sweep_prf(y, s, grid)
    p, r, f, fm, fs = (list(x) for x in zip(*cols, strict=True))
    best = int(np.argmax(f))
    ranked = _finite_for_ranking(s)
    pos = y.sum(axis=0)
    if y.sum() == 0:
        notes.append("no true labels at all: precision and AP are undefined")
        ap, pr_p, pr_r = nan, [], []
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ap = float(average_precision_score(y, ranked, average="micro"))
        pr_p_arr, pr_r_arr, _ = precision_recall_curve(y.ravel(), ranked.ravel())
        pr_p, pr_r = pr_p_arr.tolist(), pr_r_arr.tolist()
    per_t: dict[str, float] = {}
    per_f: dict[str, float] = {}
    for j, lab in enumerate(labels):
        if pos[j] == 0:
            per_t[lab], per_f[lab] = nan, nan
            notes.append(f"label {lab!r} has no positives: no per-label threshold")
            continue
        pp, rr, tt = precision_recall_curve(y[:, j], ranked[:, j])
        with np.errstate(invalid="ignore", divide="ignore"):
            ff = np.where(pp + rr > 0, 2 * pp * rr / (pp + rr), 0.0)[:-1]
        k = int(np.argmax(ff))
        per_t[lab], per_f[lab] = float(tt[k]), float(ff[k])
    ci: dict[str, list[float]] = {}
    if intervals:
        ci["best_f1"] = list(iv.bootstrap_interval(iv.best_f1_statistic(s, y), len(ids), seed=seed))
        ci["average_precision"] = (
            list(iv.bootstrap_interval(iv.average_precision_statistic(s, y), len(ids), seed=seed))
            if not math.isnan(ap)
            else [nan, nan]
        )
    return ThresholdSweep(
        config,
        score,
        bounds,
        len(ids),
        grid.tolist(),
        p,
        r,
        f,
        fm,
        fs,
        float(grid[best]),
        float(f[best]),
        ap,
        pr_p,
        pr_r,
        per_t,
        per_f,
        notes,
        ci,
    )


def transfer(
    df: pd.DataFrame,
    config: str,
    dev: list[str],
    test: list[str],
    *,
    score: str = "logprob",
    bounds: BoundPolicy = "optimistic",
) -> dict[str, float]:
    """Tune the global threshold on ``dev`` texts, apply it to ``test`` texts.

    ``kept`` is the test F1 at the dev threshold over the best test F1 any threshold gets.
    """
    d = sweep(df, config, score=score, bounds=bounds, examples=dev, intervals=False)
    t = sweep(df, config, score=score, bounds=bounds, examples=test, intervals=False)
    out = {
        "dev_threshold": d.best_threshold,
        "dev_f1": d.best_f1,
        "test_best_f1": t.best_f1,
        "test_f1_at_dev_threshold": math.nan,
        "kept": math.nan,
    }
    if math.isnan(d.best_threshold) or math.isnan(t.best_f1):
        return out
    _, _, s, y = _matrices(df, config, score, bounds, test)
    f_at = _sweep_prf(y, s, np.array([d.best_threshold]))[0][2]
    out["test_f1_at_dev_threshold"] = f_at
    out["kept"] = f_at / t.best_f1 if t.best_f1 > 0 else math.nan
    return out
