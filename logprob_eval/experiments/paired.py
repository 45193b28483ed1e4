"""Paired comparison of two runs of one config on the texts both scored.

The inputs are per-text outcomes (:attr:`RankingMetrics.per_text`, or a baseline's copy of
them): every label's score, the true labels, and the per-text values the mean metrics
average. For each headline metric :func:`compare_outcomes` gives the difference B - A with
its ``1 - alpha`` interval and p-value, **both from one procedure** per metric, so that the
interval excludes zero exactly when ``p < alpha`` and a message can never show one
contradicting the other:

* top-1 (paired hits): McNemar's exact test on the texts that flipped, and the exact
  (Clopper-Pearson) interval that inverts it (:func:`.intervals.mcnemar_difference`);
* every other metric: a paired bootstrap over the shared texts whose percentile interval and
  p-value are read off the same resampled differences
  (:func:`.intervals.paired_difference`).

**The regression rule** (:func:`is_regression`): a metric regressed when it dropped by more
than ``min_effect`` *and* the drop is significant: the interval's **high** end is below zero
(equivalently ``p < alpha``). A drop larger than ``min_effect`` whose interval reaches zero
passes; so do an improvement and a significant drop smaller than ``min_effect``. Each is
reported with its interval.

:func:`flipped_texts` lists the texts whose top label changed or whose true label fell out
of (or came into) the top k, each with both rankings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import intervals as iv

__all__ = [
    "GATED_METRICS",
    "MetricComparison",
    "TextOutcomes",
    "compare_outcomes",
    "flipped_texts",
    "id_order",
    "is_regression",
]

# metric -> the per-text value it is the mean of (None: computed from the score matrix)
GATED_METRICS: dict[str, str | None] = {
    "top1_acc": "top1",
    "topk_acc": "topk",
    "mrr": "rr",
    "auc": "auc",
    "best_f1": None,
    "average_precision": None,
}


def id_order(ids: Any) -> list[str]:
    """Text ids as strings, in natural order (``2`` before ``10``; ``t002`` before ``t010``)."""

    def key(e: str) -> tuple[Any, ...]:
        return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", e))

    return sorted({str(e) for e in ids}, key=key)


@dataclass(frozen=True)
class TextOutcomes:
    """Per-text outcomes of one config in one run, rows in ``ids`` order."""

    ids: list[str]
    labels: list[str]
    scores: np.ndarray  # (text, label); -inf = missing
    truth: np.ndarray  # (text, label) bool
    values: dict[str, np.ndarray]  # top1, topk, rr, auc per text
    k: int

    @classmethod
    def from_per_text(
        cls, labels: Sequence[str], per_text: Mapping[str, Mapping[str, Any]], k: int
    ) -> TextOutcomes:
        per_text = {str(e): o for e, o in per_text.items()}  # ids read from a table may be ints
        ids = id_order(per_text)
        lab = list(labels)

        def num(v: Any, missing: float) -> float:
            return missing if v is None else float(v)

        scores = np.array(
            [[num(x, -math.inf) for x in per_text[e]["scores"]] for e in ids], dtype=float
        ).reshape(len(ids), len(lab))
        truth = np.array(
            [[lb in set(per_text[e]["true"]) for lb in lab] for e in ids], dtype=bool
        ).reshape(len(ids), len(lab))
        values = {
            name: np.array([num(per_text[e].get(name), math.nan) for e in ids], dtype=float)
            for name in ("top1", "topk", "rr", "auc")
        }
        return cls(ids, lab, scores, truth, values, k)

    def take(self, ids: Sequence[str], labels: Sequence[str]) -> TextOutcomes:
        """These texts, labels in this order."""
        where = {e: i for i, e in enumerate(self.ids)}  # list.index per text: quadratic
        rows = [where[e] for e in ids]
        cols = [self.labels.index(lb) for lb in labels]
        return TextOutcomes(
            list(ids),
            list(labels),
            self.scores[np.ix_(rows, cols)],
            self.truth[np.ix_(rows, cols)],
            {k: v[rows] for k, v in self.values.items()},
            self.k,
        )

    def statistic(self, metric: str) -> iv.Statistic:
        name = GATED_METRICS[metric]
        if name is not None:
            return iv.mean_statistic(self.values[name])
        if metric == "best_f1":
            return iv.best_f1_statistic(self.scores, self.truth)
        return iv.average_precision_statistic(self.scores, self.truth)

    def ranking(self, i: int) -> list[tuple[str, float]]:
        order = np.argsort(-np.nan_to_num(self.scores[i], neginf=-1e300), kind="stable")
        return [(self.labels[j], float(self.scores[i, j])) for j in order]


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one config, B against A on the shared texts."""

    result: iv.PairedResult  # its interval and p-value come from one test (result.test)
    regression: bool
    mcnemar: tuple[int, int, float] | None = None  # (lost, gained, p) for top-1

    @property
    def significant_p(self) -> float:
        return self.result.p_value

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.result.as_dict(), "regression": self.regression}
        if self.mcnemar is not None:
            lost, gained, p = self.mcnemar
            out["mcnemar"] = {"lost": lost, "gained": gained, "p_value": p}
        return out


def is_regression(result: iv.PairedResult, *, min_effect: float) -> bool:
    """A drop larger than ``min_effect`` whose interval lies below zero (module doc); the
    interval is at ``1 - alpha``, so this is ``p < alpha`` as well."""
    if math.isnan(result.diff) or result.diff >= -min_effect:
        return False
    return result.high < 0


def compare_outcomes(
    a: TextOutcomes,
    b: TextOutcomes,
    *,
    alpha: float = 0.05,
    min_effect: float = 0.02,
    seed: int = iv.SEED,
    metrics: Sequence[str] = tuple(GATED_METRICS),
) -> tuple[dict[str, MetricComparison], list[str], list[str], list[str]]:
    """(per metric comparison, shared text ids, ids only in A, ids only in B)."""
    shared = id_order(set(a.ids) & set(b.ids))
    only_a = id_order(set(a.ids) - set(b.ids))
    only_b = id_order(set(b.ids) - set(a.ids))
    labels = [lb for lb in a.labels if lb in set(b.labels)]
    aa, bb = a.take(shared, labels), b.take(shared, labels)
    out: dict[str, MetricComparison] = {}
    for metric in metrics:
        mc = None
        if metric == "top1_acc":
            hits_a, hits_b = aa.values["top1"] > 0, bb.values["top1"] > 0
            res = iv.mcnemar_difference(metric, hits_a, hits_b, confidence=1 - alpha)
            mc = iv.mcnemar_exact(hits_a, hits_b)
        else:
            res = iv.paired_difference(
                metric,
                aa.statistic(metric),
                bb.statistic(metric),
                len(shared),
                confidence=1 - alpha,
                seed=seed,
            )
        out[metric] = MetricComparison(res, is_regression(res, min_effect=min_effect), mc)
    return out, shared, only_a, only_b


def flipped_texts(a: TextOutcomes, b: TextOutcomes) -> list[dict[str, Any]]:
    """Shared texts whose top label changed, or whose true labels left or entered the top k."""
    shared = id_order(set(a.ids) & set(b.ids))
    labels = [lb for lb in a.labels if lb in set(b.labels)]
    aa, bb = a.take(shared, labels), b.take(shared, labels)
    out = []
    for i, ex in enumerate(shared):
        ra, rb = aa.ranking(i), bb.ranking(i)
        why = []
        if aa.values["top1"][i] != bb.values["top1"][i] or ra[0][0] != rb[0][0]:
            why.append(f"top label {ra[0][0]} -> {rb[0][0]}")
        if aa.values["topk"][i] > bb.values["topk"][i]:
            why.append(f"true label fell out of the top {a.k}")
        elif aa.values["topk"][i] < bb.values["topk"][i]:
            why.append(f"true label came into the top {a.k}")
        if why:
            out.append(
                {
                    "example_id": ex,
                    "why": "; ".join(why),
                    "true": [lb for lb, t in zip(labels, aa.truth[i], strict=True) if t],
                    "rr": [float(aa.values["rr"][i]), float(bb.values["rr"][i])],
                    "ranking_a": ra,
                    "ranking_b": rb,
                }
            )
    return out
