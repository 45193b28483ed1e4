"""Every metric of one case with its bootstrap intervals over texts (ranking, thresholds,
transfer): what the suite's ``llm_metrics`` fixture gives the tests.

The numbers are those of the case's :class:`~..experiments.analysis.ConfigAnalysis`, which
the runner computes once per process (and xdist workers hand to the controller, so the
run's report shows the same objects the tests asserted on)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..experiments.analysis import ConfigAnalysis
from ..experiments.metrics import RankingMetrics
from ..experiments.thresholds import ThresholdSweep
from .baselines import Baseline

__all__ = ["HEADLINE", "CaseMetrics", "format_value"]

# the headline metrics: name -> where it lives ("ranking" or "thresholds")
HEADLINE = {
    "top1_acc": "ranking",
    "topk_acc": "ranking",
    "mrr": "ranking",
    "auc": "ranking",
    "best_f1": "thresholds",
    "average_precision": "thresholds",
}


def format_value(value: float, ci: Any = None) -> str:
    """``0.850 [0.760, 0.930]`` (or ``n/a``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if not ci or len(ci) != 2 or any(c is None or math.isnan(float(c)) for c in ci):
        return f"{value:.3f}"
    return f"{value:.3f} [{float(ci[0]):.3f}, {float(ci[1]):.3f}]"


@dataclass(frozen=True)
class CaseMetrics:
    case: str
    ranking: RankingMetrics
    sweep: ThresholdSweep
    transfer: dict[str, float] | None  # None with fewer than 4 texts

    @classmethod
    def of(cls, case: str, analysis: ConfigAnalysis) -> CaseMetrics:
        return cls(case, analysis.ranking, analysis.sweep, analysis.transfer)

    def value(self, metric: str) -> float:
        source = self.ranking if HEADLINE.get(metric) == "ranking" else self.sweep
        return float(getattr(source, metric))

    def ci(self, metric: str) -> list[float]:
        source = self.ranking if HEADLINE[metric] == "ranking" else self.sweep
        return list(source.ci.get(metric, [math.nan, math.nan]))

    def headline(self) -> dict[str, float]:
        return {m: self.value(m) for m in HEADLINE}

    def properties(self) -> dict[str, float]:
        """Junit properties: each headline metric and its interval's ends."""
        out: dict[str, float] = {}
        for m in HEADLINE:
            lo, hi = self.ci(m)
            out.update({m: self.value(m), f"{m}_ci_low": lo, f"{m}_ci_high": hi})
        return out

    def baseline(self, digest: str | None) -> Baseline:
        return Baseline(
            self.case,
            digest,
            self.ranking.k,
            self.headline(),
            list(self.ranking.labels),
            self.ranking.per_text,
        )
