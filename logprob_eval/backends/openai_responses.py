"""OpenAI Responses API (generation method): ``POST /v1/responses`` with ``top_logprobs``
and ``include=["message.output_text.logprobs"]``.

The answer's ``output`` is a list of items; the first ``message`` item's ``output_text``
parts carry ``logprobs``: the same ``{token, logprob, bytes, top_logprobs}`` entries as chat
completions, read by the same matcher. Chosen by ``openai-responses:MODEL`` or by
``openai:MODEL`` with ``api="responses"``. Reasoning models are refused before any request,
as on chat completions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ContentBlockedError,
    ResponseFormatError,
)
from ..redact import redact
from ..scoring.parsing import parse_positions
from ..scoring.records import LabelScore, Method, Position
from ._openai_client import call_json
from .openai_chat import OpenAIChatBackend

__all__ = ["INCLUDE_LOGPROBS", "MIN_OUTPUT_TOKENS", "OpenAIResponsesBackend", "parse_responses"]

INCLUDE_LOGPROBS = "message.output_text.logprobs"
MIN_OUTPUT_TOKENS = 16
"""The Responses API rejects ``max_output_tokens`` below 16."""
_SRC = "OpenAI responses"


def _fail(field: str, why: str, fix: str = "check the response shape") -> ResponseFormatError:
    return ResponseFormatError(f"{_SRC} response: field {field!r} {why}; {fix}", field=field)


def _failed(body: dict[str, Any], spec: str) -> BackendError:
    err = body.get("error")
    if not isinstance(err, dict):
        err = {}
    code, message = str(err.get("code", "")), redact(str(err.get("message", "")))
    if code == "server_error":
        return BackendUnavailableError(
            f"{spec}: the response failed ({code}: {message}); retry", backend=spec
        )
    return BackendError(
        f"{spec}: the response failed ({code}: {message}); fix the request", backend=spec
    )


def parse_responses(body: Any, *, spec: str = "openai-responses") -> list[Position]:
    """Positions of the ``output_text`` parts of the first ``message`` item, in order.

    A refusal raises :class:`ContentBlockedError`; a failed response a
    :class:`BackendError`; ``output_text`` without ``logprobs`` a format error naming the
    ``include`` value that asks for them. An empty answer gives no positions.
    """
    if not isinstance(body, dict):
        raise _fail("(body)", f"must be a JSON object, got {type(body).__name__}")
    if body.get("status") == "failed":
        raise _failed(body, spec)
    output = body.get("output")
    if not isinstance(output, list):
        raise _fail("output", "is missing or not a list", "pass a complete response")
    items = [(i, it) for i, it in enumerate(output) if isinstance(it, dict)]
    messages = [(i, it) for i, it in items if it.get("type") == "message"]
    if not messages:
        reason = (body.get("incomplete_details") or {}).get("reason", "")
        why = f" (incomplete: {reason})" if reason else ""
        raise _fail(
            "output",
            f"holds no message item{why}",
            "raise max_tokens if the output budget ran out before the answer",
        )
    i, message = messages[0]
    parts = message.get("content")
    if not isinstance(parts, list):
        raise _fail(f"output[{i}].content", "must be a list")
    texts = [(j, p) for j, p in enumerate(parts) if isinstance(p, dict)]
    refusals = [str(p.get("refusal", "")) for _, p in texts if p.get("type") == "refusal"]
    texts = [(j, p) for j, p in texts if p.get("type") == "output_text"]
    if refusals and not texts:
        raise ContentBlockedError(
            f"{spec}: the model refused to answer ({redact(refusals[0])[:120]!r}); this text "
            "has no log-probs to read: rephrase the template or leave the text out",
            backend=spec,
        )
    positions: list[Position] = []
    for j, part in texts:
        field = f"output[{i}].content[{j}].logprobs"
        logprobs = part.get("logprobs")
        if logprobs is None or (not logprobs and part.get("text")):
            raise _fail(
                field,
                "is missing or empty for a non-empty answer",
                f"request with include=[{INCLUDE_LOGPROBS!r}] and top_logprobs=N",
            )
        positions += parse_positions(logprobs, field, _SRC)
    return positions


class OpenAIResponsesBackend(OpenAIChatBackend):
    """``openai-responses:MODEL``: one Responses request per prompt."""

    provider = "openai-responses"
    methods: ClassVar[tuple[Method, ...]] = ("generation",)
    endpoint = "responses"

    def __init__(self, model: str, *, max_tokens: int = MIN_OUTPUT_TOKENS, **kwargs: Any) -> None:
        if max_tokens < MIN_OUTPUT_TOKENS:
            raise ConfigError(
                f"{self.provider}:{model}: max_tokens={max_tokens!r} is below the Responses "
                f"API's minimum max_output_tokens of {MIN_OUTPUT_TOKENS}; set max_tokens >= "
                f"{MIN_OUTPUT_TOKENS} (the matcher reads only the answer's first tokens anyway)"
            )
        super().__init__(model, max_tokens=max_tokens, **kwargs)

    def payload(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "input": [{"role": "user", "content": prompt}],
            "include": [INCLUDE_LOGPROBS],
            "top_logprobs": self.top_logprobs,
            "temperature": 0,
            "max_output_tokens": self.max_tokens,
        }

    def _send(self, payload: dict[str, Any]) -> Any:
        create = self._client.responses.with_raw_response.create
        return self._request(
            self.endpoint, payload, lambda: call_json(self.spec, self._client, create, payload)
        )

    def batch_request(self, prompt: str) -> tuple[str, dict[str, Any]]:
        return self.endpoint, self.payload(prompt)

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        body = self._send(self.payload(prompt))
        return self._match_generated(lambda b: parse_responses(b, spec=self.spec), body, labels)

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 48,
        temperature: float = 0.8,
        seed: int | None = None,
    ) -> str:
        body = self._send(
            {
                "model": self.model,
                "input": [{"role": "user", "content": prompt}],
                "max_output_tokens": max(MIN_OUTPUT_TOKENS, max_tokens),
                "temperature": temperature,
            }
        )
        try:
            return "".join(
                str(part["text"])
                for item in body["output"]
                if item.get("type") == "message"
                for part in item["content"]
                if part.get("type") == "output_text"
            )
        except (KeyError, TypeError, AttributeError):
            raise self._format_error(_fail("output", "holds no readable message")) from None
