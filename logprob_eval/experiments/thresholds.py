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

Precision, recall and F1 (micro, macro, per-sample) follow scikit-learn's definitions,
from its confusion counts; the PR curve and average precision (micro over all text x label
pairs) are scikit-learn's.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    multilabel_confusion_matrix,
    precision_recall_curve,
)

from ..errors import ConfigError
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


def _grid(s: np.ndarray, n: int, lo: float | None, hi: float | None) -> np.ndarray:
    finite = s[np.isfinite(s)]
    lo = float(finite.min()) if lo is None and len(finite) else lo
    hi = float(finite.max()) if hi is None and len(finite) else hi
    if lo is None or hi is None:
        return np.array([])
    if lo > hi:
        raise ConfigError(
            f"threshold range [{lo}, {hi}] is empty: the low end must not exceed the high end"
        )
    inside = finite[(finite >= lo) & (finite <= hi)]
    if len(inside) >= 2:
        grid = np.unique(np.quantile(inside, np.linspace(0, 1, n)))
    else:
        grid = np.linspace(lo, hi, n) if hi > lo else np.array([lo])
    return grid


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's ``zero_division=0``)."""
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _sweep_prf(y: np.ndarray, s: np.ndarray, grid: np.ndarray) -> list[tuple[float, ...]]:
    """(precision, recall, F1 micro, F1 macro, F1 per-sample) at every threshold of ``grid``.

    The confusion counts of every (threshold, label) and (threshold, text) pair come from
    two calls of scikit-learn's ``multilabel_confusion_matrix`` on the predictions of all
    thresholds stacked; the averages are scikit-learn's definitions with
    ``zero_division=0`` (tests check every point against ``precision_recall_fscore_support``).
    """
    n_t, (n_ex, n_lab) = len(grid), y.shape
    preds = s[None, :, :] >= grid[:, None, None]  # (threshold, text, label)
    wide_pred = preds.transpose(1, 0, 2).reshape(n_ex, n_t * n_lab)
    wide_true = np.tile(y, (1, n_t))
    by_label = multilabel_confusion_matrix(wide_true, wide_pred).reshape(n_t, n_lab, 2, 2)
    tall_pred = preds.reshape(n_t * n_ex, n_lab)
    tall_true = np.tile(y, (n_t, 1))
    by_text = multilabel_confusion_matrix(tall_true, tall_pred, samplewise=True).reshape(
        n_t, n_ex, 2, 2
    )
    tp, fp, fn = by_label[:, :, 1, 1], by_label[:, :, 0, 1], by_label[:, :, 1, 0]
    p_mi = _safe_div(tp.sum(1), tp.sum(1) + fp.sum(1))
    r_mi = _safe_div(tp.sum(1), tp.sum(1) + fn.sum(1))
    f_mi = _safe_div(2 * tp.sum(1), 2 * tp.sum(1) + fp.sum(1) + fn.sum(1))
    f_ma = _safe_div(2 * tp, 2 * tp + fp + fn).mean(axis=1)
    tps, fps, fns = by_text[:, :, 1, 1], by_text[:, :, 0, 1], by_text[:, :, 1, 0]
    f_sa = _safe_div(2 * tps, 2 * tps + fps + fns).mean(axis=1)
    return [tuple(float(x) for x in row) for row in zip(p_mi, r_mi, f_mi, f_ma, f_sa, strict=True)]


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
    n_thresholds: int = 60,
    low: float | None = None,
    high: float | None = None,
    examples: list[str] | None = None,
) -> ThresholdSweep:
    """Sweep a global threshold over the observed score range of one config."""
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
    grid = _grid(s, n_thresholds, low, high)
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
    d = sweep(df, config, score=score, bounds=bounds, examples=dev)
    t = sweep(df, config, score=score, bounds=bounds, examples=test)
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
