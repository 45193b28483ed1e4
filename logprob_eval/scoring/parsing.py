"""Parse provider responses into :class:`~logprob_eval.scoring.records.Position` records.

Shapes understood:

* OpenAI chat completions: ``choices[0].logprobs.content`` is a list of
  ``{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}``.
* Ollama ``/api/generate`` and ``/api/chat`` (>= 0.12.11): a top-level ``logprobs`` list of
  the same entries.
* Plain position dicts ``{"token", "logprob", "top_logprobs"?, "bytes"?}``.
* Legacy ``/v1/completions`` ``logprobs`` (``tokens``, ``token_logprobs``,
  ``top_logprobs`` as ``{token: logprob}`` dicts, ``text_offset``), also when a server
  (Together) answers a chat request in that shape.
* A streamed chat answer: a list of ``chat.completion.chunk`` bodies is one response.

Read the same everywhere: log-probs at or below -9999 are provider sentinels for "no
mass" (-inf); raw byte-level BPE pieces (``ĠHello``) are decoded when a response uses them
(:mod:`logprob_eval.scoring.token_bytes`). Malformed input, and a response that carries no
log-probs (a refusal, a tool call, a server that ignored the request), raises
:class:`~logprob_eval.errors.ResponseFormatError` naming the field, why, and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ResponseFormatError
from ._legacy_completions import (
    EchoedToken,
    _legacy_positions,
    parse_completion_echo,
    parse_completion_positions,
)
from ._response_fields import (
    LOGPROB_TOLERANCE,
    _as_mapping,
    _choices,
    _fail,
    parse_position,
    parse_positions,
)
from .records import Position

__all__ = [
    "LOGPROB_TOLERANCE",
    "EchoedToken",
    "parse_completion_echo",
    "parse_completion_positions",
    "parse_ollama",
    "parse_openai_chat",
    "parse_position",
    "parse_positions",
]


def parse_openai_chat(response: Any) -> list[Position]:
    """``choices[0].logprobs.content`` of an OpenAI chat completion (dict or SDK object).

    A list of streamed ``chat.completion.chunk`` bodies is read as one response (their
    ``logprobs.content`` lists joined); a chat reply in the legacy completions shape
    (``logprobs.tokens``/``token_logprobs``, as Together sends) is read as such.
    """
    src = "OpenAI chat"
    if isinstance(response, list | tuple):
        return _parse_chat_chunks(response, src)
    choices = _choices(response, src, "/v1/chat/completions")
    choice = _as_mapping(choices[0])
    if not isinstance(choice, Mapping):
        raise _fail(src, "choices[0]", "must be an object", "check the response shape")
    logprobs = _as_mapping(choice.get("logprobs"))
    if logprobs is None:
        raise _no_chat_logprobs(choice, src)
    if not isinstance(logprobs, Mapping):
        raise _fail(src, "choices[0].logprobs", "must be an object", "check the response shape")
    content = logprobs.get("content")
    if content is None and isinstance(logprobs.get("tokens"), list):
        return _legacy_positions(logprobs, "choices[0]", src, with_offsets=False)
    if content is None and logprobs.get("refusal"):
        message = _as_mapping(choice.get("message") or choice.get("delta") or {})
        refusal = message.get("refusal") if isinstance(message, Mapping) else None
        raise _fail(
            src,
            "choices[0].logprobs.content",
            f"is null: the model refused ({str(refusal)[:80]!r}); its log-probs are in "
            "logprobs.refusal and score no label",
            "rephrase the prompt, or record the text as a failed row",
        )
    if content is None:
        raise _fail(
            src,
            "choices[0].logprobs.content",
            "is missing or null",
            "request with logprobs=True and make sure the answer is not empty",
        )
    return parse_positions(content, "choices[0].logprobs.content", src)


def _no_chat_logprobs(choice: Mapping[str, Any], src: str) -> ResponseFormatError:
    """The error for a chat choice whose ``logprobs`` is null, with the likely cause."""
    message = _as_mapping(choice.get("message") or {})
    if isinstance(message, Mapping) and message.get("tool_calls"):
        return _fail(
            src,
            "choices[0].logprobs",
            "is null: the model answered with a tool call, which carries no log-probs",
            "score without tools (leave out `tools`, or send tool_choice='none')",
        )
    return _fail(
        src,
        "choices[0].logprobs",
        "is missing or null: the server ignored the log-prob request",
        "request with logprobs=True and top_logprobs=N from a server that supports them; "
        "reasoning models (o-series, gpt-5 family) return no logprobs at all",
    )


def _parse_chat_chunks(chunks: Sequence[Any], src: str) -> list[Position]:
    """Streamed ``chat.completion.chunk`` bodies: choice 0's log-prob entries joined."""
    entries: list[Any] = []
    for i, chunk in enumerate(chunks):
        chunk = _as_mapping(chunk)
        if not isinstance(chunk, Mapping):
            raise _fail(
                src,
                f"[{i}]",
                f"must be a chat.completion.chunk object, got {type(chunk).__name__}",
                "pass the decoded chunks of one streamed answer, in order",
            )
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise _fail(
                src,
                f"[{i}].choices",
                f"must be a list, got {type(choices).__name__}",
                "pass the decoded chunks of one streamed answer, in order",
            )
        for choice in choices:
            choice = _as_mapping(choice)
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            logprobs = _as_mapping(choice.get("logprobs"))
            if isinstance(logprobs, Mapping) and isinstance(logprobs.get("content"), list):
                entries.extend(logprobs["content"])
    if not entries:
        raise _fail(
            src,
            "choices[0].logprobs.content",
            f"is empty in all {len(chunks)} chunks",
            "stream with logprobs=True (and top_logprobs=N); a refusal or a tool call "
            "carries no content log-probs",
        )
    return parse_positions(entries, "chunks[].choices[0].logprobs.content", src)


def parse_ollama(response: Any) -> list[Position]:
    """The top-level ``logprobs`` list of an Ollama ``/api/generate`` or ``/api/chat`` body."""
    src = "Ollama"
    if not isinstance(response, Mapping):
        raise _fail(
            src,
            "<root>",
            f"must be a JSON object, got {type(response).__name__}",
            "pass the decoded JSON body of /api/generate or /api/chat (stream=false)",
        )
    if "error" in response and "logprobs" not in response:
        raise _fail(
            src,
            "error",
            f"is set: {str(response['error'])[:200]!r}",
            "fix the request the server rejected",
        )
    logprobs = response.get("logprobs")
    if logprobs is None:
        raise _fail(
            src,
            "logprobs",
            "is missing",
            "Ollama returns log-probs only from version 0.12.11 on and only when the "
            'request sets "logprobs": true (and "top_logprobs": 1-20); upgrade Ollama',
        )
    return parse_positions(logprobs, "logprobs", src)
