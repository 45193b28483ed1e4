"""Every metric of one case, computed once per run (ranking, thresholds, transfer, with
bootstrap intervals over texts) and shared by the suite's tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..experiments.analysis import split_ids
from ..experiments.metrics import RankingMetrics, ranking_metrics
from ..experiments.thresholds import ThresholdSweep, sweep, transfer
from ..experiments.transforms import split_content_free
from .baselines import Baseline
from .config import Case, EvalConfig

__all__ = ["HEADLINE", "CaseMetrics", "case_metrics", "format_value"]

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
    transfer: dict[str, float]

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


def case_metrics(frame: pd.DataFrame, config: EvalConfig, case: Case) -> CaseMetrics:
    """All metrics of ``case`` from its scored frame (content-free rows left out)."""
    df, _ = split_content_free(frame)
    k = int(config.expect("ranking", "k", 3))
    m = ranking_metrics(df, case.config, k=k)
    s = sweep(df, case.config)
    ids = sorted(df["example_id"].unique())
    frac = float(config.dataset.get("dev_fraction", 0.5))
    dev, test = split_ids(ids, frac, int(config.dataset.get("seed", 0)))
    return CaseMetrics(case.id, m, s, transfer(df, case.config, dev, test))
