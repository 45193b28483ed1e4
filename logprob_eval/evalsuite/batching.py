"""An eval case scored through OpenAI's Batch API (``batch = true`` on its ``[[models]]``).

Recording sends the case's requests as one batch (:mod:`logprob_eval.backends.openai_batch`):
the JSONL file upload, the batch creation, the status polls every ``batch_poll_interval``
seconds, and the output and error file downloads. The cassette holds exactly that traffic,
nothing made up from it. Replay sends the same requests to the cassette, which plays the
recorded answers back in order (each poll once, so the statuses come back as they came),
without waiting between polls. A changed prompt changes the uploaded JSONL, so the upload
has no recording: a stale cassette, like any other.

Each run keeps its batch state in a fresh temporary response cache, so every request of
the case goes through the batch and into the cassette. Answers are also written to
``batch_cache_dir`` when one is set (only written, never read while recording, so a cached
answer can never leave a request out of a cassette). A recording that is killed does not
resume its batch: a cassette must hold the whole conversation from the upload on.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..backends.base import Backend
from ..backends.jobs import Job, ScoreRow
from ..cache import ResponseCache

__all__ = ["score_batched"]


class _TeeCache(ResponseCache):
    """A response cache that also writes every answer to ``also``."""

    def __init__(self, path: str | Path, also: ResponseCache | None) -> None:
        super().__init__(path)
        self.also = also

    def put(self, key: str, body: Any) -> None:
        super().put(key, body)
        if self.also is not None:
            self.also.put(key, body)


def _no_wait(seconds: float) -> None:
    """Replay: the recorded answers are all there; nothing to wait for."""


def score_batched(
    backend: Backend,
    jobs: Sequence[Job],
    *,
    live: bool,
    poll_interval: float,
    cache_dir: Path | None = None,
) -> list[ScoreRow]:
    """Rows of ``jobs`` scored through one batch (see the module docstring); ``live`` is
    True when recording (answers also land in ``cache_dir``), False in replay."""
    from ..backends.openai_batch import score_jobs_batch

    also = ResponseCache(cache_dir) if live and cache_dir is not None else None
    with tempfile.TemporaryDirectory(prefix="logprob-eval-batch-") as tmp:
        cache = _TeeCache(tmp, also)
        backend.cache = cache
        try:
            return score_jobs_batch(
                backend,
                jobs,
                cache=cache,
                poll_interval=poll_interval,
                sleep=time.sleep if live else _no_wait,
            )
        finally:
            backend.cache = None
