"""One ``pytest`` run of a suite, as the plugin sees it: which config file, which cases,
checked once before collection, and what the run gathers for its report.

The config file is, in this order: ``--llm-config``; the ``evals.toml`` nearest at or
above a path argument; ini ``llm_config``; ``evals/evals.toml``. The run *requests* the
suite when ``--llm-config`` is given or a path argument lies in the config file's folder:
only then is the config file collected and checked.

One :class:`Session` lives on the pytest config (:func:`run_of`), never module-global.
"""

from __future__ import annotations

import atexit
import gc
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from .matrix import select_cases
from .outcomes import OutcomeLog

__all__ = ["SUITE_FILE", "Session", "run_of"]

SUITE_FILE = "evals.toml"
_KEY = pytest.StashKey["Session"]()


def run_of(config: pytest.Config) -> Session:
    """The run's :class:`Session`, made on first use."""
    if _KEY not in config.stash:
        config.stash[_KEY] = Session(config)
    return config.stash[_KEY]


class Session:
    """The suite of one pytest run, and what the run gathers for its report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.outcomes = OutcomeLog()
        self.runner: Any = None  # the process's SuiteRunner, once a test asked for it
        self.report: Any = None  # the RunReport, once written
        self.report_seconds = float("nan")
        self.interrupted = False
        self.comparison: Path | None = None
        self.floors_listed = False
        self._frozen = False
        # under xdist, in the controller (see :mod:`.results`)
        self.share_dir: Path | None = None
        self.worker_frames: dict[str, Any] = {}
        self.worker_computed: list[dict[str, Any]] = []

    def freeze(self) -> None:
        """Take every object alive now out of the garbage collector's walks (``gc.freeze``),
        and again at exit: called after collection and before the report.

        A suite process keeps ~350,000 objects until it exits (modules, pandas, hypothesis'
        strategies), which every full collection and the interpreter's exit walked again.
        The one speed measure kept from the plugin's earlier xdist work (the report thread
        and the background imports went: together ~2%): in 5 interleaved pairs
        (``farm-bench``, 2026-12-07), ``pytest evals -n 2`` took 22.9 s with it and 25.3 s
        without (0.89x; every pair 0.80-0.93x). A frozen object is still freed when its last
        reference goes; only cycles among frozen objects wait for the process to end."""
        gc.freeze()
        if not self._frozen:
            self._frozen = True
            atexit.register(gc.freeze)

    # -- where the suite is -------------------------------------------------------------------
    def _arg_paths(self) -> list[Path]:
        here = Path(self.config.invocation_params.dir)
        return [(here / arg.split("::", 1)[0]).resolve() for arg in self.config.args]

    @cached_property
    def config_path(self) -> Path:
        raw = self.config.getoption("--llm-config")
        if not raw:
            for path in self._arg_paths():
                for folder in (path if path.is_dir() else path.parent, *path.parents):
                    if (folder / SUITE_FILE).is_file():
                        return folder / SUITE_FILE
        path = Path(raw or self.config.getini("llm_config"))
        return path if path.is_absolute() else Path(self.config.rootpath) / path

    @cached_property
    def requested(self) -> bool:
        """True when this run collects the suite (see the module's docstring)."""
        if self.config.getoption("--llm-config"):
            return True
        folder = self.config_path.parent.resolve()
        return any(p == folder or folder in p.parents for p in self._arg_paths())

    @property
    def suite_arg(self) -> str:
        """The suite's folder as a user types it after ``pytest``."""
        from .config import suite_arg

        return suite_arg(self.config_path.parent)

    @property
    def report_dir(self) -> Path:
        return Path(self.config.rootpath) / self.config.getoption("--llm-report-dir")

    @property
    def cassette_dir(self) -> Path:
        return Path(self.config.getini("llm_cassette_dir") or self.config_path.parent / "cassettes")

    # -- what it runs -------------------------------------------------------------------------
    @cached_property
    def suite(self) -> Any:
        """The :class:`~.config.EvalConfig`."""
        from .config import load_eval_config

        return load_eval_config(self.config_path)

    @cached_property
    def cases(self) -> list[Any]:
        """The cases ``--llm-model`` / ``--llm-method`` select."""
        return select_cases(
            self.suite,
            self.config.getoption("--llm-model") or [],
            self.config.getoption("--llm-method"),
        )

    def validate(self) -> None:
        """The config file, the case selection, the dataset's labels and the report folder,
        checked once before collection: a problem is one usage error (exit 4)."""
        from ..errors import LogprobEvalError

        try:
            if not self.config.getoption("--llm-no-report"):
                from ..reporting.outputs import prepare_dir

                prepare_dir(self.report_dir, flag="--llm-report-dir")
            if self.config.getoption("--llm-compare-to"):
                from ..reporting.compare import scores_path

                scores_path(Path(self.config.getoption("--llm-compare-to")))
            self.suite.check_label_sets(self.suite.load_dataset(self.config.rootpath), self.cases)
        except LogprobEvalError as exc:
            raise pytest.UsageError(f"logprob-eval: {exc}") from None
        self._check_recording_can_connect()

    def _check_recording_can_connect(self) -> None:
        """Recording with the network blocked can only fail: say so at once, with the fix."""
        mode = self.config.getoption("--record-mode", default=None) or "none"
        blocked = self.config.getoption("--block-network", default=False)
        if mode == "none" or not blocked or self.config.getoption("--allowed-hosts", default=None):
            return
        servers = sorted({c.model.spec for c in self.cases})
        raise pytest.UsageError(
            f"logprob-eval: --record-mode={mode} records from the model servers, but "
            f"--block-network blocks every connection, so no case could reach its server "
            f"({', '.join(servers)}). Drop --block-network to record (pytest {self.suite_arg} "
            f"--record-mode={mode}), or allow the server's host, e.g. --allowed-hosts=127.0.0.1 "
            "for the local model"
        )

    def weak_floor_lines(self) -> list[str]:
        """Floors a scorer at chance clears more than 1 time in 20 on the suite's texts."""
        from .power import weak_floors

        weak = weak_floors(self.suite, self.cases, self.suite.load_dataset(self.config.rootpath))
        if not weak:
            return []
        head = (
            f"logprob-eval: {len(weak)} floor(s) a scorer at chance clears more than 1 time in 20:"
        )
        return [head, *(f"  {w}" for w in weak)]
