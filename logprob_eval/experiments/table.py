"""The tidy score table: one row per text x config x label, with ranks.

A *config* is (model, method, template, label_set); ``config`` is its readable id
``model/method/template/label_set``. Ranks are within (example, config), 1 = best, ties
share the average rank; NaN scores (failed rows) rank last.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DatasetError

__all__ = ["CONFIG_COLUMNS", "config_id", "label_matrix", "read_scores", "to_frame"]

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


def read_scores(path: str | Path) -> pd.DataFrame:
    """A scores table written by ``logprob-eval score`` (CSV, TSV or JSONL, by extension),
    checked: UTF-8, the required columns, and every label scored for every text of its
    config (a label that is not is named with its rows: a typo, or rows of another table)."""
    src = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read scores table {src!r}: {exc.strerror}", path=src) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"scores table {src!r} is not UTF-8 text (byte {raw[exc.start]:#x} on line {line}); "
            "re-save it as UTF-8",
            path=src,
            row=line - 1,
        ) from None
    suffix = Path(path).suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            table = pd.read_json(io.StringIO(text), lines=True, dtype=False)
        else:
            sep = "\t" if suffix == ".tsv" else ","
            table = pd.read_csv(  # ids stay text: "007" is not 7
                io.StringIO(text),
                sep=sep,
                keep_default_na=False,
                na_values=[""],
                dtype={"example_id": str},
            )
    except ValueError as exc:
        raise DatasetError(f"cannot parse scores table {src!r}: {exc}", path=src) from None
    try:
        df = to_frame(
            table.drop(columns=[c for c in ("config", "rank") if c in table]).to_dict("records")
        )
    except ConfigError as exc:
        raise DatasetError(f"scores table {src!r}: {exc}", path=src) from None
    _check_labels(df, src, 1 if suffix in (".jsonl", ".ndjson") else 2)
    return df


def _check_labels(df: pd.DataFrame, src: str, first_line: int) -> None:
    for config, part in df.groupby("config", sort=True):
        n_texts = part["example_id"].nunique()
        per_label = part.groupby("label")["example_id"].nunique()
        odd = per_label[per_label < n_texts].sort_values()
        if odd.empty:
            continue
        named = []
        for label, count in odd.items():
            lines = [int(i) + first_line for i in part.index[part["label"] == label][:3]]
            named.append(
                f"{label!r} ({count} of {n_texts} texts; line {', '.join(map(str, lines))})"
            )
        known = ", ".join(str(x) for x in per_label[per_label == n_texts].index)
        raise DatasetError(
            f"scores table {src!r}, config {config}: every text needs a score for every "
            f"label, but these labels are not scored for all texts: {'; '.join(named)}. "
            f"Labels scored for all: {known}. Fix the label names or drop those rows",
            path=src,
            column="label",
        )


def label_matrix(
    df: pd.DataFrame, config: str, score: str = "logprob", examples: list[str] | None = None
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(example ids, labels, scores[n_ex, n_lab], truth[n_ex, n_lab]) for one config.

    Rows and columns are sorted; a (text, label) pair listed twice keeps its first non-NaN
    value (what ``pivot_table(aggfunc="first")`` gives; tested against it). ``examples``
    picks and orders the rows; an example not in the table gets NaN scores, no true label.
    """
    part = df[df["config"] == config]
    ex_codes, ex_ids = pd.factorize(part["example_id"], sort=True)
    lab_codes, labels = pd.factorize(part["label"], sort=True)
    values = part[score].to_numpy(dtype=float)
    truth_values = part["is_true"].to_numpy(dtype=bool)
    scores = np.full((len(ex_ids), len(labels)), np.nan)
    truth = np.zeros((len(ex_ids), len(labels)), dtype=bool)
    cell = ex_codes * len(labels) + lab_codes
    valid = np.flatnonzero(~np.isnan(values))
    _, first = np.unique(cell[valid], return_index=True)  # first non-NaN value of each cell
    scores.flat[cell[valid[first]]] = values[valid[first]]
    _, first = np.unique(cell, return_index=True)
    truth.flat[cell[first]] = truth_values[first]
    ids = list(ex_ids)
    if examples is not None:
        pos = {e: i for i, e in enumerate(ids)}
        rows = [pos.get(e, -1) for e in examples]
        present = np.array([r >= 0 for r in rows], dtype=bool)
        take = np.array([max(r, 0) for r in rows], dtype=np.intp)
        scores = np.where(present[:, None], scores[take] if len(ids) else np.nan, np.nan)
        truth = truth[take] & present[:, None] if len(ids) else np.zeros((len(rows), 0), bool)
        ids = list(examples)
    return ids, list(labels), scores, truth
