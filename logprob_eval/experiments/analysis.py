"""One call from a scored table to every metric a report shows.

Per config (:func:`analyze_config`): ranking metrics, the threshold sweep and the dev->test
transfer. These depend on that config's rows only, so a process that scored a config can
compute them where it is (the eval suite does, on its xdist workers) and hand them over as
JSON (:meth:`ConfigAnalysis.as_json`); :func:`analyze` computes only what it was not given,
and the result is the same either way.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .metrics import RankingMetrics, ranking_metrics
from .stability import PairAgreement, stability_summary
from .thresholds import BoundPolicy, ThresholdSweep, sweep, transfer
from .transforms import TRANSFORMS, split_content_free

__all__ = ["ConfigAnalysis", "analyze", "analyze_config", "split_ids"]


def split_ids(
    ids: Sequence[str], dev_fraction: float = 0.5, seed: int = 0
) -> tuple[list[str], list[str]]:
    """A deterministic (dev, test) split of text ids."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    cut = max(1, min(len(order) - 1, round(len(order) * dev_fraction)))
    return sorted(order[:cut]), sorted(order[cut:])


@dataclass
class ConfigAnalysis:
    """The per-config metrics: ranking, threshold sweep, dev->test transfer (None with
    fewer than 4 texts)."""

    ranking: RankingMetrics
    sweep: ThresholdSweep
    transfer: dict[str, float] | None

    def thresholds(self) -> dict[str, Any]:
        """The sweep's summary, with the transfer (the report's ``thresholds[config]``)."""
        info = self.sweep.summary()
        if self.transfer is not None:
            info["transfer"] = dict(self.transfer)
        return info

    def as_json(self) -> dict[str, Any]:
        """JSON-ready (shares the lists: serialise it, do not mutate it)."""
        return {
            "ranking": self.ranking.as_dict(),
            "sweep": dict(vars(self.sweep)),  # no deep copy: JSON copies it
            "transfer": self.transfer,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConfigAnalysis:
        return cls(
            RankingMetrics(**data["ranking"]), ThresholdSweep(**data["sweep"]), data["transfer"]
        )


def analyze_config(
    real: pd.DataFrame,
    config: str,
    *,
    k: int = 3,
    score: str = "logprob",
    bounds: BoundPolicy = "optimistic",
    dev_fraction: float = 0.5,
    seed: int = 0,
) -> ConfigAnalysis:
    """The metrics of one config of a table without content-free rows."""
    s = sweep(real, config, score=score, bounds=bounds)
    ids = sorted(real.loc[real["config"] == config, "example_id"].unique())
    tr = None
    if len(ids) >= 4:
        dev, test = split_ids(ids, dev_fraction, seed)
        tr = transfer(real, config, dev, test, score=score, bounds=bounds)
    return ConfigAnalysis(ranking_metrics(real, config, k=k), s, tr)


def analyze(
    df: pd.DataFrame,
    *,
    transforms: Sequence[str] = TRANSFORMS,
    k: int = 3,
    score: str = "logprob",
    bounds: BoundPolicy = "optimistic",
    dev_fraction: float = 0.5,
    seed: int = 0,
    computed: Mapping[str, ConfigAnalysis] | None = None,
    pairs: Mapping[tuple[str, str], PairAgreement] | None = None,
) -> tuple[dict[str, Any], list[ThresholdSweep]]:
    """(JSON-ready summary, threshold sweeps) for a scored grid. ``computed`` holds configs
    already analysed with the same options, ``pairs`` pair agreements already computed
    (:func:`~.stability.stability_summary`): neither is computed again."""
    real, _ = split_content_free(df)
    per_config: dict[str, ConfigAnalysis] = {}
    for config in sorted(real["config"].unique()):
        done = (computed or {}).get(config)
        per_config[config] = done or analyze_config(
            real, config, k=k, score=score, bounds=bounds, dev_fraction=dev_fraction, seed=seed
        )
    ranking = {c: a.ranking.as_dict() for c, a in per_config.items()}
    summary = stability_summary(df, transforms=transforms, k=k, ranking=ranking, pairs=pairs)
    summary["thresholds"] = {c: a.thresholds() for c, a in per_config.items()}
    summary["threshold_policy"] = {"score": score, "bounds": bounds}
    for config, notes in _server_quirk_notes(real).items():
        summary["configs"].setdefault(config, {}).setdefault("notes", []).extend(notes)
    return summary, [a.sweep for a in per_config.values()]


_QUIRKS = {
    "top_p=1": "score(s) read a truncated distribution (the server sampled with top_p < 1): "
    "send top_p=1",
    "sentinel": "score(s) met a provider sentinel (-9999 or lower), read as no mass",
    "no mass is known to be left over": "bound(s) from the smallest listed entry alone: the "
    "listed probabilities summed to 1 or more (a truncated or rounded list)",
}


def _server_quirk_notes(df: pd.DataFrame) -> dict[str, list[str]]:
    """Per config, what the scores' notes say about the server's output (counted)."""
    if "note" not in df:
        return {}
    out: dict[str, list[str]] = {}
    notes = df["note"].map(lambda n: n if isinstance(n, str) else "")  # empty cells read as NaN
    for marker, text in _QUIRKS.items():
        hits = df.loc[notes.str.contains(marker, regex=False), "config"].value_counts()
        for config, n in hits.items():
            out.setdefault(str(config), []).append(f"{n} {text}")
    return out
