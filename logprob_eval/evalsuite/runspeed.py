"""What keeps a `pytest evals` run, serial or under xdist, from paying twice (pytest-free).

* :func:`case_order`: under xdist, which hands out contiguous runs of tests, the tests of
  one case run next to each other, so the worker that scored a case runs its other checks
  from memory and two workers seldom replay one cassette at once.
* :func:`import_in_background`: the xdist controller, idle while its workers test, imports
  what the report needs (pandas, scipy, matplotlib: ~0.7 s) before the last test, not after.
* :func:`freeze_long_lived_objects`: ``gc.freeze`` after collection, before the report and
  at exit (~1 s of garbage-collector walks per process).

Measured by ``benchmarks/bench_evals_walltime.py`` (see the README's table).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["case_order", "freeze_long_lived_objects", "import_in_background"]


def case_order(
    params: Mapping[str, Any], case_param: str, multi_case: tuple[str, ...]
) -> tuple[int, str]:
    """Sort key of a test by its parameters: the tests of one case (``params[case_param]``,
    by case id) first, then the tests that score nothing (fuzzing), then those spanning
    several cases (any of ``multi_case``: groups, method pairs), which by then read the
    cases back. Sorting is stable: within a case, the files' order."""
    case = params.get(case_param)
    if case is not None:
        return 0, case.id
    if any(p in params for p in multi_case):
        return 2, ""
    return 1, ""


def import_in_background(load: Callable[[], object]) -> threading.Thread:
    """Run ``load`` (imports) in a daemon thread; join it before using what it imports.
    An exception is dropped: the code that needs the import raises it again, where it
    means something."""

    def run() -> None:
        with contextlib.suppress(Exception):  # raised again by the importing code itself
            load()

    thread = threading.Thread(target=run, name="logprob-eval-imports", daemon=True)
    thread.start()
    return thread


def freeze_long_lived_objects() -> None:
    """Take every object alive now out of the cyclic garbage collector's walks
    (``gc.freeze``).

    After imports and collection a suite process holds ~300,000 objects that live until it
    exits (modules, pandas, hypothesis' strategies); every full collection walked them all
    again, and the interpreter's last collections at exit did too: ~1 s of a serial run's
    2 s of collections, and 0.7 s at exit, in every xdist process alike. A frozen object is
    still freed when its last reference goes; only reference cycles among frozen objects
    wait for the process to end."""
    gc.freeze()
