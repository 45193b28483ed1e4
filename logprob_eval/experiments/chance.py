"""What a scorer at chance reaches on given texts: the null distribution of each headline
metric, from random scores (independent, uniform, no ties) on the same true labels.

Used to tell whether a floor means anything: a floor that a chance scorer clears more often
than 1 time in 20 does not show the model does the task.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHANCE_METRICS", "chance_distribution", "chance_exceedance"]

CHANCE_METRICS = ("top1_acc", "topk_acc", "mrr", "auc", "best_f1", "average_precision")


CHUNK = 1 << 21
"""Random scores (simulations x texts x labels) drawn and evaluated at a time."""


def chance_distribution(
    truth: np.ndarray, *, k: int = 3, n_sim: int = 1000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Each headline metric of ``n_sim`` random scorers on ``truth`` (text x label, bool);
    texts without a true label are left out, as the metrics do. The scorers are drawn and
    evaluated a batch at a time (the same draws as one ``rng.random((n_sim, n, labels))``),
    so memory stays bounded whatever the number of texts."""
    y = np.asarray(truth, dtype=bool)
    y = y[y.any(axis=1)]
    n, n_lab = y.shape
    rng = np.random.default_rng(seed)
    step = max(1, CHUNK // max(1, n * n_lab))
    parts = [
        _metrics(rng.random((min(step, n_sim - start), n, n_lab)), y, k)
        for start in range(0, n_sim, step)
    ]
    return {m: np.concatenate([p[m] for p in parts]) for m in CHANCE_METRICS}


def _metrics(s: np.ndarray, y: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The headline metrics of the scorers ``s`` (scorer x text x label) on ``y``."""
    n_sim, _, n_lab = s.shape
    ranks = np.argsort(np.argsort(-s, axis=-1), axis=-1) + 1  # 1 = best; no ties
    best = np.where(y[None], ranks, n_lab + 1).min(axis=-1)
    n_pos = y.sum(axis=1)
    n_neg = n_lab - n_pos
    asc = n_lab + 1 - ranks
    rank_sum = np.where(y[None], asc, 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    valid = n_neg > 0
    # micro F1 and AP over all pairs, read at the true pairs (the only places F1 can peak
    # and AP steps): the t-th best true pair ranks t + (false pairs scoring at or above it)
    flat = s.reshape(n_sim, -1)
    positives = int(y.sum())
    true_desc = -np.sort(-flat[:, y.ravel()], axis=1)
    false_asc = np.sort(flat[:, ~y.ravel()], axis=1)
    t = np.arange(1, positives + 1)
    above = [len(f) - np.searchsorted(f, d) for f, d in zip(false_asc, true_desc, strict=True)]
    rank = t + np.array(above).reshape(n_sim, positives)
    f1 = (2 * t / (rank + positives)).max(axis=1)
    ap = (t / rank).sum(axis=1) / positives
    return {
        "top1_acc": (best <= 1).mean(axis=1),
        "topk_acc": (best <= k).mean(axis=1),
        "mrr": (1.0 / best).mean(axis=1),
        "auc": auc[:, valid].mean(axis=1),
        "best_f1": f1,
        "average_precision": ap,
    }


def chance_exceedance(dist: dict[str, np.ndarray], metric: str, floor: float) -> float:
    """Share of chance scorers reaching ``floor`` (at or above it)."""
    return float((dist[metric] >= floor).mean())
