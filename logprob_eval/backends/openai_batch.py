"""Score jobs through OpenAI's Batch API: half the price, answers within 24 hours.

The run writes the requests that :meth:`Backend.score` would send as JSONL (one line per
distinct request, ``custom_id`` = the response-cache key), uploads it (``purpose=batch``),
creates the batch, polls it with a progress bar, downloads the output and error files
and maps every line back by ``custom_id``. Successful answers go into the response cache
under the same key a synchronous request would use, so the rows are then scored from the
cache exactly as a live run scores them (and a later synchronous run sends nothing).
Failed lines keep their errors on their rows; a rerun resubmits only them.

Resume: the batch id is saved in ``<cache>/batches/`` as soon as the batch exists. A run
killed while it polls (or while it waits for the 24-hour window) picks the saved batch up
again, downloads its results, and submits nothing twice.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..cache import ResponseCache, request_key
from ..errors import BackendError, ConfigError, ServerUnreachableError
from ..redact import redact
from ._openai_client import call_sdk
from .base import Backend
from .jobs import Job, RetryPolicy, ScoreRow, _rows, score_jobs

__all__ = ["BatchState", "score_jobs_batch"]

TERMINAL = ("completed", "failed", "expired", "cancelled")
COMPLETION_WINDOW = "24h"


@dataclass
class BatchState:
    """What a run saves to resume a batch: its id, input file and the keys it covers."""

    spec: str
    endpoint: str
    input_file_id: str
    keys: list[str]
    batch_id: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> BatchState:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def _requests(backend: Backend, jobs: Sequence[Job]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Cache key -> (endpoint, payload) of every distinct request the jobs need."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for job in jobs:
        planned = backend.batch_request(job.prompt)
        if planned is None:
            raise ConfigError(
                f"{backend.spec} has no batch API; drop --batch (batch runs exist for "
                "openai: and openai-responses: models)"
            )
        endpoint, payload = planned
        out.setdefault(request_key(backend.spec, endpoint, payload), (endpoint, payload))
    return out


class _Batcher:
    """One backend's batch traffic: upload, create, poll, download, ingest."""

    def __init__(
        self,
        backend: Backend,
        cache: ResponseCache,
        poll_interval: float,
        progress: bool,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        client = getattr(backend, "_client", None)
        if client is None:
            raise ConfigError(f"{backend.spec} has no batch API; drop --batch")
        self.backend, self.client, self.cache = backend, client, cache
        self.poll_interval, self.progress, self.sleep = poll_interval, progress, sleep
        self.dir = cache.path.parent / "batches"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return call_sdk(self.backend.spec, self.client, fn, *args, **kwargs)

    def saved(self) -> list[tuple[Path, BatchState]]:
        out = []
        for path in sorted(self.dir.glob("*.json")):
            state = BatchState.load(path)
            if state.spec == self.backend.spec:
                out.append((path, state))
        return out

    def submit(self, endpoint: str, lines: dict[str, dict[str, Any]]) -> tuple[Path, BatchState]:
        text = "".join(
            json.dumps(
                {"custom_id": key, "method": "POST", "url": f"/v1/{endpoint}", "body": body},
                ensure_ascii=False,
                sort_keys=True,
            )
            + "\n"
            for key, body in lines.items()
        )
        upload = self._call(
            self.client.files.create,
            file=("logprob-eval-batch.jsonl", io.BytesIO(text.encode("utf-8"))),
            purpose="batch",
        )
        state = BatchState(self.backend.spec, endpoint, str(upload.id), list(lines))
        path = self.dir / f"{upload.id}.json"
        state.save(path)  # a kill before the batch exists reuses this upload
        return path, state

    def finish(self, path: Path, state: BatchState) -> BatchState:
        """Create the batch if the saved state has none, wait for it, ingest its files."""
        if not state.batch_id:
            batch = self._call(
                self.client.batches.create,
                input_file_id=state.input_file_id,
                endpoint=f"/v1/{state.endpoint}",
                completion_window=COMPLETION_WINDOW,
            )
            state.batch_id = str(batch.id)
            state.save(path)  # from here on a killed run resumes this batch
        batch = self._wait(state)
        if batch.status == "failed":
            errs = getattr(getattr(batch, "errors", None), "data", None) or []
            why = "; ".join(redact(f"{e.code}: {e.message}") for e in errs[:3]) or "no reason"
            path.unlink(missing_ok=True)
            raise BackendError(
                f"{self.backend.spec}: batch {state.batch_id} failed validation ({why}); fix "
                "the requests and rerun",
                backend=self.backend.spec,
            )
        seen: set[str] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = self._call(self.client.files.content, file_id)
                for line in content.text.splitlines():
                    if line.strip():
                        seen.add(self._ingest(json.loads(line), state))
        for key in state.keys:
            if key not in seen:
                state.errors[key] = (
                    f"batch {state.batch_id} ended {batch.status} before this request ran; "
                    "rerun to resubmit it"
                )
        path.replace(path.with_suffix(".done"))
        return state

    def _wait(self, state: BatchState) -> Any:
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(state.keys), desc=f"batch {state.batch_id}", unit="req")
        policy, unreachable = RetryPolicy(), 0.0
        try:
            while True:
                try:
                    batch = self._call(self.client.batches.retrieve, state.batch_id)
                except BackendError as exc:
                    # transient errors are waited out; a server that is gone stops the run
                    # after the connect budget (the saved batch id resumes it later)
                    pause = policy.delay(0, exc.retry_after)
                    if isinstance(exc, ServerUnreachableError):
                        unreachable += pause
                    if not exc.retriable or unreachable > policy.connect_budget:
                        raise
                    self.sleep(pause + self.poll_interval)
                    continue
                unreachable = 0.0
                counts = getattr(batch, "request_counts", None)
                if bar is not None and counts is not None:
                    bar.n = int(counts.completed or 0) + int(counts.failed or 0)
                    bar.refresh()
                if batch.status in TERMINAL:
                    return batch
                self.sleep(self.poll_interval)
        finally:
            if bar is not None:
                bar.close()

    def _ingest(self, line: dict[str, Any], state: BatchState) -> str:
        key = str(line.get("custom_id", ""))
        response = line.get("response") or {}
        status = response.get("status_code")
        if status == 200 and isinstance(response.get("body"), dict):
            self.cache.put(key, response["body"])
            return key
        err = line.get("error") or (response.get("body") or {}).get("error") or {}
        message = err.get("message", "no message") if isinstance(err, dict) else str(err)
        code = err.get("code") if isinstance(err, dict) else None
        head = f"HTTP {status}" if status else str(code or "error")
        state.errors[key] = redact(f"{self.backend.spec}: batch line failed: {head} ({message})")
        return key


def score_jobs_batch(
    backend: Backend,
    jobs: Sequence[Job],
    *,
    cache: ResponseCache,
    poll_interval: float = 30.0,
    progress: bool = False,
    on_result: Callable[[int, list[ScoreRow]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **_: Any,
) -> list[ScoreRow]:
    """Like :func:`~logprob_eval.backends.jobs.score_jobs`, through the Batch API (see module doc).

    Rows come back in job order; a job whose line failed has ``status="error"`` rows with
    the line's error. ``sleep`` waits between polls (cassette replay passes one that does
    not wait). Extra keyword arguments of ``score_jobs`` (``concurrency``...) are accepted
    and ignored: the provider schedules a batch.
    """
    if backend.cache is not cache:
        raise ConfigError("score_jobs_batch: pass the backend's own response cache as cache=")
    batcher = _Batcher(backend, cache, poll_interval, progress, sleep)
    errors: dict[str, str] = {}
    for path, state in batcher.saved():  # a killed run's batches first
        errors.update(batcher.finish(path, state).errors)
    needed = _requests(backend, jobs)
    todo = [k for k in needed if k not in errors and cache.get(k) is None]
    by_endpoint: dict[str, dict[str, dict[str, Any]]] = {}
    for key in todo:
        endpoint, payload = needed[key]
        by_endpoint.setdefault(endpoint, {})[key] = payload
    for endpoint, lines in by_endpoint.items():
        errors.update(batcher.finish(*batcher.submit(endpoint, lines)).errors)

    results: dict[int, list[ScoreRow]] = {}
    keys = [next(iter(_requests(backend, [job]))) for job in jobs]
    for key in keys:  # never let a job fall through to a synchronous request
        if key not in errors and cache.get(key) is None:
            errors[key] = f"{backend.spec}: the batch returned no line for this request; rerun"
    ready = [i for i, k in enumerate(keys) if k not in errors]
    for i, k in enumerate(keys):
        if k in errors:
            results[i] = _rows(backend, jobs[i], None, errors[k])
            if on_result is not None:
                on_result(i, results[i])

    def keep(j: int, rows: list[ScoreRow]) -> None:
        results[ready[j]] = rows
        if on_result is not None:
            on_result(ready[j], rows)

    score_jobs(
        backend, [jobs[i] for i in ready], concurrency=1, retry=RetryPolicy(1), on_result=keep
    )
    return [row for i in range(len(jobs)) for row in results[i]]
