"""JSON over HTTP with ``requests``, for the backends that use no SDK (Ollama, Gemini).

One place turns transport failures, HTTP statuses and undecodable bodies into the typed
errors of :mod:`logprob_eval.errors`. ``requests`` never retries on its own: retries are
the scorer's, and during cassette replay a miss fails at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import (
    BackendError,
    BackendUnavailableError,
    RateLimitedError,
    ServerUnreachableError,
    is_network_blocked,
)
from ..redact import redact

__all__ = ["Fixes", "post_json", "retry_after_seconds", "status_error"]


@dataclass(frozen=True, slots=True)
class Fixes:
    """What a user should do, per kind of failure (the end of each error message)."""

    unreachable: str
    auth: str = "check the API key"
    not_found: str = "check the model name and the URL"
    server: str = "retry, or check the service's status"
    rejected: str = "fix the request parameters"
    server_name: str = "server"


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (an HTTP date or junk gives None)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def status_error(
    spec: str, status: int, message: str, *, fixes: Fixes, retry_after: float | None = None
) -> BackendError:
    """The typed error for a non-200 answer; ``message`` is the server's (redacted here)."""
    message = redact(message)
    error = _status_error(spec, status, message, fixes=fixes, retry_after=retry_after)
    error.server_message = message
    return error


def _status_error(
    spec: str, status: int, message: str, *, fixes: Fixes, retry_after: float | None
) -> BackendError:
    head = f"{spec}: HTTP {status}"
    if status in (401, 403):
        return BackendError(
            f"{head}: authentication failed ({message}); {fixes.auth}", backend=spec, status=status
        )
    if status == 404:
        return BackendError(
            f"{head}: not found ({message}); {fixes.not_found}", backend=spec, status=status
        )
    if status == 429:
        return RateLimitedError(
            f"{head}: rate limited ({message}); retry later or lower concurrency",
            backend=spec,
            status=status,
            retry_after=retry_after,
        )
    if status >= 500:
        return BackendUnavailableError(
            f"{head}: server error ({message}); {fixes.server}", backend=spec, status=status
        )
    return BackendError(
        f"{head}: request rejected ({message}); {fixes.rejected}", backend=spec, status=status
    )


def post_json(
    spec: str,
    session: Any,
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float,
    fixes: Fixes,
    on_status: Callable[[Any], BackendError],
    headers: Mapping[str, str] | None = None,
) -> Any:
    """POST ``payload`` as JSON and decode the answer; ``on_status(response)`` makes the
    error for a non-200 answer. ``url`` must hold no secret (it is quoted in messages)."""
    import requests

    try:
        r = session.post(url, json=payload, headers=dict(headers or {}), timeout=timeout)
    except requests.Timeout:
        raise BackendUnavailableError(
            f"{spec}: no answer from {url} within {timeout:g}s (timeout); raise timeout= or "
            "lower concurrency",
            backend=spec,
        ) from None
    except requests.ConnectionError as exc:
        if _is_connect_failure(exc):
            raise ServerUnreachableError(
                f"{spec}: no {fixes.server_name} at {url} (connection refused or unknown host); "
                f"{fixes.unreachable}",
                backend=spec,
            ) from None
        raise BackendUnavailableError(
            f"{spec}: cannot reach {url} ({redact(str(exc))[:160]}); {fixes.unreachable}",
            backend=spec,
        ) from None
    except RuntimeError as exc:
        if not is_network_blocked(exc):
            raise
        raise ServerUnreachableError(
            f"{spec}: cannot reach {url}: the network is blocked (pytest --block-network); "
            "drop --block-network to record",
            backend=spec,
        ) from None
    except requests.RequestException as exc:
        raise BackendUnavailableError(
            f"{spec}: request to {url} failed ({type(exc).__name__}); retry", backend=spec
        ) from None
    if r.status_code != 200:
        raise on_status(r)
    try:
        return json.loads(r.text)
    except json.JSONDecodeError as exc:
        raise BackendUnavailableError(
            f"{spec}: the answer is not valid JSON ({exc.msg} at char {exc.pos} of "
            f"{len(r.text)}: truncated or malformed, or a streamed body); retry",
            backend=spec,
        ) from None


def _is_connect_failure(exc: Exception) -> bool:
    """A refused connection or an unknown host (urllib3's ``NewConnectionError``, of which
    ``NameResolutionError`` is a kind), as opposed to a dropped or timed-out one."""
    from urllib3.exceptions import NewConnectionError

    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)
