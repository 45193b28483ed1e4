"""Reading dataset files as users have them: rows from CSV/TSV/JSONL/Parquet, the label
column found by a documented rule, and label cells in any of the usual list spellings.

The label-column rule (used when no column is named explicitly):

1. a column named ``labels``, ``label``, ``topics``, ``topic``, ``categories``,
   ``category``, ``classes`` or ``class`` (any case); several such columns are ambiguous
   and an error lists them;
2. otherwise the only column besides the text, the id and a pandas index column
   (an unnamed first column, or ``Unnamed: 0``); several are ambiguous too.

The id column is the one named (``id`` by default; a column named otherwise must exist); a
file without ``id`` whose first column is pandas' unnamed index (``DataFrame.to_csv`` writes
it with an empty header, read back as ``Unnamed: 0``) uses that column, so the ids are the
index pandas wrote (:func:`find_id_column`). Otherwise a text's id is its row number.

A label cell is a list (JSONL, Parquet), a JSON list (``["Art", "Food"]``), a Python list
literal as pandas writes one (``['Art', 'Food']``, read with :func:`ast.literal_eval`,
never ``eval``), or text delimited by ``;``, ``|`` or ``,``.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DatasetError

__all__ = [
    "LABEL_COLUMN_NAMES",
    "SUFFIXES",
    "find_id_column",
    "find_labels_column",
    "parse_label_cell",
    "read_rows",
]

LABEL_COLUMN_NAMES = (
    "labels",
    "label",
    "topics",
    "topic",
    "categories",
    "category",
    "classes",
    "class",
)
"""Column names the label-column rule recognises (compared case-insensitively)."""

SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")
_SPLIT = re.compile(r"\s*[;|,]\s*")
_INDEX_COLUMN = re.compile(r"^(|Unnamed: \d+)$")


def describe_columns(columns: Sequence[str]) -> str:
    """The columns for a message; pandas' unnamed index column is named as such, not as ''."""
    shown = [f"{c} (pandas' index)".lstrip() if _INDEX_COLUMN.match(c) else c for c in columns]
    return ", ".join(shown) or "none"


_LIST_HINT = "e.g. [\"Art\", \"Food\"], ['Art', 'Food'] or Art;Food"


def read_rows(path: Path, src: str) -> tuple[list[Mapping[str, Any]], list[str]]:
    """(rows, column names in file order) of a CSV/TSV/JSONL/Parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path, src)
    if suffix not in SUFFIXES:
        raise DatasetError(
            f"dataset {src!r}: unsupported extension {suffix!r}; use {', '.join(SUFFIXES)}",
            path=src,
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DatasetError(
            f"dataset {src!r} is not UTF-8 text: line {line} (column {column}, counting "
            f"bytes) has the byte {raw[exc.start : exc.start + 1]!r}, which UTF-8 does not "
            "allow there; re-save the file as UTF-8",
            path=src,
        ) from None
    if suffix in {".jsonl", ".ndjson"}:
        rows = _read_jsonl(text, src)
        return rows, _columns_of(rows)
    return _read_csv(text, "\t" if suffix == ".tsv" else ",")


def _columns_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def _read_jsonl(text: str, src: str) -> list[Mapping[str, Any]]:
    rows: list[Mapping[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"dataset {src!r} line {lineno}: invalid JSON ({exc.msg}); "
                "each line must be one JSON object",
                path=src,
                row=lineno,
            ) from None
        if not isinstance(obj, dict):
            raise DatasetError(
                f"dataset {src!r} line {lineno}: expected a JSON object, got {type(obj).__name__}",
                path=src,
                row=lineno,
            )
        rows.append(obj)
    return rows


def _read_csv(text: str, delimiter: str) -> tuple[list[Mapping[str, Any]], list[str]]:
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    header = list(reader.fieldnames or [])
    rows: list[Mapping[str, Any]] = []
    for row in reader:
        if None in row:
            rows.append({**row, "__extra__": row.pop(None)})
        else:
            rows.append(row)
    return rows, header


def _read_parquet(path: Path, src: str) -> tuple[list[Mapping[str, Any]], list[str]]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise DatasetError(
            f"dataset {src!r}: pandas cannot read Parquet here ({exc}); "
            "pip install pyarrow, or save the data as CSV or JSONL",
            path=src,
        ) from None
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"dataset {src!r} is not a readable Parquet file ({exc}); check the file",
            path=src,
        ) from None
    columns = [str(c) for c in frame.columns]
    rows: list[Mapping[str, Any]] = [
        {str(k): _from_parquet(v) for k, v in rec.items()} for rec in frame.to_dict("records")
    ]
    return rows, columns


def _from_parquet(value: Any) -> Any:
    """Plain Python values: arrays to lists, NaN/None to None."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def find_id_column(columns: Sequence[str], id_column: str) -> str:
    """``id_column``, or pandas' unnamed index column when the file has no ``id_column`` and
    its first column is one (module doc)."""
    if id_column in columns or not columns or not _INDEX_COLUMN.match(columns[0]):
        return id_column
    return columns[0]


def find_labels_column(
    columns: Sequence[str], *, text_column: str, id_column: str, src: str
) -> tuple[str, str]:
    """(column, why it was chosen) by the rule in the module docstring."""
    fix = "name it with --labels-column (CLI), labels_column = ... ([dataset]) or labels_column="
    named = [c for c in columns if c.strip().casefold() in LABEL_COLUMN_NAMES]
    if len(named) == 1:
        return named[0], f"column {named[0]!r} (a label column name)"
    if len(named) > 1:
        raise DatasetError(
            f"dataset {src!r}: several columns could hold the labels: "
            f"{', '.join(map(repr, named))}; {fix}",
            path=src,
        )
    others = [
        c
        for c in columns
        if c not in (text_column, id_column, "__extra__") and not _INDEX_COLUMN.match(c)
    ]
    if len(others) == 1:
        return others[0], f"column {others[0]!r} (the only column besides the text)"
    known = "/".join(LABEL_COLUMN_NAMES)
    if not others:
        raise DatasetError(
            f"dataset {src!r} has no label column (columns: {describe_columns(columns)}); "
            f"add one named {known}",
            path=src,
        )
    raise DatasetError(
        f"dataset {src!r}: no column is named {known}, and several could hold the labels: "
        f"{', '.join(map(repr, others))}; {fix}",
        path=src,
    )


def parse_label_cell(value: Any) -> list[str] | str:
    """Labels from one cell; a ``str`` return value is the reason it could not be read."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        if not all(isinstance(v, str) for v in value):
            return "must be a list of strings"
        return [v.strip() for v in value if v.strip()]
    if not isinstance(value, str):
        return f"must be a list or a delimited string, got {type(value).__name__}"
    s = value.strip()
    if s[:1] in ("[", "("):
        parsed = _parse_list_literal(s)
        if parsed is None:
            return f"looks like a list but is neither JSON nor a Python literal ({_LIST_HINT})"
        if not isinstance(parsed, list | tuple):
            return f"must be a list of strings ({_LIST_HINT})"
        return parse_label_cell(parsed)
    return [p for p in _SPLIT.split(s) if p]


def _parse_list_literal(s: str) -> Any:
    """A JSON value, else a Python literal (``ast.literal_eval``: no code runs), else None."""
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(s)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
