"""Score texts x templates x label sets through a backend: concurrency, retries, progress.

One *job* is one text under one template and one label set: one request for the generation
method, one (list-of-prompts) request for the exact method. :func:`score_jobs` runs jobs on
a thread pool, retries transient failures (429 with ``Retry-After``, 5xx, dropped
connections, timeouts, torn bodies) with capped exponential back-off, records permanent
failures on the rows of that job (``status="error"`` with the reason) and returns rows in
job order. Finished rows are handed to ``on_result`` as they complete, so nothing finished
is lost if a later job raises. Three errors stop the run, because no job can succeed:
:class:`~logprob_eval.errors.LogprobsUnsupportedError`,
:class:`~logprob_eval.errors.ProtocolUnsupportedError` (e.g. a server without echo), and
:class:`~logprob_eval.errors.ServerUnreachableError` once the short connect budget
(:attr:`RetryPolicy.connect_budget`, a few seconds for a server that is still starting) is
spent: a refused connection is never retried for minutes.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from typing import Any

from ..data.datasets import Example
from ..data.prompts import LabelSet, Template
from ..errors import (
    BackendError,
    LogprobEvalError,
    LogprobsUnsupportedError,
    ProtocolUnsupportedError,
    ServerUnreachableError,
)
from ..redact import redact
from .base import Backend

__all__ = ["DEFAULT_CONCURRENCY", "Job", "RetryPolicy", "ScoreRow", "make_jobs", "score_jobs"]

DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class Job:
    """One text under one template and one label set."""

    example: Example
    template: Template
    label_set: LabelSet

    @property
    def prompt(self) -> str:
        return self.template.render(self.example.text, self.label_set)


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One row of the tidy score table: one text x config x label."""

    example_id: str
    model: str
    method: str
    template: str
    label_set: str
    label: str
    phrase: str
    logprob: float
    status: str
    is_true: bool
    start: int | None = None
    n_tokens: int = 0
    note: str = ""
    error: str = ""
    variants: str = ""  # JSON list of the token paths combined into the score
    path: str = ""  # JSON list of the tokens of the dominant path
    lower: float = math.nan  # the guaranteed lower end of the score (-inf: none known)

    def as_dict(self) -> dict[str, Any]:
        # every field is a scalar: a shallow dict equals dataclasses.asdict, ~10x faster
        return {name: getattr(self, name) for name in _ROW_FIELDS}


_ROW_FIELDS = tuple(f.name for f in fields(ScoreRow))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries for transient failures: ``attempts`` in all, back-off doubling from ``base``.

    A server that refuses connections (or a host that does not resolve) is retried only
    while the pauses add up to at most ``connect_budget`` seconds, then the run stops.
    """

    attempts: int = 6
    base: float = 0.25
    cap: float = 20.0
    connect_budget: float = 3.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.cap, retry_after)
        return min(self.cap, self.base * 2**attempt) * (0.5 + random.random() / 2)


def make_jobs(
    examples: Iterable[Example], templates: Sequence[Template], label_sets: Sequence[LabelSet]
) -> list[Job]:
    """Every example under every template and label set, in a stable order."""
    return [Job(ex, t, ls) for t in templates for ls in label_sets for ex in examples]


def _rows(backend: Backend, job: Job, scores: dict[str, Any] | None, error: str) -> list[ScoreRow]:
    rows = []
    true = set(job.example.labels)
    for canon, phrase in job.label_set.mapping.items():

        def row(**fields: Any) -> ScoreRow:
            return ScoreRow(
                example_id=job.example.id,
                model=backend.spec,
                method=backend.method,
                template=job.template.name,
                label_set=job.label_set.name,
                label=canon,  # noqa: B023 - called at once, inside this iteration
                phrase=phrase,  # noqa: B023
                is_true=canon in true,  # noqa: B023
                **fields,
            )

        if scores is None:
            rows.append(row(logprob=math.nan, status="error", error=error))
        else:
            s = scores[phrase]
            rows.append(
                row(
                    logprob=s.logprob,
                    lower=s.lower,
                    status=s.status,
                    start=s.start,
                    n_tokens=s.n_tokens,
                    note=s.note,
                    variants=json.dumps(
                        [list(v) for v in s.variant_tokens] or [[p.token for p in s.path]],
                        ensure_ascii=False,
                    ),
                    path=json.dumps([p.token for p in s.path], ensure_ascii=False),
                )
            )
    return rows


def _run_one(
    backend: Backend, job: Job, policy: RetryPolicy, stop: threading.Event
) -> list[ScoreRow]:
    last = ""
    connect_waited = 0.0
    for attempt in range(policy.attempts):
        if stop.is_set():
            return _rows(backend, job, None, "run stopped before this job finished")
        try:
            return _rows(backend, job, backend.score(job.prompt, job.label_set.phrases), "")
        except (LogprobsUnsupportedError, ProtocolUnsupportedError):
            raise
        except ServerUnreachableError:
            pause = min(policy.base * 2**attempt, policy.connect_budget - connect_waited)
            if pause <= 0 or attempt == policy.attempts - 1:
                raise
            time.sleep(pause)
            connect_waited += pause
        except BackendError as exc:
            last = redact(str(exc))
            if not exc.retriable or attempt == policy.attempts - 1:
                break
            time.sleep(policy.delay(attempt, exc.retry_after))
        except LogprobEvalError as exc:  # malformed response, bad label...: not retriable
            last = redact(str(exc))
            break
    return _rows(backend, job, None, last or "failed")


def score_jobs(
    backend: Backend,
    jobs: Sequence[Job],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    retry: RetryPolicy | None = None,
    progress: bool = False,
    on_result: Callable[[int, list[ScoreRow]], None] | None = None,
) -> list[ScoreRow]:
    """Score ``jobs`` through ``backend``; rows come back in job order."""
    if concurrency < 1:
        from ..errors import ConfigError

        raise ConfigError(f"concurrency={concurrency!r} must be at least 1")
    policy = retry or RetryPolicy()
    results: list[list[ScoreRow] | None] = [None] * len(jobs)
    stop = threading.Event()
    bar = _progress(len(jobs), backend.spec) if progress else None
    if concurrency == 1:  # in this thread: a hand-off to a pool thread per job cost 30%
        try:
            for i, job in enumerate(jobs):
                rows = _run_one(backend, job, policy, stop)
                results[i] = rows
                if on_result is not None:
                    on_result(i, rows)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return [row for rows in results if rows is not None for row in rows]
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            pending: dict[Future[list[ScoreRow]], int] = {}
            it = iter(enumerate(jobs))
            fatal: BaseException | None = None

            def submit_next() -> None:
                nxt = next(it, None)
                if nxt is not None:
                    pending[pool.submit(_run_one, backend, nxt[1], policy, stop)] = nxt[0]

            for _ in range(concurrency):
                submit_next()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    try:
                        rows = fut.result()
                    except BaseException as exc:
                        fatal = fatal or exc
                        stop.set()
                        continue
                    results[i] = rows
                    if on_result is not None:
                        on_result(i, rows)
                    if bar is not None:
                        bar.update(1)
                    if fatal is None:
                        submit_next()
            if fatal is not None:
                raise fatal
    finally:
        if bar is not None:
            bar.close()
    return [row for rows in results if rows is not None for row in rows]


def _progress(total: int, desc: str) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc=desc, unit="job", leave=False)
