"""Score the suite's cases through their cassettes (replay) or live (record).

Pytest-free: the plugin only decides the record mode and turns the errors raised here
into failures and skips.

Record modes (pytest-recording's ``--record-mode``):

* ``none`` (default): replay only. No cassette: :class:`NoCassetteError` (skip, with the
  record command); a request without a recording: :class:`CassetteMissError`; a broken
  file: :class:`CassetteCorruptError`. No server is started.
* ``once``: a case whose cassette replays is replayed (no server starts); a missing, stale
  or corrupt one is recorded anew.
* ``rewrite`` / ``all``: every selected case is recorded anew; ``new_episodes`` replays
  what is recorded and adds what is not.

A model with ``batch = true`` scores its cases through OpenAI's Batch API: the cassette
holds the batch's own traffic (upload, create, polls, downloads), see :mod:`.batching`.

**A committed cassette is only ever replaced, never removed.** A recording goes to a
temporary file beside it and replaces it (one atomic rename) only when every request of
the case succeeded. On any failure (a dead server, a missing ``[local]`` extra, an error
row, an interruption) the temporary file is removed, the old cassette stays byte for byte,
and the case fails with :class:`RecordingFailedError` naming the cause and the fix.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from ..backends import get_backend
from ..backends.base import Backend
from ..backends.jobs import RetryPolicy, ScoreRow, make_jobs, score_jobs
from ..data.datasets import Dataset
from ..errors import BackendError, LogprobEvalError
from ..experiments.analysis import ConfigAnalysis, analyze_config
from ..experiments.stability import PairAgreement, content_free_examples
from ..scoring.records import LabelScore
from .batching import score_batched
from .cassettes import (
    CassetteCorruptError,
    CassetteMissError,
    NoCassetteError,
    RecordingFailedError,
    explain_miss,
    make_vcr,
    use_cassette,
)
from .config import Case, EvalConfig, suite_arg

__all__ = [
    "CassetteCorruptError",
    "CassetteMissError",
    "NoCassetteError",
    "RecordingFailedError",
    "SuiteRunner",
    "record_all_command",
    "record_command",
]

REPLAY_PLACEHOLDER_URL = "http://127.0.0.1:9/v1"  # never contacted: replay answers first
REPLAY_PLACEHOLDER_KEY = "replay-without-a-key"  # not a secret: replay sends nothing
RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
_MARK = {
    "openai": "openai",
    "openai-responses": "openai",
    "ollama": "ollama",
    "local": "local",
    "gemini": "gemini",
    "anthropic": "anthropic",
}
_KEY_HINT = {
    "openai": "OPENAI_API_KEY=... ",
    "openai-responses": "OPENAI_API_KEY=... ",
    "gemini": "GEMINI_API_KEY=... ",
    "ollama": "OLLAMA_HOST=http://127.0.0.1:11434 ",
}
_KEY_ENV = {
    "openai": ("OPENAI_API_KEY",),
    "openai-responses": ("OPENAI_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}
"""Providers that need a key; replay passes a placeholder when none is set."""

_BATCH_KEYS = ("batch", "batch_poll_interval", "batch_cache_dir")
"""Suite keys of a model entry that choose batch scoring (not backend options)."""
_SUITE_ONLY = (*_BATCH_KEYS, "one_token_batches", "sample")
"""Suite keys of a model entry that are no backend options."""

_T = TypeVar("_T")
Work = Callable[[Backend, bool], _T]
"""What a case does with its backend; the flag is True when recording, False in replay."""


def record_command(case: Case, mode: str = "once", suite: str = "evals") -> str:
    """The command that records ``case`` (``suite``: the suite's folder)."""
    return record_all_command({case.id: case}, mode, suite)


def _record_mark(case: Case) -> str:
    """The marker that selects ``case``'s provider (or the server the suite starts)."""
    if case.model.server is not None:
        from ..server.thirdparty import SERVER_MARKS

        return SERVER_MARKS[case.model.server]
    return _MARK.get(case.model.provider, "live")


def record_all_command(
    cassettes: Mapping[str, Case], mode: str = "once", suite: str = "evals"
) -> str:
    """One command that records every cassette of ``cassettes`` (name -> its case; a
    cassette's name is in the ids of the tests that use it), their providers' keys first."""
    keys = "".join(dict.fromkeys(_KEY_HINT.get(c.model.provider, "") for c in cassettes.values()))
    marks = sorted({_record_mark(c) for c in cassettes.values()})
    selected = shlex.quote(" or ".join(cassettes))
    return (
        f"{keys}pytest {suite} -m {' or '.join(marks) if len(marks) > 1 else marks[0]} "
        f"-k {selected} --record-mode={mode}"
    )


def _causes(rows: Sequence[ScoreRow]) -> str:
    """The distinct errors of failed rows, most frequent first."""
    counts = Counter(r.error or "failed" for r in rows if r.status == "error")
    return "; ".join(f"{msg} (x{n})" if n > 1 else msg for msg, n in counts.most_common(3))


def analysis_options(config: EvalConfig) -> dict[str, Any]:
    """The options every per-case analysis of a suite uses (from its config)."""
    return {
        "k": int(config.expect("ranking", "k", 3)),
        "dev_fraction": float(config.dataset.get("dev_fraction", 0.5)),
        "seed": int(config.dataset.get("seed", 0)),
    }


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class SuiteRunner:
    """Scores cases once per process; keeps every row for the run's report."""

    def __init__(
        self,
        config: EvalConfig,
        *,
        cassette_dir: str | Path,
        record_mode: str,
        root: str | Path = ".",
        share_dir: str | Path | None = None,
    ) -> None:
        self.config = config
        # replay under xdist: a case scored (and analysed) by one worker is read back by the
        # others from here instead of being replayed again; recording never shares
        self.share_dir = Path(share_dir) if share_dir and record_mode == "none" else None
        self.root = Path(root)
        self.cassette_dir = Path(cassette_dir)
        if not self.cassette_dir.is_absolute():
            self.cassette_dir = self.root / self.cassette_dir
        self.record_mode = record_mode
        self.suite = suite_arg(config.path.parent)  # as typed after `pytest`
        self._stale: dict[str, str] = {}  # cassette name -> the case whose test explained it
        self._scores: dict[str, list[ScoreRow]] = {}
        self._frames: dict[str, Any] = {}
        self._analyses: dict[str, ConfigAnalysis] = {}
        self._pairs: dict[tuple[str, str], PairAgreement] = {}
        self._transformed: Any = None  # MatrixCache of the transformed cases' rows
        self._transformed_ids: set[str] = set()
        self._dataset: Dataset | None = None
        self._servers: dict[str, Any] = {}  # started servers (ServerProcess) by settings
        self._server_errors: dict[str, LogprobEvalError] = {}
        self._failed: dict[str, RecordingFailedError] = {}
        self.requests_live = 0
        self.server_pairs: dict[tuple[str, str], dict[str, Any]] = {}  # for the report

    # data ------------------------------------------------------------------------------------

    @property
    def _seed(self) -> int:
        return int(self.config.dataset.get("seed", 0))

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = self.config.load_dataset(self.root)
        return self._dataset

    def cassette_path(self, name: str) -> Path:
        return self.cassette_dir / f"{name}.json"

    def all_frames(self) -> dict[str, Any]:
        """The tidy frame of every case this process scored, by case id (what the run's
        report is made of; a case read back from another xdist worker is that worker's)."""
        return {c: f for c, f in self._frames.items() if c in self._scores}

    # backends ----------------------------------------------------------------------------------

    def _backend(self, case: Case, method: str, *, live: bool) -> Backend:
        opts = dict(case.model.options)
        match = opts.pop("match_options", None)
        if opts.pop("first_answer_only", False):
            match = {**(match or {}), "multi_label": False}
        if match:
            opts["match_options"] = match
        opts["method"] = method
        provider, server = case.model.provider, case.model.server
        if server is not None:
            opts["base_url"] = self._server_url(case) if live else REPLAY_PLACEHOLDER_URL
        elif not live and provider in _KEY_ENV and not any(map(os.environ.get, _KEY_ENV[provider])):
            opts["api_key"] = REPLAY_PLACEHOLDER_KEY
        for key in ("server_options", "templates", "label_sets", *_SUITE_ONLY):
            opts.pop(key, None)
        spec = case.model.spec
        if server is not None and provider != "local":  # "...@llama-server": its real URL
            spec = f"{spec.rsplit('@', 1)[0]}@{opts.pop('base_url')}"
        return get_backend(spec, **opts)

    def _server_url(self, case: Case) -> str:
        """The URL of the server the case's model needs (:attr:`ModelEntry.server`),
        started on first use and kept for the session. A server that failed to start is
        not tried again: every later case fails at once with the same cause."""
        from ..server.thirdparty import make_server

        kind = case.model.server
        assert kind is not None
        model = case.model.spec.split(":", 1)[1].split("@", 1)[0]
        options = dict(case.model.options.get("server_options", {}))
        if case.model.options.get("one_token_batches"):
            options["one_token_batches"] = True
        key = json.dumps([kind, model, options], sort_keys=True)
        if key in self._server_errors:
            raise self._server_errors[key]
        if key not in self._servers:
            server = make_server(kind, model, **options)
            try:
                server.start()
            except LogprobEvalError as exc:
                self._server_errors[key] = exc
                raise
            self._servers[key] = server
        return str(self._servers[key].base_url)

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()

    # replay and record --------------------------------------------------------------------

    def _shown(self, path: Path) -> Path:
        return path.relative_to(self.root) if path.is_relative_to(self.root) else path

    def _run(self, case: Case, name: str, method: str, work: Work[_T]) -> _T:
        """``work(backend, live)`` inside cassette ``name`` under the record mode (module doc)."""
        from vcr.errors import CannotOverwriteExistingCassetteException

        path = self.cassette_path(name)
        mode = self.record_mode
        if mode == "none" and not path.is_file():
            # a model that can never be recorded (Anthropic, reasoning models) says so first
            self._backend(case, method, live=False).close()
            raise NoCassetteError(
                f"no cassette for {case.id} ({self._shown(path)}): record with "
                f"`{record_command(case, suite=self.suite)}`"
            )
        if mode == "none" and path.name in self._stale:  # explained once, by that test
            raise CassetteMissError(
                f"case {case.id}: stale cassette {path.name} (the first failing test of "
                f"{self._stale[path.name]} says what changed and how to re-record it)",
                case=case,
                cassette=name,
            )
        if mode in ("none", "once") and path.is_file():
            try:
                return self._replay(case, path, method, work)
            except CannotOverwriteExistingCassetteException as exc:
                if mode == "none":
                    req = exc.failed_request
                    why = explain_miss(
                        path,
                        getattr(req, "body", None),
                        method=getattr(req, "method", ""),
                        uri=getattr(req, "uri", ""),
                    )
                    self._stale[path.name] = name
                    raise CassetteMissError(
                        f"case {case.id}: a request has no recording in {path.name} (the "
                        "prompt, model, label set or a parameter changed since it was "
                        f"recorded): {why}. Re-record it with "
                        f"`{record_all_command({name: case}, suite=self.suite)}`",
                        case=case,
                        cassette=name,
                    ) from None
            except CassetteCorruptError as exc:
                if mode == "none":
                    raise CassetteCorruptError(
                        f"case {case.id}: {exc}. Restore it (`git checkout -- "
                        f"{self._shown(path)}`) or re-record it with "
                        f"`{record_command(case, suite=self.suite)}`",
                        path=exc.path,
                        where=exc.where,
                    ) from None
            # "once": stale or corrupt, so record it anew below
        return self._record(case, path, method, work)

    def _replay(self, case: Case, path: Path, method: str, work: Work[_T]) -> _T:
        backend = self._backend(case, method, live=False)
        try:
            with use_cassette(make_vcr(self.cassette_dir, "none"), path.name):
                return work(backend, False)
        finally:
            backend.close()

    def _record(self, case: Case, path: Path, method: str, work: Work[_T]) -> _T:
        """Record into a temporary file; replace ``path`` only if everything succeeded. A
        case whose recording failed is not tried again by the case's other tests."""
        failed = self._failed.get(path.name)
        if failed is not None:
            raise failed
        try:
            return self._record_once(case, path, method, work)
        except RecordingFailedError as exc:
            self._failed[path.name] = exc
            raise

    def _record_once(self, case: Case, path: Path, method: str, work: Work[_T]) -> _T:
        kept = (
            f"; the committed cassette {self._shown(path)} is unchanged" if path.is_file() else ""
        )
        tmp = path.with_name(f".{path.stem}.recording-{os.getpid()}.json")
        tmp.unlink(missing_ok=True)
        mode = "all"
        if self.record_mode == "new_episodes" and path.is_file():
            shutil.copyfile(path, tmp)
            mode = "new_episodes"
        try:
            try:
                backend = self._backend(case, method, live=True)
            except LogprobEvalError as exc:
                raise RecordingFailedError(f"case {case.id}: cannot record: {exc}{kept}") from None
            try:
                with use_cassette(make_vcr(self.cassette_dir, mode), tmp.name):
                    result = work(backend, True)
            except RecordingFailedError:
                raise
            except LogprobEvalError as exc:
                raise RecordingFailedError(
                    f"case {case.id}: recording failed: {exc}{kept}"
                ) from None
            finally:
                self.requests_live += backend.request_count
                backend.close()
            if isinstance(result, list) and any(
                isinstance(r, ScoreRow) and r.status == "error" for r in result
            ):
                failed = [r for r in result if isinstance(r, ScoreRow) and r.status == "error"]
                raise RecordingFailedError(
                    f"case {case.id}: recording failed: {len(failed)} of {len(result)} rows "
                    f"have no answer: {_causes(failed)}{kept}"
                )
            if tmp.is_file():  # no file: the case needed no request, there is nothing to keep
                os.replace(tmp, path)
            return result
        finally:
            tmp.unlink(missing_ok=True)

    # scoring --------------------------------------------------------------------------------

    def scores(self, case: Case) -> list[ScoreRow]:
        """Rows for the dataset sample plus the content-free inputs, scored once."""
        if case.id in self._scores:
            return self._scores[case.id]
        sample = case.model.options.get("sample")
        texts = self.dataset.sample(int(sample), seed=self._seed) if sample else self.dataset
        examples = [*texts, *content_free_examples()]
        jobs = make_jobs(examples, [case.template], [case.label_set])
        retry = RetryPolicy(attempts=1 if self.record_mode == "none" else 6)

        def work(backend: Backend, live: bool) -> list[ScoreRow]:
            opts = case.model.options
            if opts.get("batch"):
                cache_dir = opts.get("batch_cache_dir")
                return score_batched(
                    backend,
                    jobs,
                    live=live,
                    poll_interval=float(opts.get("batch_poll_interval", 30.0)),
                    cache_dir=self.root / cache_dir if cache_dir else None,
                )
            return score_jobs(backend, jobs, concurrency=1, retry=retry)

        # the backend (and, when recording, the local server) starts outside the cassette:
        # only scoring traffic is recorded
        rows = self._run(case, case.id, case.method, work)
        if rows and case.model.server is not None and case.model.label != rows[0].model:
            # the backend's spec holds the server's port; the case's config names the server
            rows = [replace(r, model=case.model.label) for r in rows]
        self._scores[case.id] = rows
        return rows

    def frame(self, case: Case) -> Any:
        """The tidy frame of :meth:`scores` (built once per case; treat it as read-only).
        Under xdist, a case another worker of the run scored is read back from the share
        folder, not replayed."""
        if case.id not in self._frames:
            from ..experiments.table import to_frame

            shared = self.share_dir / f"{case.id}.frame.pickle" if self.share_dir else None
            if shared is not None and shared.is_file():
                self._frames[case.id] = pickle.loads(shared.read_bytes())
            else:
                self._frames[case.id] = to_frame(self.scores(case))
                if shared is not None:
                    _write_atomically(shared, pickle.dumps(self._frames[case.id]))
        return self._frames[case.id]

    def analysis(self, case: Case) -> ConfigAnalysis:
        """Ranking metrics, threshold sweep and transfer of a case, computed once per
        process: the tests assert on them and the run's report shows the same objects."""
        if case.id not in self._analyses:
            from ..experiments.transforms import split_content_free

            # a shared analysis exists only for a case scored without error
            shared = self.share_dir / f"{case.id}.analysis.json" if self.share_dir else None
            if shared is not None and shared.is_file():
                found = ConfigAnalysis.from_json(json.loads(shared.read_text()))
            else:
                real, _ = split_content_free(self.frame(case))
                found = analyze_config(real, case.config, **analysis_options(self.config))
                if shared is not None:
                    _write_atomically(shared, json.dumps(found.as_json()).encode())
                self._transform(case)  # for the stability pairs, while the frame is here
            self._analyses[case.id] = found
        return self._analyses[case.id]

    def all_analyses(self) -> dict[str, ConfigAnalysis]:
        """Every analysis computed in this process, by config."""
        return {a.ranking.config: a for a in self._analyses.values()}

    def pair_agreement(self, a: Case, b: Case) -> PairAgreement:
        """How two cases' rankings agree, on the raw scores and under each score transform
        (:func:`~logprob_eval.experiments.stability.pair_agreement`), computed once per
        process: the stability tests assert on it and the run's report shows it."""
        from ..experiments.stability import pair_agreement

        key = (min(a.config, b.config), max(a.config, b.config))
        if key not in self._pairs:
            for case in (a, b):
                self._transform(case)
            self._pairs[key] = pair_agreement(self._transformed, *key)
        return self._pairs[key]

    def all_pairs(self) -> dict[tuple[str, str], PairAgreement]:
        """Every pair agreement computed in this process."""
        return dict(self._pairs)

    def _transform(self, case: Case) -> None:
        """Add the case's rows under every score transform to the pairs' matrix cache
        (under xdist, computed once by the worker that analysed the case and shared)."""
        if case.id in self._transformed_ids:
            return
        from ..experiments.metrics import MatrixCache
        from ..experiments.transforms import apply_transforms, split_content_free

        shared = self.share_dir / f"{case.id}.transformed.pickle" if self.share_dir else None
        if shared is not None and shared.is_file():  # written after the case was scored
            transformed = pickle.loads(shared.read_bytes())
        else:
            real, content_free = split_content_free(self.frame(case))
            transformed, _ = apply_transforms(real, content_free=content_free)
            if shared is not None:
                _write_atomically(shared, pickle.dumps(transformed))
        if self._transformed is None:
            self._transformed = MatrixCache(transformed)
        else:
            self._transformed.add(transformed)
        self._transformed_ids.add(case.id)

    def server_agreement(self, a: Case, b: Case, tolerance: float) -> Any:
        """How the scores of two cases of one config on two servers agree
        (:func:`~logprob_eval.experiments.servers.server_agreement`), kept for the run's
        report: strict (within ``tolerance``) when both servers evaluate one token per
        batch, measured otherwise."""
        from ..experiments.servers import server_agreement

        found = server_agreement(self.frame(a), self.frame(b))
        strict = a.model.one_token_batches and b.model.one_token_batches
        if strict:
            verdict = "agree" if found.holds(tolerance) else "DIFFER"
            verdict += f" (tolerance {tolerance:g})"
        else:
            verdict = "measured"
        self.server_pairs[(a.id, b.id)] = {
            **found.as_json(),
            "a": a.id,
            "b": b.model.label,
            "batching": "one-token" if strict else "default",
            "verdict": verdict,
        }
        return found

    def teacher_forced(
        self, case: Case, name: str, requests: Sequence[tuple[str, Sequence[str]]]
    ) -> list[list[LabelScore]]:
        """Exact log P(continuation | prompt) for (prompt, continuations) pairs, through
        cassette ``name`` (the method-agreement check's own recording)."""

        def work(backend: Backend, live: bool) -> list[list[LabelScore]]:
            tf = getattr(backend, "teacher_forced", None)
            if tf is None:
                raise BackendError(f"{backend.spec} has no teacher-forced scoring")
            return [tf(prompt, list(conts)) for prompt, conts in requests]

        return self._run(case, name, "exact", work)
