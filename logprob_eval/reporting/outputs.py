"""Output paths checked before the work, and results kept when writing still fails.

A run that scores for minutes must not die at the end because ``--out`` names a file
where a directory is needed, or a read-only mount: :func:`prepare_dir` and
:func:`prepare_file` create and probe the destination before any request is sent. If
writing fails anyway (the disk filled up meanwhile), :func:`write_or_fallback` writes the
results already computed to a fallback file in the system's temporary directory and raises
an :class:`~logprob_eval.errors.OutputError` that names it.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import OutputError

__all__ = ["prepare_dir", "prepare_file", "saved_elsewhere"]


def _probe(folder: Path, flag: str, shown: str) -> None:
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".logprob-eval-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise OutputError(
            f"{flag} {shown}: cannot write in {folder} ({exc.strerror or exc}); pass a "
            f"writable location with {flag}",
            path=str(folder),
        ) from None


def prepare_dir(path: str | Path, *, flag: str = "--out") -> Path:
    """Create directory ``path`` (and parents) and check that it is writable."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            f"{flag} {path}: is a file, but a directory is needed here (the run writes a "
            f"folder per run and 'latest' into it); pass a directory such as reports/",
            path=str(folder),
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{flag} {path}: cannot create the directory ({exc.strerror or exc}); pass a "
            f"writable location with {flag}",
            path=str(folder),
        ) from None
    _probe(folder, flag, str(path))
    return folder


def missing_dirs(path: str | Path) -> list[Path]:
    """The folders of ``path`` (itself included) that do not exist yet, deepest first: what
    a failed run removes again if it left them empty (:func:`remove_empty`)."""
    out = []
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            break
        out.append(folder)
    return out


def remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that exists and is empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone: keep it
            return


def prepare_file(path: str | Path, *, flag: str = "--out") -> Path:
    """Create the parent of file ``path`` and check that the file can be written there."""
    file = Path(path)
    if file.is_dir():
        raise OutputError(
            f"{flag} {path}: is a directory, but a file is needed here; pass a file name "
            f"such as {file / 'scores.csv'}",
            path=str(file),
        )
    prepare_dir(file.parent, flag=flag)
    if file.exists() and not os.access(file, os.W_OK):
        raise OutputError(
            f"{flag} {path}: the file exists and is not writable; pass another path with {flag}",
            path=str(file),
        )
    return file


def saved_elsewhere(
    write: Callable[[Path], object], exc: OSError, what: str, name: str
) -> OutputError:
    """After writing ``what`` failed with ``exc``: ``write(fallback)`` to a new file in the
    system's temporary directory, and the :class:`OutputError` (to raise) naming both."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fallback = Path(tempfile.gettempdir()) / f"logprob-eval-{stamp}-{os.getpid()}-{name}"
    write(fallback)
    return OutputError(
        f"cannot write {what} ({exc.strerror or exc}); the results computed so far were "
        f"written to {fallback} instead",
        path=str(getattr(exc, "filename", "") or ""),
        fallback=str(fallback),
    )
