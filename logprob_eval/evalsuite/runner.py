"""Score the suite's cases through their cassettes (replay) or live (record).

Pytest-free: the plugin only decides the record mode and turns the errors raised here
into failures and skips.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..backends import get_backend
from ..backends.base import Backend
from ..datasets import Dataset, load_dataset
from ..errors import BackendError, LogprobEvalError
from ..experiments.stability import content_free_examples
from ..records import LabelScore
from ..scoring import RetryPolicy, ScoreRow, make_jobs, score_jobs
from .cassettes import explain_miss, make_vcr, use_cassette
from .config import Case, EvalConfig

__all__ = ["CassetteMissError", "NoCassetteError", "SuiteRunner", "record_command"]

REPLAY_PLACEHOLDER_URL = "http://127.0.0.1:9/v1"  # never contacted: replay answers first
REPLAY_PLACEHOLDER_KEY = "replay-without-a-key"  # not a secret: replay sends nothing
RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
_MARK = {"openai": "openai", "ollama": "ollama", "local": "local"}
_KEY_HINT = {"openai": "OPENAI_API_KEY=... ", "ollama": "OLLAMA_HOST=http://127.0.0.1:11434 "}


class NoCassetteError(LogprobEvalError):
    """A case has no recording and may not record now (the plugin skips it)."""


class CassetteMissError(LogprobEvalError):
    """A request of a case has no recording: the cassette is stale (the plugin fails it)."""


def record_command(case: Case, mode: str = "once") -> str:
    provider = case.model.provider
    mark = _MARK.get(provider, "live")
    return (
        f"{_KEY_HINT.get(provider, '')}pytest evals -m {mark} -k {shlex.quote(case.id)} "
        f"--record-mode={mode}"
    )


class SuiteRunner:
    """Scores cases once per process; keeps every row for the run's report."""

    def __init__(
        self,
        config: EvalConfig,
        *,
        cassette_dir: str | Path,
        record_mode: str,
        root: str | Path = ".",
    ) -> None:
        self.config = config
        self.root = Path(root)
        self.cassette_dir = Path(cassette_dir)
        if not self.cassette_dir.is_absolute():
            self.cassette_dir = self.root / self.cassette_dir
        self.record_mode = record_mode
        self._scores: dict[str, list[ScoreRow]] = {}
        self._frames: dict[str, Any] = {}
        self._dataset: Dataset | None = None
        self._server: Any = None
        self.requests_live = 0

    # data ------------------------------------------------------------------------------------

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            ds_cfg = self.config.dataset
            path = str(ds_cfg.get("path", "topics"))
            if path not in ("topics",) and not Path(path).is_absolute():
                path = str(self.root / path)
            ds = load_dataset(path)
            if ds_cfg.get("sample"):
                ds = ds.sample(int(ds_cfg["sample"]), seed=int(ds_cfg.get("seed", 0)))
            self._dataset = ds
        return self._dataset

    def cassette_path(self, name: str) -> Path:
        return self.cassette_dir / f"{name}.json"

    def all_rows(self) -> list[ScoreRow]:
        return [r for rows in self._scores.values() for r in rows]

    # backends ----------------------------------------------------------------------------------

    def _backend(self, case: Case, method: str) -> Backend:
        opts = dict(case.model.options)
        match = opts.pop("match_options", None)
        if opts.pop("first_answer_only", False):
            match = {**(match or {}), "multi_label": False}
        if match:
            opts["match_options"] = match
        opts["method"] = method
        provider = case.model.provider
        replay = self.record_mode == "none"
        if provider == "local":
            opts["base_url"] = REPLAY_PLACEHOLDER_URL if replay else self._local_url(case)
        elif provider == "openai" and replay and not os.environ.get("OPENAI_API_KEY"):
            opts["api_key"] = REPLAY_PLACEHOLDER_KEY
        for key in ("server_options", "templates", "label_sets"):
            opts.pop(key, None)
        return get_backend(case.model.spec, **opts)

    def _local_url(self, case: Case) -> str:
        if self._server is None:
            from ..server.process import LocalServer

            model = case.model.spec.split(":", 1)[1]
            self._server = LocalServer(model, **dict(case.model.options.get("server_options", {})))
            self._server.start()
        return str(self._server.base_url)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    # scoring --------------------------------------------------------------------------------

    def _with_cassette(self, case: Case, name: str, work: Any) -> Any:
        """Run ``work()`` inside cassette ``name`` under the record mode (see module doc)."""
        from vcr.errors import CannotOverwriteExistingCassetteException

        path = self.cassette_path(name)
        if self.record_mode == "none" and not path.is_file():
            shown = path.relative_to(self.root) if path.is_relative_to(self.root) else path
            raise NoCassetteError(
                f"no cassette for {case.id} ({shown}): record with `{record_command(case)}`"
            )
        mode = self.record_mode
        vcr = make_vcr(self.cassette_dir, "none" if mode == "once" and path.is_file() else mode)
        try:
            with use_cassette(vcr, path.name):
                return work()
        except CannotOverwriteExistingCassetteException as exc:
            if mode == "once":
                # a stale recording: "once" records every case without a valid recording
                path.unlink(missing_ok=True)
                with use_cassette(make_vcr(self.cassette_dir, "once"), path.name):
                    return work()
            body = getattr(exc.failed_request, "body", None)
            raise CassetteMissError(
                f"case {case.id}: a request has no recording in {path.name} (the prompt, "
                f"model, label set or a parameter changed since it was recorded): "
                f"{explain_miss(path, body)}. Re-record it with `{record_command(case)}`"
            ) from None

    def scores(self, case: Case) -> list[ScoreRow]:
        """Rows for the dataset sample plus the content-free inputs, scored once."""
        if case.id in self._scores:
            return self._scores[case.id]
        examples = [*self.dataset, *content_free_examples()]
        jobs = make_jobs(examples, [case.template], [case.label_set])

        # the backend (and, when recording, the local server) starts outside the cassette:
        # only scoring traffic is recorded
        backend = self._backend(case, case.method)
        retry = RetryPolicy(attempts=1 if self.record_mode == "none" else 6)

        def work() -> list[ScoreRow]:
            before = backend.request_count
            rows = score_jobs(backend, jobs, concurrency=1, retry=retry)
            if self.record_mode != "none":
                self.requests_live += backend.request_count - before
            return rows

        try:
            rows = self._with_cassette(case, case.id, work)
        finally:
            backend.close()
        self._scores[case.id] = rows
        return rows

    def frame(self, case: Case) -> Any:
        """The tidy frame of :meth:`scores` (built once per case; treat it as read-only)."""
        if case.id not in self._frames:
            from ..experiments.table import to_frame

            self._frames[case.id] = to_frame(self.scores(case))
        return self._frames[case.id]

    def teacher_forced(
        self, case: Case, name: str, requests: Sequence[tuple[str, Sequence[str]]]
    ) -> list[list[LabelScore]]:
        """Exact log P(continuation | prompt) for (prompt, continuations) pairs, through
        cassette ``name`` (the method-agreement check's own recording)."""

        backend = self._backend(case, "exact")
        tf = getattr(backend, "teacher_forced", None)
        if tf is None:
            backend.close()
            raise BackendError(f"{backend.spec} has no teacher-forced scoring")

        def work() -> list[list[LabelScore]]:
            return [tf(prompt, list(conts)) for prompt, conts in requests]

        try:
            result: list[list[LabelScore]] = self._with_cassette(case, name, work)
        finally:
            backend.close()
        return result
