"""Multi-label datasets: load, validate, sample, split.

A dataset is a list of :class:`Example` (id, text, canonical labels). Files are CSV, TSV,
JSONL or Parquet with a text column and a label column, found by the rule documented in
:mod:`logprob_eval.data.dataset_files` (which also lists the label-cell formats: lists, JSON
lists, Python list literals as pandas writes them, delimited text).

The labels are the user's, in any script: by default a dataset's labels are the ones its
file holds (spellings that differ only in case are one label, spelt as first seen); with
``label_names`` given (``[dataset] labels`` in ``evals.toml``) they are those, matched
case-insensitively, and any other label in the file is an error. The built-in ``topics``
dataset's labels are the study's ten topics. Validation collects every problem
(empty text, unknown label, duplicate rows, wrong types) and raises one
:class:`~logprob_eval.errors.DatasetError` naming rows and columns, so a user fixes the
file in one pass.

Synthetic generation writes its results through :meth:`Dataset.write_csv` and reads them
back with :func:`load_dataset`; that file is its cache and its seam.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from .dataset_files import (
    describe_columns,
    find_id_column,
    find_labels_column,
    parse_label_cell,
    read_rows,
)
from .prompts import TOPICS

__all__ = ["BUILTIN_DATASETS", "Dataset", "Example", "builtin_path", "load_dataset"]

BUILTIN_DATASETS: dict[str, str] = {"topics": "topics.csv"}
"""Datasets shipped with the package (hand-written; see the README)."""

_BUILTIN_LABELS: dict[str, tuple[str, ...]] = {"topics": TOPICS}

_MAX_LISTED = 10


@dataclass(frozen=True, slots=True)
class Example:
    """One text with its true (canonical) labels."""

    id: str
    text: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Dataset(Sequence[Example]):
    """An ordered, validated collection of examples over a fixed label vocabulary."""

    examples: tuple[Example, ...]
    label_names: tuple[str, ...]
    source: str = "<memory>"
    labels_from: str = "column 'labels'"
    """Which column held the labels and why (the label-column rule's answer)."""

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: Any) -> Any:
        return self.examples[i]

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        label_names: Sequence[str] | None = None,
        text_column: str = "text",
        labels_column: str | None = None,
        id_column: str = "id",
        source: str = "<records>",
    ) -> Dataset:
        """Validate row dicts into a dataset (``label_names=None``: the labels the rows hold;
        ``labels_column=None``: the label-column rule)."""
        rows = list(records)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        return _build(rows, label_names, text_column, labels_column, id_column, source, columns)

    def sample(self, n: int, *, seed: int = 0) -> Dataset:
        """``n`` examples chosen by ``seed``, in file order; all of them if ``n >= len``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DatasetError(f"sample size n={n!r} must be a positive integer")
        if n >= len(self):
            return self
        idx = sorted(random.Random(seed).sample(range(len(self)), n))
        return self._subset(idx)

    def split(self, dev_fraction: float = 0.5, *, seed: int = 0) -> tuple[Dataset, Dataset]:
        """A (dev, test) split by ``seed``; both non-empty."""
        if not 0.0 < dev_fraction < 1.0:
            raise DatasetError(f"dev_fraction={dev_fraction!r} must be strictly between 0 and 1")
        if len(self) < 2:
            raise DatasetError(f"cannot split {self.source!r}: it has {len(self)} example(s)")
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        cut = min(max(1, round(len(self) * dev_fraction)), len(self) - 1)
        dev, test = sorted(order[:cut]), sorted(order[cut:])
        return self._subset(dev), self._subset(test)

    def _subset(self, idx: Sequence[int]) -> Dataset:
        return replace(self, examples=tuple(self.examples[i] for i in idx))

    def label_counts(self) -> dict[str, int]:
        counts = Counter(label for ex in self.examples for label in ex.labels)
        return {name: counts.get(name, 0) for name in self.label_names}

    def write_csv(self, path: str | Path) -> Path:
        """Write ``id,text,labels`` (labels joined by ``;``); readable by :func:`load_dataset`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "text", "labels"])
            for ex in self.examples:
                writer.writerow([ex.id, ex.text, ";".join(ex.labels)])
        tmp.replace(path)
        return path


def builtin_path(name: str) -> Path:
    """Path of a shipped dataset (``topics``)."""
    if name not in BUILTIN_DATASETS:
        raise DatasetError(
            f"no built-in dataset {name!r}; choose one of {', '.join(BUILTIN_DATASETS)} "
            "or pass a path to a CSV/JSONL file"
        )
    return Path(str(resources.files("logprob_eval") / "data" / BUILTIN_DATASETS[name]))


def load_dataset(
    path: str | Path,
    *,
    label_names: Sequence[str] | None = None,
    text_column: str = "text",
    labels_column: str | None = None,
    id_column: str = "id",
) -> Dataset:
    """Load and validate a CSV, TSV, JSONL or Parquet file (or a built-in name such as
    ``"topics"``). ``label_names=None``: the labels the file holds (a built-in dataset's
    own). ``labels_column=None`` finds the label column by the rule in
    :mod:`logprob_eval.data.dataset_files`; :attr:`Dataset.labels_from` says which was used."""
    if isinstance(path, str) and path in BUILTIN_DATASETS:
        if label_names is None:
            label_names = _BUILTIN_LABELS.get(path)
        path = builtin_path(path)
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise DatasetError(f"dataset {src!r} does not exist; check the path", path=src)
    rows, columns = read_rows(path, src)
    return _build(rows, label_names, text_column, labels_column, id_column, src, columns)


def _build(
    rows: list[Mapping[str, Any]],
    label_names: Sequence[str] | None,
    text_column: str,
    labels_column: str | None,
    id_column: str,
    src: str,
    columns: Sequence[str],
) -> Dataset:
    if not rows:
        raise DatasetError(f"dataset {src!r} has no rows; add examples", path=src)
    _require_column(text_column, "text", columns, src)
    if id_column != "id":  # named: it must be there ("id", the default, may be absent)
        _require_column(id_column, "id", columns, src)
    id_column = find_id_column(columns, id_column)
    if labels_column is None:
        labels_column, labels_from = find_labels_column(
            columns, text_column=text_column, id_column=id_column, src=src
        )
    else:
        _require_column(labels_column, "labels", columns, src)
        labels_from = f"column {labels_column!r} (as given)"
    problems: list[tuple[int | None, str, str]] = []
    declared = label_names is not None
    lookup = {n.casefold(): n for n in label_names or ()}
    examples: list[Example] = []
    first_seen: dict[str, int] = {}
    for r, row in enumerate(rows, 1):
        if "__extra__" in row:
            problems.append(
                (
                    r,
                    "",
                    f"has {len(row['__extra__'])} more field(s) than the header; "
                    "quote texts that contain the delimiter",
                )
            )
            continue
        text = row.get(text_column)
        if text is None:
            problems.append((r, text_column, "is missing"))
            continue
        if not isinstance(text, str):
            problems.append((r, text_column, f"must be a string, got {type(text).__name__}"))
            continue
        if not text.strip():
            problems.append((r, text_column, "is empty"))
            continue
        labels = parse_label_cell(row.get(labels_column))
        if isinstance(labels, str):
            problems.append((r, labels_column, labels))
            continue
        if not labels:
            problems.append((r, labels_column, "is empty: every text needs at least one label"))
            continue
        canon: list[str] = []
        for lab in labels:
            if not declared:
                canon.append(lookup.setdefault(lab.casefold(), lab))  # first spelling seen
            elif lab.casefold() in lookup:
                canon.append(lookup[lab.casefold()])
            else:
                problems.append(
                    (
                        r,
                        labels_column,
                        f"has label {lab!r}, which is not among the declared labels "
                        f"({', '.join(label_names or ())}); add it to the labels or fix the cell",
                    )
                )
        key = " ".join(text.split()).casefold()
        if key in first_seen:
            problems.append((r, text_column, f"duplicates row {first_seen[key]}; remove one"))
            continue
        first_seen[key] = r
        raw_id = row.get(id_column)
        ex_id = str(raw_id) if raw_id not in (None, "") else str(r)
        examples.append(Example(ex_id, text.strip(), tuple(dict.fromkeys(canon))))
    if problems:
        n_rows = len({r for r, _, _ in problems})
        shown = "\n".join(
            f"  row {r}" + (f", column {c!r}" if c else "") + f": {why}"
            for r, c, why in problems[:_MAX_LISTED]
        )
        more = (
            f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        )
        first_row, first_col, _ = problems[0]
        raise DatasetError(
            f"dataset {src!r} has {n_rows} invalid row(s) of {len(rows)} ({len(problems)} "
            f"problem(s); rows count from 1 after the header):\n{shown}{more}",
            path=src,
            row=first_row,
            column=first_col,
        )
    if not examples:
        raise DatasetError(f"dataset {src!r} has no rows; add examples", path=src)
    ids = Counter(ex.id for ex in examples)
    dup_ids = [i for i, c in ids.items() if c > 1]
    if dup_ids:
        raise DatasetError(
            f"dataset {src!r}: ids {dup_ids[:5]} are used more than once; "
            f"make column {id_column!r} unique",
            path=src,
            column=id_column,
        )
    names = tuple(label_names) if label_names is not None else tuple(lookup.values())
    return Dataset(tuple(examples), names, src, labels_from)


def _require_column(name: str, what: str, columns: Sequence[str], src: str) -> None:
    if name not in columns:
        raise DatasetError(
            f"dataset {src!r} has no column {name!r} (columns: {describe_columns(columns)}); "
            f"rename the column or name it with --{what}-column (CLI), {what}_column = ... "
            f"([dataset] in evals.toml) or {what}_column=",
            path=src,
            column=name,
        )
