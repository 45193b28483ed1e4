"""``gemini:MODEL``: Google Gemini ``generateContent`` with log-probs (generation method).

Request: ``generationConfig.responseLogprobs=true`` and ``logprobs=N`` (1-20). Answer:
``candidates[0].logprobsResult`` holds ``chosenCandidates`` (the sampled token of each
step, ``{token, tokenId, logProbability}``) and ``topCandidates[i].candidates`` (the top-N
alternatives of step ``i``). They become :class:`~logprob_eval.scoring.records.Position` records and
the matcher reads them like OpenAI's.

Spoken over REST with ``requests`` rather than the ``google-genai`` SDK (the README says
why): the body sent is the body a cassette records, and nothing retries behind our back.
The Gemini API takes the key in the ``x-goog-api-key`` header (never in the URL, so no
message or cassette can quote it); Vertex AI takes a bearer token from the caller or from
Google's application-default credentials (``google-auth``, imported only then).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from ..errors import (
    BackendError,
    ConfigError,
    ContentBlockedError,
    LogprobsUnsupportedError,
    MissingDependencyError,
    ResponseFormatError,
)
from ..redact import redact
from ..scoring.parsing import parse_position
from ..scoring.records import LabelScore, Method, Position
from ._http import Fixes, post_json, retry_after_seconds, status_error
from .base import Backend

__all__ = ["GEMINI_URL", "NO_LOGPROBS_MODELS", "GeminiBackend", "parse_gemini"]

GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta"
VERTEX_URL = (
    "https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}"
    "/publishers/google"
)
NO_LOGPROBS_MODELS = re.compile(r"^(gemini-2\.5-pro|gemini-[0-9.]+-[a-z-]*thinking)", re.I)
"""Models the API answers "Logprobs is not enabled for models/..." (refused before sending).
Any other model the API refuses is reported from its answer, naming the model."""
BLOCKED_REASONS = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"}
)
_PICK = "pick a model that returns log-probs, e.g. gemini:gemini-2.0-flash"
_FIXES = Fixes(
    "check the network or base_url",
    auth="set GEMINI_API_KEY (or GOOGLE_API_KEY) to a valid key; for Vertex AI check the "
    "project, location and credentials",
    not_found="check the model name (GET /v1beta/models lists them) and the API version",
    server="retry later; Google's status page lists outages",
    server_name="Gemini API server",
)


def _fail(field: str, why: str, fix: str = "check the response shape") -> ResponseFormatError:
    return ResponseFormatError(
        f"Gemini response: field {field!r} {why}; {fix}", field=field, source="Gemini"
    )


def _entry(entry: Any, field: str) -> dict[str, Any]:
    """One ``{token, logProbability}`` as a neutral position dict. ``logProbability`` is
    absent when it is 0 (proto3 JSON omits zero values): a certain token."""
    if not isinstance(entry, dict):
        raise _fail(field, f"must be an object, got {type(entry).__name__}")
    if not isinstance(entry.get("token"), str):
        raise _fail(f"{field}.token", "must be a string")
    value = entry.get("logProbability", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{field}.logProbability", f"must be a number, got {value!r:.40}")
    return {"token": entry["token"], "logprob": entry.get("logProbability", 0.0)}


def _blocked(spec: str, what: str, reason: str) -> ContentBlockedError:
    return ContentBlockedError(
        f"{spec}: {what} blocked by the provider (reason {reason}); this text has no "
        "log-probs to read: rephrase the template or leave the text out",
        backend=spec,
    )


def parse_gemini(body: Any, *, spec: str = "gemini") -> list[Position]:
    """Positions of ``candidates[0].logprobsResult`` of a ``generateContent`` answer.

    An empty ``logprobsResult`` (an empty answer) gives no positions: every label is then
    ``missing``. A blocked prompt or answer raises :class:`ContentBlockedError`; an answer
    without ``logprobsResult`` raises :class:`LogprobsUnsupportedError` naming the model.
    """
    if not isinstance(body, dict):
        raise _fail("(body)", f"must be a JSON object, got {type(body).__name__}")
    candidates = body.get("candidates")
    if not candidates:
        reason = (body.get("promptFeedback") or {}).get("blockReason")
        if reason:
            raise _blocked(spec, "the prompt was", str(reason))
        raise _fail("candidates", "is missing or empty", "the API returned no answer")
    cand = candidates[0]
    if not isinstance(cand, dict):
        raise _fail("candidates[0]", "must be an object")
    finish = str(cand.get("finishReason", ""))
    result = cand.get("logprobsResult")
    if result is None:
        if finish in BLOCKED_REASONS:
            raise _blocked(spec, "the answer was", finish)
        raise LogprobsUnsupportedError(
            f"logprobs unsupported for {spec}: the answer has no logprobsResult although "
            f"responseLogprobs=true was sent; {_PICK}",
            backend=spec,
        )
    where = "candidates[0].logprobsResult"
    if not isinstance(result, dict):
        raise _fail(where, "must be an object")
    chosen = result.get("chosenCandidates") or []
    tops = result.get("topCandidates") or []
    if not isinstance(chosen, list) or not isinstance(tops, list):
        raise _fail(where, "must hold lists 'chosenCandidates' and 'topCandidates'")
    if not chosen and finish in BLOCKED_REASONS:
        raise _blocked(spec, "the answer was", finish)
    if tops and len(tops) != len(chosen):
        raise _fail(
            f"{where}.topCandidates",
            f"has {len(tops)} steps for {len(chosen)} chosen tokens",
            "the two lists must be parallel",
        )
    positions = []
    for i, sampled in enumerate(chosen):
        entry = _entry(sampled, f"{where}.chosenCandidates[{i}]")
        if tops:
            step = tops[i]
            alts = step.get("candidates", []) if isinstance(step, dict) else None
            if not isinstance(alts, list):
                raise _fail(f"{where}.topCandidates[{i}].candidates", "must be a list")
            entry["top_logprobs"] = [
                _entry(a, f"{where}.topCandidates[{i}].candidates[{j}]") for j, a in enumerate(alts)
            ]
        positions.append(parse_position(entry, f"{where}.chosenCandidates[{i}]", "Gemini"))
    return positions


class GeminiBackend(Backend):
    """``gemini:MODEL``; key from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``, or Vertex AI
    (``vertex=True`` or ``GOOGLE_GENAI_USE_VERTEXAI=true``; ``GOOGLE_CLOUD_PROJECT``,
    ``GOOGLE_CLOUD_LOCATION``)."""

    provider = "gemini"
    methods: ClassVar[tuple[Method, ...]] = ("generation",)

    def __init__(
        self,
        model: str,
        *,
        method: Method = "generation",
        api_key: str | None = None,
        base_url: str | None = None,
        top_logprobs: int = 20,
        max_tokens: int = 16,
        thinking_budget: int | None = None,
        vertex: bool | None = None,
        project: str | None = None,
        location: str | None = None,
        access_token: str | None = None,
        timeout: float = 60.0,
        session: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, method=method, timeout=timeout, **kwargs)
        if isinstance(top_logprobs, bool) or not 1 <= top_logprobs <= 20:
            raise ConfigError(
                f"{self.spec}: top_logprobs={top_logprobs!r} must be between 1 and 20 (the "
                "Gemini API's range for generationConfig.logprobs)"
            )
        if NO_LOGPROBS_MODELS.match(model):
            raise LogprobsUnsupportedError(
                f"logprobs unsupported for {self.spec}: the Gemini API answers 'Logprobs is "
                f"not enabled' for this model; {_PICK}",
                backend=self.spec,
            )
        import requests

        self.top_logprobs = top_logprobs
        self.max_tokens = max_tokens
        self.thinking_budget = thinking_budget
        if vertex is None:
            vertex = os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("1", "true")
        self.vertex = vertex
        self._headers = self._auth(vertex, api_key, access_token)
        self.base_url = (base_url or self._default_url(vertex, project, location)).rstrip("/")
        self._session = session or requests.Session()

    def _default_url(self, vertex: bool, project: str | None, location: str | None) -> str:
        if not vertex:
            return GEMINI_URL
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise ConfigError(
                f"{self.spec}: Vertex AI needs a project; set GOOGLE_CLOUD_PROJECT or pass project="
            )
        location = location or os.environ.get("GOOGLE_CLOUD_LOCATION") or "us-central1"
        return VERTEX_URL.format(project=project, location=location)

    def _auth(self, vertex: bool, api_key: str | None, token: str | None) -> dict[str, str]:
        if vertex:
            return {"Authorization": f"Bearer {token or self._adc_token()}"}
        key = api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        if not key:
            raise BackendError(
                f"{self.spec}: no API key; set GEMINI_API_KEY (or GOOGLE_API_KEY), or use "
                "Vertex AI (GOOGLE_GENAI_USE_VERTEXAI=true); replaying cassettes needs no key",
                backend=self.spec,
            )
        return {"x-goog-api-key": key}

    def _adc_token(self) -> str:
        """An access token from Google's application-default credentials."""
        try:
            import google.auth
            import google.auth.transport.requests
        except ImportError:
            raise MissingDependencyError(
                f"{self.spec}: Vertex AI without access_token= needs google-auth: "
                "pip install 'google-auth>=2'",
                backend=self.spec,
            ) from None
        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        creds.refresh(google.auth.transport.requests.Request())
        return str(creds.token)

    @property
    def url(self) -> str:
        return f"{self.base_url}/models/{self.model}:generateContent"

    def payload(self, prompt: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "temperature": 0,
            "maxOutputTokens": self.max_tokens,
            "responseLogprobs": True,
            "logprobs": self.top_logprobs,
        }
        if self.thinking_budget is not None:
            config["thinkingConfig"] = {"thinkingBudget": self.thinking_budget}
        return {
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": config,
        }

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        payload = self.payload(prompt)
        body = self._request(
            f"models/{self.model}:generateContent", payload, lambda: self._post(payload)
        )
        return self._match_generated(lambda b: parse_gemini(b, spec=self.spec), body, labels)

    def _post(self, payload: dict[str, Any]) -> Any:
        return post_json(
            self.spec,
            self._session,
            self.url,
            payload,
            timeout=self.timeout,
            fixes=_FIXES,
            on_status=self._status_error,
            headers=self._headers,
        )

    def _status_error(self, r: Any) -> BackendError:
        try:
            err = r.json().get("error") or {}
            message, details = str(err.get("message", "")), err.get("details") or []
        except Exception:
            message, details = r.text[:300], []
        message = redact(message)
        reasons = {str(d.get("reason", "")) for d in details if isinstance(d, dict)}
        status = r.status_code
        if status == 400 and ("API_KEY_INVALID" in reasons or "API key not valid" in message):
            return BackendError(
                f"{self.spec}: HTTP 400: authentication failed ({message}); {_FIXES.auth}",
                backend=self.spec,
                status=status,
            )
        if status == 400 and "logprob" in message.lower():
            return LogprobsUnsupportedError(
                f"logprobs unsupported for {self.spec}: {message}; {_PICK}",
                backend=self.spec,
                status=status,
            )
        after = retry_after_seconds(r.headers.get("retry-after"))
        if after is None:
            after = _retry_delay(details)
        return status_error(self.spec, status, message, fixes=_FIXES, retry_after=after)

    def close(self) -> None:
        self._session.close()


def _retry_delay(details: Sequence[Any]) -> float | None:
    """``google.rpc.RetryInfo.retryDelay`` ("17s", "0.5s") from an error's details."""
    for d in details:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            m = re.fullmatch(r"\s*([0-9.]+)s\s*", str(d.get("retryDelay", "")))
            if m:
                value = float(m.group(1))
                return value if math.isfinite(value) else None
    return None
