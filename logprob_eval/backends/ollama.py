"""Ollama >= 0.12.11 (generation method): ``/api/generate`` or ``/api/chat`` with
``logprobs`` and ``top_logprobs``, over ``requests``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from ..errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    RateLimitedError,
    ResponseFormatError,
    ServerUnreachableError,
)
from ..matcher import match_labels
from ..parsing import parse_ollama
from ..records import LabelScore, Method
from ..redact import redact
from ._openai_client import is_network_blocked
from .base import Backend

__all__ = ["DEFAULT_HOST", "MIN_VERSION", "OllamaBackend"]

DEFAULT_HOST = "http://localhost:11434"
MIN_VERSION = (0, 12, 11)
_NEED = "Ollama >= 0.12.11 (the first version that returns logprobs)"


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split("-")[0].split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)


class OllamaBackend(Backend):
    """``ollama:MODEL`` (host from ``OLLAMA_HOST`` or ``ollama:MODEL@http://host:port``)."""

    provider = "ollama"
    methods: ClassVar[tuple[Method, ...]] = ("generation",)

    def __init__(
        self,
        model: str,
        *,
        method: Method = "generation",
        host: str | None = None,
        endpoint: Literal["generate", "chat"] = "generate",
        top_logprobs: int = 20,
        max_tokens: int = 16,
        raw: bool = False,
        timeout: float = 60.0,
        session: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, method=method, timeout=timeout, **kwargs)
        if endpoint not in ("generate", "chat"):
            raise ConfigError(f"endpoint={endpoint!r} must be 'generate' or 'chat'")
        if not 0 <= top_logprobs <= 20:
            raise ConfigError(f"top_logprobs={top_logprobs!r} must be between 0 and 20")
        import requests

        self.host = (host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST).rstrip("/")
        if "://" not in self.host:
            self.host = "http://" + self.host
        self.endpoint = endpoint
        self.top_logprobs = top_logprobs
        self.max_tokens = max_tokens
        self.raw = raw
        self._session = session or requests.Session()

    def payload(self, prompt: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "stream": False,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
            "options": {"temperature": 0, "num_predict": self.max_tokens},
        }
        if self.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
            if self.raw:
                body["raw"] = True
        return body

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        payload = self.payload(prompt)
        body = self._request(f"api/{self.endpoint}", payload, lambda: self._post(payload))
        try:
            positions = parse_ollama(body)
        except ResponseFormatError as exc:
            if exc.field == "logprobs":
                raise self._format_error(
                    ResponseFormatError(
                        f"the response has no 'logprobs'{self._version_note()}; {_NEED} "
                        "is required: upgrade Ollama",
                        field="logprobs",
                        source="Ollama",
                    )
                ) from None
            raise self._format_error(exc) from None
        return match_labels(labels, positions, **self.match_options)

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 48,
        temperature: float = 0.8,
        seed: int | None = None,
    ) -> str:
        payload = {
            "model": self.model,
            "prompt": prompt,
            "stream": False,
            "options": {"temperature": temperature, "num_predict": max_tokens, "seed": seed},
        }
        saved, self.endpoint = self.endpoint, "generate"
        try:
            body = self._request("api/generate", payload, lambda: self._post(payload))
        finally:
            self.endpoint = saved
        if not isinstance(body, dict) or not isinstance(body.get("response"), str):
            raise self._format_error(
                ResponseFormatError(
                    "field 'response' is missing", field="response", source="Ollama"
                )
            )
        return str(body["response"])

    def _version_note(self) -> str:
        try:
            r = self._session.get(f"{self.host}/api/version", timeout=self.timeout)
            version = str(r.json().get("version", ""))
        except Exception:
            return ""
        if version and _version_tuple(version) < MIN_VERSION:
            return f" (server is version {version})"
        return f" (server reports version {version})" if version else ""

    def _post(self, payload: dict[str, Any]) -> Any:
        import requests

        url = f"{self.host}/api/{self.endpoint}"
        try:
            r = self._session.post(url, json=payload, timeout=self.timeout)
        except requests.Timeout:
            raise BackendUnavailableError(
                f"{self.spec}: no answer from {url} within {self.timeout:g}s (timeout); raise "
                "timeout= or lower concurrency",
                backend=self.spec,
            ) from None
        except requests.ConnectionError as exc:
            if _is_connect_failure(exc):
                raise ServerUnreachableError(
                    f"{self.spec}: no Ollama server at {self.host} (connection refused or "
                    "unknown host); start Ollama (`ollama serve`), or set OLLAMA_HOST to its "
                    "URL (e.g. OLLAMA_HOST=http://127.0.0.1:11434)",
                    backend=self.spec,
                ) from None
            raise BackendUnavailableError(
                f"{self.spec}: cannot reach {url} ({redact(str(exc))[:160]}); start Ollama "
                "(`ollama serve`) or set OLLAMA_HOST",
                backend=self.spec,
            ) from None
        except RuntimeError as exc:
            if not is_network_blocked(exc):
                raise
            raise ServerUnreachableError(
                f"{self.spec}: cannot reach {url}: the network is blocked (pytest "
                "--block-network); drop --block-network to record",
                backend=self.spec,
            ) from None
        except requests.RequestException as exc:
            raise BackendUnavailableError(
                f"{self.spec}: request to {url} failed ({type(exc).__name__}); retry",
                backend=self.spec,
            ) from None
        if r.status_code != 200:
            self._raise_status(r)
        try:
            return json.loads(r.text)
        except json.JSONDecodeError as exc:
            raise BackendUnavailableError(
                f"{self.spec}: the answer is not valid JSON ({exc.msg} at char {exc.pos} of "
                f"{len(r.text)}: truncated or malformed, or a streamed body); retry",
                backend=self.spec,
            ) from None

    def _raise_status(self, r: Any) -> None:
        try:
            message = str(r.json().get("error", ""))
        except Exception:
            message = r.text[:300]
        message = redact(message)
        head = f"{self.spec}: HTTP {r.status_code}"
        if r.status_code == 404:
            raise BackendError(
                f"{head}: not found ({message}); pull the model (`ollama pull {self.model}`) "
                "or check the host",
                backend=self.spec,
                status=404,
            )
        if r.status_code == 429:
            try:
                after: float | None = float(r.headers.get("retry-after", ""))
            except ValueError:
                after = None
            raise RateLimitedError(
                f"{head}: rate limited ({message}); retry later",
                backend=self.spec,
                status=429,
                retry_after=after,
            )
        if r.status_code >= 500:
            raise BackendUnavailableError(
                f"{head}: server error ({message}); retry or check `ollama serve`'s log",
                backend=self.spec,
                status=r.status_code,
            )
        if "logprobs" in message.lower() or "top_logprobs" in message.lower():
            raise BackendError(
                f"{head}: {message}{self._version_note()}; {_NEED} is required: upgrade Ollama",
                backend=self.spec,
                status=r.status_code,
            )
        raise BackendError(
            f"{head}: request rejected ({message}); fix the request",
            backend=self.spec,
            status=r.status_code,
        )

    def close(self) -> None:
        self._session.close()


def _is_connect_failure(exc: Exception) -> bool:
    """A refused connection or an unknown host (urllib3's ``NewConnectionError``, of which
    ``NameResolutionError`` is a kind), as opposed to a dropped or timed-out one."""
    from urllib3.exceptions import NewConnectionError

    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)
