"""One call from a scored table to every metric a report shows."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .stability import stability_summary
from .thresholds import BoundPolicy, ThresholdSweep, sweep, transfer
from .transforms import TRANSFORMS, split_content_free

__all__ = ["analyze", "split_ids"]


def split_ids(
    ids: Sequence[str], dev_fraction: float = 0.5, seed: int = 0
) -> tuple[list[str], list[str]]:
    """A deterministic (dev, test) split of text ids."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    cut = max(1, min(len(order) - 1, round(len(order) * dev_fraction)))
    return sorted(order[:cut]), sorted(order[cut:])


def analyze(
    df: pd.DataFrame,
    *,
    transforms: Sequence[str] = TRANSFORMS,
    k: int = 3,
    score: str = "logprob",
    bounds: BoundPolicy = "optimistic",
    dev_fraction: float = 0.5,
    seed: int = 0,
) -> tuple[dict[str, Any], list[ThresholdSweep]]:
    """(JSON-ready summary, threshold sweeps) for a scored grid."""
    summary = stability_summary(df, transforms=transforms, k=k)
    real, _ = split_content_free(df)
    sweeps: list[ThresholdSweep] = []
    thresholds: dict[str, Any] = {}
    for config in sorted(real["config"].unique()):
        s = sweep(real, config, score=score, bounds=bounds)
        sweeps.append(s)
        ids = sorted(real.loc[real["config"] == config, "example_id"].unique())
        info = s.summary()
        if len(ids) >= 4:
            dev, test = split_ids(ids, dev_fraction, seed)
            info["transfer"] = transfer(real, config, dev, test, score=score, bounds=bounds)
        thresholds[config] = info
    summary["thresholds"] = thresholds
    summary["threshold_policy"] = {"score": score, "bounds": bounds}
    for config, notes in _server_quirk_notes(real).items():
        summary["configs"].setdefault(config, {}).setdefault("notes", []).extend(notes)
    return summary, sweeps


_QUIRKS = {
    "top_p=1": "score(s) read a truncated distribution (the server sampled with top_p < 1): "
    "send top_p=1",
    "sentinel": "score(s) met a provider sentinel (-9999 or lower), read as no mass",
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
