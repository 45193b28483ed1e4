"""Every leave-one-out value of the interval statistics at once (the jackknife of BCa).

BCa's acceleration needs each statistic on the ``n`` samples that leave one text out.
Evaluated one sample at a time that is ``n`` evaluations of an O(n) statistic: quadratic,
minutes at 10,000 texts. Here each statistic's leave-one-out values come from the full
data's totals minus what the left-out text contributes, in about linear time; the tests
check them against the direct evaluation.

* **Means** (top-1, top-k, MRR, AUC, Kendall tau): ``(sum - x_i) / (count - 1)`` over the
  non-NaN values (a NaN value leaves the mean as it is).
* **Threshold statistics** (best F1, average precision) read the text x label pairs sorted
  by score: at threshold group ``k`` (all pairs down to the ``k``-th distinct score) the
  full data has ``TP[k]`` true pairs among ``PRED[k]`` predicted ones, ``P`` positives in
  all. Without text ``i`` these are ``TP[k] - A_i[k]``, ``PRED[k] - B_i[k]`` and
  ``P - p_i``, where ``A_i[k]`` and ``B_i[k]`` count text ``i``'s true and all pairs down to
  group ``k``: step functions that change only in the (at most one per label) groups
  holding a pair of text ``i``, its *incidences*.

  - **Average precision** ``sum_k (tp[k] - tp[k-1]) / P * tp[k] / pred[k]``: between two
    incidences of text ``i``, ``A_i = a`` and ``B_i = b`` are constant, so that stretch
    adds ``sum dTP[k] TP[k] / (PRED[k] - b) - a * sum dTP[k] / (PRED[k] - b)``: prefix sums
    over ``k`` of two arrays per ``b`` (``b`` is at most the number of labels). The groups
    of the incidences themselves are added one by one.
  - **Best F1** ``max_k 2 tp[k] / (pred[k] + P)``: leaving a text out changes each count
    by at most its own pairs, so every text's maximum is at least ``LB``, the best of the
    pessimistic ``2 (TP[k] - a_max) / (PRED[k] + P)``, and a group whose optimistic
    ``2 TP[k] / (PRED[k] + P - d_max)`` is below ``LB`` is no text's maximum. Only the
    remaining groups (those near the best threshold) are evaluated for every text.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["average_precision", "best_f1", "means"]

CHUNK = 1 << 21
"""Elements (texts x candidate groups) evaluated at a time by :func:`best_f1`."""


def means(values: np.ndarray) -> np.ndarray:
    """``(rows, n)`` -> the mean of each row without its ``i``-th value, NaN values left out
    (NaN where nothing is left)."""
    v = np.asarray(values, dtype=float)
    present = ~np.isnan(v)
    total = np.where(present, v, 0.0).sum(axis=1, keepdims=True)
    count = present.sum(axis=1, keepdims=True)
    rest = np.where(present, count - 1, count).astype(float)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.where(present, total - np.where(present, v, 0.0), total) / rest
    return np.where(rest > 0, out, np.nan)


@dataclass(frozen=True)
class _Incidences:
    """The (text, threshold group) cells that hold pairs, sorted by text then group, with
    the text's true and all pairs down to that group (``a``, ``b``)."""

    text: np.ndarray
    group: np.ndarray
    pairs: np.ndarray  # pairs of the text in this group
    trues: np.ndarray  # true pairs of the text in this group
    a: np.ndarray  # true pairs of the text down to this group
    b: np.ndarray  # pairs of the text down to this group
    first: np.ndarray  # True on each text's first incidence
    next_group: np.ndarray  # the text's next incidence's group; the group count after its last

    @classmethod
    def of(cls, cum: Any) -> _Incidences:
        n_groups = len(cum.ends)
        group = np.searchsorted(cum.ends, np.arange(len(cum.text)))  # each pair's group
        cells, which = np.unique(cum.text.astype(np.int64) * n_groups + group, return_inverse=True)
        pairs = np.bincount(which, minlength=len(cells)).astype(float)
        trues = np.bincount(which, weights=cum.y, minlength=len(cells))
        text, group = cells // n_groups, cells % n_groups
        first = np.r_[True, text[1:] != text[:-1]] if len(cells) else np.zeros(0, bool)
        starts = np.flatnonzero(first)
        runs = np.diff(np.r_[starts, len(cells)])
        before_pairs = np.cumsum(pairs) - pairs
        before_trues = np.cumsum(trues) - trues
        b = np.cumsum(pairs) - np.repeat(before_pairs[starts], runs)
        a = np.cumsum(trues) - np.repeat(before_trues[starts], runs)
        last = np.r_[first[1:], True] if len(cells) else np.zeros(0, bool)
        next_group = np.where(last, n_groups, np.r_[group[1:], n_groups])
        return cls(text, group, pairs, trues, a, b, first, next_group)


def _totals(cum: Any) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(TP per group, PRED per group, P, positives per text) of the full data."""
    tp, pred, positives = cum.full_counts()
    per_text = np.bincount(cum.y_all_text, minlength=cum.n).astype(float)
    return tp, pred, float(positives), per_text


def average_precision(cum: Any) -> np.ndarray:
    """Micro average precision without each text (NaN where no positive is left)."""
    tp, pred, positives, p_text = _totals(cum)
    inc = _Incidences.of(cum)
    d_tp = np.diff(tp, prepend=0.0)
    max_b = int(inc.b.max()) if len(inc.b) else 0
    # prefix sums, per b, of dTP*TP/(PRED-b) and dTP/(PRED-b); a leading 0 column
    shifted = pred[None, :] - np.arange(max_b + 1)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        prec_sum = np.where(shifted > 0, d_tp * tp / shifted, 0.0)
        step_sum = np.where(shifted > 0, d_tp / shifted, 0.0)
    prec_sum = np.concatenate([np.zeros((max_b + 1, 1)), np.cumsum(prec_sum, axis=1)], axis=1)
    step_sum = np.concatenate([np.zeros((max_b + 1, 1)), np.cumsum(step_sum, axis=1)], axis=1)
    g, a, b = inc.group, inc.a, inc.b.astype(np.int64)
    # the incidence's own group: its pairs leave that group's counts too
    own_den = pred[g] - b
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.where(own_den > 0, (d_tp[g] - inc.trues) * (tp[g] - a) / own_den, 0.0)
    # the stretch after it, up to the text's next incidence: A = a, B = b there
    after = (prec_sum[b, inc.next_group] - prec_sum[b, g + 1]) - a * (
        step_sum[b, inc.next_group] - step_sum[b, g + 1]
    )
    # the stretch before the text's first incidence: nothing of the text yet
    before = np.where(inc.first, prec_sum[0, g], 0.0)
    total = np.full(cum.n, prec_sum[0, -1])  # a text without pairs changes no group
    has = np.unique(inc.text)
    total[has] = np.bincount(inc.text, weights=own + after + before, minlength=cum.n)[has]
    left = positives - p_text
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(left > 0, total / left, np.nan)


def best_f1(cum: Any) -> np.ndarray:
    """Best micro F1 over the thresholds without each text (exact: see the module doc)."""
    tp, pred, positives, p_text = _totals(cum)
    inc = _Incidences.of(cum)
    pairs_text = np.bincount(cum.text, minlength=cum.n)
    most_true = float(p_text.max()) if cum.n else 0.0
    most_out = float((pairs_text + p_text).max()) if cum.n else 0.0
    low = (2 * (tp - most_true) / (pred + positives)).max()
    with np.errstate(invalid="ignore", divide="ignore"):
        den = pred + positives - most_out
        high = np.where(den > 0, 2 * tp / den, np.inf)
    cand = np.flatnonzero(high >= low)
    # for every incidence, the first candidate group at or after it
    at = np.searchsorted(cand, inc.group)
    out = np.zeros(cum.n)
    step = max(1, CHUNK // len(cand))
    for start in range(0, cum.n, step):
        stop = min(cum.n, start + step)
        mine = (inc.text >= start) & (inc.text < stop) & (at < len(cand))
        cell = (inc.text[mine] - start, at[mine])
        a = np.zeros((stop - start, len(cand)))  # A_i at each candidate group
        b = np.zeros((stop - start, len(cand)))  # B_i at each candidate group
        np.add.at(a, cell, inc.trues[mine])
        np.add.at(b, cell, inc.pairs[mine])
        tp_i = tp[cand] - np.cumsum(a, axis=1)
        den = pred[cand] - np.cumsum(b, axis=1) + (positives - p_text[start:stop, None])
        f1 = np.divide(2 * tp_i, den, out=np.zeros_like(tp_i), where=den > 0)
        out[start:stop] = f1.max(axis=1)
    return out
