"""The official ``openai`` SDK behind every OpenAI-protocol backend: client and errors."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

from ..errors import (
    BackendError,
    BackendUnavailableError,
    LogprobsUnsupportedError,
    ServerUnreachableError,
    is_network_blocked,
)
from ..redact import redact
from ._http import Fixes, retry_after_seconds, status_error

__all__ = ["call_json", "call_sdk", "make_client"]


def make_client(spec: str, *, base_url: str | None, api_key: str | None, timeout: float) -> Any:
    """An ``openai.OpenAI`` client with SDK retries off: retries are ours, and during
    cassette replay a miss must fail at once, not after back-off."""
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a core dependency
        from ..errors import MissingDependencyError

        raise MissingDependencyError(
            f"{spec} needs the openai SDK: pip install 'openai>=1.40'", backend=spec
        ) from None
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        if base_url is None:
            raise BackendError(
                f"{spec}: no API key; set OPENAI_API_KEY (or replay recorded cassettes, "
                "which need no key)",
                backend=spec,
            )
        key = "not-needed"  # OpenAI-compatible servers on loopback take any key
    return openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)


_FIXES = Fixes(
    unreachable="start the server, or fix the URL / OPENAI_BASE_URL",
    auth="set OPENAI_API_KEY to a valid key",
    not_found="check the model name and the base URL",
    server="retry, or check the server's log",
)


def _server_message(body: Any, text: str) -> tuple[str, str]:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message", "")), str(err.get("code") or err.get("type") or "")
    if isinstance(err, str):
        return err, ""
    return text[:300], ""


def _map_error(exc: Exception, spec: str, base_url: str, timeout: float) -> BackendError:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return BackendUnavailableError(
            f"{spec}: no answer from {base_url} within {timeout:g}s (timeout); raise timeout= "
            "or lower concurrency",
            backend=spec,
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = redact(str(exc.__cause__ or exc))[:200]
        if _is_connect_failure(exc.__cause__):
            return ServerUnreachableError(
                f"{spec}: no server at {base_url} (connection refused or unknown host: "
                f"{cause}); start the server, or fix the URL / OPENAI_BASE_URL",
                backend=spec,
            )
        return BackendUnavailableError(
            f"{spec}: cannot reach {base_url} ({cause}); start the server or check the URL",
            backend=spec,
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        try:
            body = exc.response.json()
        except Exception:
            body = None
        message, code = _server_message(body, exc.response.text)
        message = redact(message)
        if status == 400 and ("logprobs" in message.lower() or code == "unsupported_parameter"):
            return LogprobsUnsupportedError(
                f"logprobs unsupported for {spec}: {message}; reasoning models (o-series, "
                "gpt-5 family) return no log-probs, pick a chat model such as gpt-4.1-mini",
                backend=spec,
                status=status,
            )
        return status_error(
            spec,
            status,
            message,
            fixes=_FIXES,
            retry_after=retry_after_seconds(exc.response.headers.get("retry-after")),
        )
    return BackendError(f"{spec}: {type(exc).__name__}: {redact(str(exc))[:300]}", backend=spec)


def _is_connect_failure(exc: BaseException | None) -> bool:
    """True for httpx's ``ConnectError`` (refused connection, unknown host): nothing
    listens there; a dropped or timed-out connection is a different, retriable failure."""
    return exc is not None and type(exc).__name__ == "ConnectError"


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, TimeoutError]
    for mod in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(__import__(mod).TransportError)
    return tuple(errors)


def call_sdk(spec: str, client: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, an SDK call, with its failures as typed errors. Something in
    the transport stack that refuses the request (a replayed cassette without a matching
    recording) passes through as is."""
    import openai

    base_url = str(client.base_url)
    try:
        return fn(*args, **kwargs)
    except openai.APIConnectionError as exc:
        cause = exc.__cause__
        if is_network_blocked(cause):
            raise ServerUnreachableError(
                f"{spec}: cannot reach {base_url}: the network is blocked (pytest "
                "--block-network); drop --block-network to record",
                backend=spec,
            ) from None
        if cause is not None and not isinstance(cause, _transport_errors()):
            # not a network failure: something in the transport stack refused the request
            # (e.g. a replayed cassette without a matching recording); let it through as is
            raise cause from None
        raise _map_error(exc, spec, base_url, client.timeout) from None
    except openai.OpenAIError as exc:
        raise _map_error(exc, spec, base_url, client.timeout) from None
    except _transport_errors() as exc:  # read errors surfacing outside the SDK's mapping
        raise BackendUnavailableError(
            f"{spec}: connection to {base_url} failed while reading the answer "
            f"({type(exc).__name__}); retry",
            backend=spec,
        ) from None


def call_json(spec: str, client: Any, create: Callable[..., Any], payload: dict[str, Any]) -> Any:
    """Send through the SDK's raw-response path and decode the JSON body ourselves, so a
    torn or non-JSON body is a typed, retriable error rather than an SDK crash."""
    text = call_sdk(spec, client, lambda: create(**payload).http_response.text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackendUnavailableError(
            f"{spec}: the server's answer is not valid JSON ({exc.msg} at char {exc.pos} of "
            f"{len(text)}: truncated or malformed); retry, or check the server",
            backend=spec,
        ) from None
