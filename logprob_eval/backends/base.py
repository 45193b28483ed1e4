"""The one backend interface every provider implements."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ..cache import ResponseCache, request_key
from ..errors import ResponseFormatError
from ..scoring.matcher import match_labels
from ..scoring.records import LabelScore, Method, Position

__all__ = ["Backend"]


class Backend(ABC):
    """Scores label phrases for a prompt. Subclasses implement :meth:`score` only.

    ``request_count`` counts requests that really went out (cache hits excluded).
    """

    provider: ClassVar[str]
    methods: ClassVar[tuple[Method, ...]]

    def __init__(
        self,
        model: str,
        *,
        method: Method,
        cache: ResponseCache | None = None,
        timeout: float = 60.0,
        match_options: dict[str, Any] | None = None,
    ) -> None:
        if method not in self.methods:
            from ..errors import MethodUnsupportedError

            works = ", ".join(self.methods) or "none"
            why = (
                " (a chat-only API: it continues no raw prompt, so no label token can be forced)"
                if method == "forced"
                else ""
            )
            raise MethodUnsupportedError(
                f"{self.provider}:{model}: method={method!r} is not available{why}; "
                f"use one of {works}",
                method=method,
                methods=self.methods,
            )
        self.model = model
        self.method: Method = method
        self.cache = cache
        self.timeout = timeout
        self.match_options = dict(match_options or {})  # for the matcher (generation method)
        self.request_count = 0
        self._count_lock = threading.Lock()

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.model}"

    @abstractmethod
    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        """Score every label phrase for one prompt."""

    def batch_request(self, prompt: str) -> tuple[str, dict[str, Any]] | None:
        """(endpoint, payload) of the one request :meth:`score` sends for ``prompt``, for a
        provider's batch API; None where the backend has no batch path."""
        return None

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 48,
        temperature: float = 0.8,
        seed: int | None = None,
    ) -> str:
        """Free text for ``prompt`` (synthetic data generation); not every backend has it."""
        from ..errors import BackendError

        raise BackendError(
            f"{self.spec} cannot generate free text; pick another backend", backend=self.spec
        )

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release clients, servers and connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec} method={self.method}>"

    # helpers for subclasses -------------------------------------------------------------

    def _request(self, endpoint: str, payload: dict[str, Any], send: Callable[[], Any]) -> Any:
        """``send()`` through the response cache; counts real requests."""
        key = request_key(self.spec, endpoint, payload) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        with self._count_lock:
            self.request_count += 1
        body = send()
        if self.cache is not None:
            self.cache.put(key, body)
        return body

    def _match_generated(
        self, parse: Callable[[Any], list[Position]], body: Any, labels: Sequence[str]
    ) -> dict[str, LabelScore]:
        """Parse a generation response and score ``labels`` on it with the matcher."""
        try:
            positions = parse(body)
        except ResponseFormatError as exc:
            raise self._format_error(exc) from None
        return match_labels(labels, positions, **self.match_options)

    def _format_error(self, exc: ResponseFormatError) -> ResponseFormatError:
        """The parser's error with this backend and model named in front."""
        return ResponseFormatError(f"{self.spec}: {exc}", field=exc.field, source=exc.source)
