"""The tidy score table: one row per text x config x label, with ranks.

A *config* is (model, method, template, label_set); ``config`` is its readable id
``model/method/template/label_set``. Ranks are within (example, config), 1 = best, ties
share the average rank; NaN scores (failed rows) rank last.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["CONFIG_COLUMNS", "config_id", "label_matrix", "to_frame"]

CONFIG_COLUMNS = ["model", "method", "template", "label_set"]


def config_id(model: str, method: str, template: str, label_set: str) -> str:
    return f"{model}/{method}/{template}/{label_set}"


def to_frame(rows: Iterable[Any]) -> pd.DataFrame:
    """ScoreRows (or dicts) to the tidy frame with ``config`` and ``rank`` columns."""
    records = [r.as_dict() if hasattr(r, "as_dict") else dict(r) for r in rows]
    df = pd.DataFrame.from_records(records)
    if df.empty:
        raise ConfigError("no score rows: nothing was scored (check the dataset and the grid)")
    missing = {"example_id", "label", "logprob", "status", "is_true", *CONFIG_COLUMNS} - set(df)
    if missing:
        raise ConfigError(f"score table lacks column(s) {sorted(missing)}")
    df["config"] = [config_id(*t) for t in zip(*(df[c] for c in CONFIG_COLUMNS), strict=True)]
    df["logprob"] = df["logprob"].astype(float)
    finite = df["logprob"].where(np.isfinite(df["logprob"]) | (df["logprob"] == -np.inf))
    df["rank"] = finite.groupby([df["config"], df["example_id"]]).rank(
        ascending=False, method="average", na_option="bottom"
    )
    return df


def label_matrix(
    df: pd.DataFrame, config: str, score: str = "logprob", examples: list[str] | None = None
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(example ids, labels, scores[n_ex, n_lab], truth[n_ex, n_lab]) for one config."""
    part = df[df["config"] == config]
    scores = part.pivot_table(
        index="example_id", columns="label", values=score, aggfunc="first", dropna=False
    )
    truth = part.pivot_table(index="example_id", columns="label", values="is_true", aggfunc="first")
    if examples is not None:
        scores = scores.reindex(examples)
        truth = truth.reindex(examples)
    truth = truth.reindex(columns=scores.columns)
    return (
        list(scores.index),
        list(scores.columns),
        scores.to_numpy(dtype=float),
        truth.fillna(False).to_numpy(dtype=bool),
    )
