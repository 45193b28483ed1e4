"""Floors that a scorer at chance clears: found at collection, before anything is scored.

For every case, the floors it is held to are compared with the null distribution of each
metric on the suite's own texts and labels (:func:`~..experiments.chance.chance_distribution`).
A floor that a chance scorer reaches more often than ``level`` (1 time in 20) is reported:
it cannot show that the model does the task.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.datasets import Dataset
from ..experiments.chance import CHANCE_METRICS, chance_distribution, chance_exceedance
from .config import Case, EvalConfig

__all__ = ["weak_floors"]


def weak_floors(
    config: EvalConfig,
    cases: Sequence[Case],
    dataset: Dataset,
    *,
    level: float = 0.05,
    n_sim: int = 1000,
    seed: int = 0,
) -> list[str]:
    """One line per (case, floor) that a chance scorer clears more often than ``level``."""
    k = int(config.expect("ranking", "k", 3))
    dists: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
    out = []
    for case in cases:
        labels = case.label_set.canonical
        if labels not in dists:
            truth = np.array([[lb in ex.labels for lb in labels] for ex in dataset], dtype=bool)
            dists[labels] = chance_distribution(truth, k=k, n_sim=n_sim, seed=seed)
        dist = dists[labels]
        for section in ("ranking", "thresholds"):
            for metric, floor in config.floors(section, case).items():
                if metric not in CHANCE_METRICS:
                    continue
                p = chance_exceedance(dist, metric, floor)
                if p > level:
                    q = float(np.quantile(dist[metric], 1 - level))
                    out.append(
                        f"{case.id}: {section} floor {metric} = {floor:.3f} is cleared by a "
                        f"scorer at chance {p:.0%} of the time on these texts (its "
                        f"{1 - level:.0%} quantile is {q:.3f}): raise it above {q:.3f}, drop "
                        "it, or declare the case at chance"
                    )
    return out
