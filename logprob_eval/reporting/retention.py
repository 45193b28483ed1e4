"""Keep ``reports/`` from growing without end: the newest N run folders stay.

Only folders logprob-eval created are ever deleted: :func:`mark_run` writes a marker file
into each run folder it creates, and :func:`prune_runs` considers nothing else (a user's
own folders and files under ``reports/`` are never touched), never the current run, and
never the folder ``latest`` points at.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

__all__ = ["DEFAULT_KEEP", "RUN_MARKER", "keep_count", "mark_run", "prune_runs"]

DEFAULT_KEEP = 10
RUN_MARKER = ".logprob-eval-run"


def keep_count(value: str) -> int:
    """An option value for how many runs to keep (argparse ``type=``)."""
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of runs to keep: give 0 (keep all) or more"
        )
    return n


def mark_run(run: Path) -> None:
    """Mark ``run`` as a folder logprob-eval created (its creation time inside)."""
    (run / RUN_MARKER).write_text(f"{time.time_ns()}\n")


def _created(run: Path) -> int:
    try:
        return int((run / RUN_MARKER).read_text().strip())
    except (OSError, ValueError):
        return -1  # not ours, or unreadable: never a candidate


def prune_runs(root: Path, keep: int, *, current: Path) -> list[Path]:
    """Delete the oldest marked run folders under ``root`` beyond the newest ``keep``
    (``keep=0`` keeps all); returns what was deleted."""
    if keep < 0:
        raise ValueError(f"keep={keep!r}: must be >= 0 (0 keeps every run)")
    if keep == 0 or not root.is_dir():
        return []
    latest = root / "latest"
    protected = {current.resolve()}
    if latest.exists():
        protected.add(latest.resolve())
    runs = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and _created(p) >= 0]
    runs.sort(key=lambda p: (_created(p), p.name), reverse=True)
    deleted = []
    for old in runs[keep:]:
        if old.resolve() in protected:
            continue
        shutil.rmtree(old, ignore_errors=True)  # a concurrent run may be deleting it too
        deleted.append(old)
    return deleted
