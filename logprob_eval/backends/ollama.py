"""Ollama >= 0.12.11 (generation method): ``/api/generate`` or ``/api/chat`` with
``logprobs`` and ``top_logprobs``, over ``requests``.

``forced`` method (:mod:`logprob_eval.scoring.forced`, text mode): ``/api/generate`` with
``raw=true`` (no chat template: the prompt is continued as written) and ``num_predict=1``,
one request per distinct label prefix; Ollama lists at most 20 alternatives, so a label
token below them is an interval whose note says so."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from ..errors import BackendError, ConfigError, ResponseFormatError
from ..redact import redact
from ..scoring.matcher import match_labels
from ..scoring.parsing import parse_ollama
from ..scoring.records import LabelScore, Method
from ._http import Fixes, post_json, retry_after_seconds, status_error
from .base import Backend

__all__ = ["DEFAULT_HOST", "MIN_VERSION", "OllamaBackend"]

DEFAULT_HOST = "http://localhost:11434"
MIN_VERSION = (0, 12, 11)
_NEED = "Ollama >= 0.12.11 (the first version that returns logprobs)"
_FIXES = Fixes(
    "start Ollama (`ollama serve`), or set OLLAMA_HOST to its URL (e.g. "
    "OLLAMA_HOST=http://127.0.0.1:11434)",
    server="retry or check `ollama serve`'s log",
    rejected="fix the request",
    server_name="Ollama server",
)


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
    methods: ClassVar[tuple[Method, ...]] = ("generation", "forced")

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
        if method == "forced" and (endpoint == "chat" or top_logprobs < 1):
            raise ConfigError(
                f"ollama:{model}: the forced method continues a raw prompt on /api/generate "
                f"with top_logprobs >= 1; endpoint={endpoint!r}, top_logprobs={top_logprobs!r} "
                "cannot (leave endpoint='generate')"
            )
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

    def forced_payload(self, prompt: str, k: int) -> dict[str, Any]:
        """One token after ``prompt`` as written (``raw``), with the top ``k`` log-probs."""
        return {
            "model": self.model,
            "prompt": prompt,
            "raw": True,
            "stream": False,
            "logprobs": True,
            "top_logprobs": k,
            "options": {"temperature": 0, "num_predict": 1},
        }

    def _score_forced(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        from ..scoring.forced import forced_scores_text, read_positions
        from .openai_compatible import label_continuation

        labels = list(labels)
        conts = [label_continuation(prompt, lab) for lab in labels]

        def complete(p: Any, k: int) -> Any:
            payload = self.forced_payload(str(p), k)
            return self._request("api/generate", payload, lambda: self._post(payload))

        try:
            scores = forced_scores_text(
                labels,
                prompt,
                conts,
                complete=complete,
                top_logprobs=self.top_logprobs,
                max_top_logprobs=20,
                cap_why="Ollama lists at most 20",
                read=lambda body, k: read_positions(parse_ollama(body), k),
            )
        except ResponseFormatError as exc:
            raise self._format_error(exc) from None
        return dict(zip(labels, scores, strict=True))

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        if self.method == "forced":
            return self._score_forced(prompt, labels)
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
        return post_json(
            self.spec,
            self._session,
            f"{self.host}/api/{self.endpoint}",
            payload,
            timeout=self.timeout,
            fixes=_FIXES,
            on_status=self._status_error,
        )

    def _status_error(self, r: Any) -> BackendError:
        try:
            message = str(r.json().get("error", ""))
        except Exception:
            message = r.text[:300]
        message = redact(message)
        if r.status_code == 404:
            fixes = Fixes(
                _FIXES.unreachable,
                not_found=f"pull the model (`ollama pull {self.model}`) or check the host",
            )
            return status_error(self.spec, 404, message, fixes=fixes)
        if r.status_code < 500 and r.status_code != 429 and "logprobs" in message.lower():
            return BackendError(
                f"{self.spec}: HTTP {r.status_code}: {message}{self._version_note()}; {_NEED} "
                "is required: upgrade Ollama",
                backend=self.spec,
                status=r.status_code,
            )
        return status_error(
            self.spec,
            r.status_code,
            message,
            fixes=_FIXES,
            retry_after=retry_after_seconds(r.headers.get("retry-after")),
        )

    def close(self) -> None:
        self._session.close()
