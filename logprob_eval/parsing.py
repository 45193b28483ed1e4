"""Parse provider responses into :class:`~logprob_eval.records.Position` records.

Shapes understood:

* OpenAI chat completions: ``choices[0].logprobs.content`` is a list of
  ``{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}``.
* Ollama ``/api/generate`` and ``/api/chat`` (>= 0.12.11): a top-level ``logprobs`` list of
  the same entries.
* Plain position dicts ``{"token", "logprob", "top_logprobs"?, "bytes"?}``.

Malformed input raises :class:`~logprob_eval.errors.ResponseFormatError` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ResponseFormatError
from .records import Alternative, Position

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

LOGPROB_TOLERANCE = 1e-4
"""Log-probs up to this much above 0 (float noise from servers) are clamped to 0."""


def _fail(source: str, field: str, why: str, fix: str) -> ResponseFormatError:
    where = f"{source} response" if source else "response"
    return ResponseFormatError(f"{where}: field {field!r} {why}; {fix}", field=field, source=source)


def _as_mapping(obj: Any) -> Any:
    """SDK objects (pydantic models) become plain dicts; everything else passes through."""
    dump = getattr(obj, "model_dump", None)
    if callable(dump) and not isinstance(obj, Mapping):
        return dump()
    return obj


def _logprob(value: Any, field: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(
            source,
            field,
            f"must be a number, got {type(value).__name__} {value!r:.40}",
            "check that the server returned log-probabilities",
        )
    lp = float(value)
    if math.isnan(lp):
        raise _fail(source, field, "is NaN", "a log-probability must be a number <= 0")
    if lp > LOGPROB_TOLERANCE:
        raise _fail(
            source,
            field,
            f"is {lp!r} > 0, not a log-probability",
            "pass natural-log probabilities (<= 0), not probabilities or scores",
        )
    return min(lp, 0.0)


def _token(value: Any, field: str, source: str) -> str:
    if not isinstance(value, str):
        raise _fail(
            source,
            field,
            f"must be a string, got {type(value).__name__} {value!r:.40}",
            "check the response shape",
        )
    return value


def _bytes(value: Any, field: str, source: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
    ):
        raise _fail(
            source, field, "must be a list of integers 0-255 or null", "check the response shape"
        )
    return tuple(value)


def _alternative(entry: Any, field: str, source: str) -> Alternative:
    entry = _as_mapping(entry)
    if not isinstance(entry, Mapping):
        raise _fail(
            source,
            field,
            f"must be an object, got {type(entry).__name__}",
            "each top_logprobs entry needs 'token' and 'logprob'",
        )
    if "token" not in entry or "logprob" not in entry:
        missing = "token" if "token" not in entry else "logprob"
        raise _fail(
            source,
            f"{field}.{missing}",
            "is missing",
            "each top_logprobs entry needs 'token' and 'logprob'",
        )
    return Alternative(
        _token(entry["token"], f"{field}.token", source),
        _logprob(entry["logprob"], f"{field}.logprob", source),
        _bytes(entry.get("bytes"), f"{field}.bytes", source),
    )


def parse_position(entry: Any, field: str = "positions[0]", source: str = "") -> Position:
    """One ``{token, logprob, bytes?, top_logprobs?}`` entry (or a Position) to a Position."""
    if isinstance(entry, Position):
        return entry
    entry = _as_mapping(entry)
    if not isinstance(entry, Mapping):
        raise _fail(
            source,
            field,
            f"must be an object, got {type(entry).__name__}",
            "each position needs 'token', 'logprob' and optionally 'top_logprobs'",
        )
    for key in ("token", "logprob"):
        if key not in entry:
            raise _fail(
                source,
                f"{field}.{key}",
                "is missing",
                "each position needs 'token', 'logprob' and optionally 'top_logprobs'",
            )
    top = entry.get("top_logprobs")
    if top is None:
        top = []
    if not isinstance(top, list | tuple):
        raise _fail(
            source,
            f"{field}.top_logprobs",
            f"must be a list, got {type(top).__name__}",
            "check the response shape",
        )
    return Position(
        token=_token(entry["token"], f"{field}.token", source),
        logprob=_logprob(entry["logprob"], f"{field}.logprob", source),
        top_logprobs=tuple(
            _alternative(alt, f"{field}.top_logprobs[{j}]", source) for j, alt in enumerate(top)
        ),
        bytes=_bytes(entry.get("bytes"), f"{field}.bytes", source),
    )


def parse_positions(entries: Any, field: str = "positions", source: str = "") -> list[Position]:
    """A sequence of position dicts (or Positions) to a list of Positions."""
    if isinstance(entries, str | bytes | Mapping) or not isinstance(entries, Sequence):
        raise _fail(
            source,
            field,
            f"must be a list of positions, got {type(entries).__name__}",
            "pass the provider's list of token log-prob entries",
        )
    return [parse_position(e, f"{field}[{i}]", source) for i, e in enumerate(entries)]


def _choices(response: Any, src: str, endpoint: str) -> list[Any]:
    """The non-empty ``choices`` list of an OpenAI-shaped response."""
    response = _as_mapping(response)
    if not isinstance(response, Mapping):
        raise _fail(
            src,
            "<root>",
            f"must be a JSON object, got {type(response).__name__}",
            f"pass the decoded JSON body of {endpoint}",
        )
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _fail(
            src,
            "choices",
            "is missing or empty",
            "pass a complete response (was the body truncated?)",
        )
    return choices


def parse_openai_chat(response: Any) -> list[Position]:
    """``choices[0].logprobs.content`` of an OpenAI chat completion (dict or SDK object)."""
    src = "OpenAI chat"
    choices = _choices(response, src, "/v1/chat/completions")
    choice = _as_mapping(choices[0])
    if not isinstance(choice, Mapping):
        raise _fail(src, "choices[0]", "must be an object", "check the response shape")
    logprobs = _as_mapping(choice.get("logprobs"))
    if logprobs is None:
        raise _fail(
            src,
            "choices[0].logprobs",
            "is missing or null",
            "request with logprobs=True and top_logprobs=N; reasoning models "
            "(o-series, gpt-5 family) return no logprobs at all",
        )
    if not isinstance(logprobs, Mapping):
        raise _fail(src, "choices[0].logprobs", "must be an object", "check the response shape")
    content = logprobs.get("content")
    if content is None:
        raise _fail(
            src,
            "choices[0].logprobs.content",
            "is missing or null",
            "request with logprobs=True and make sure the answer is not empty",
        )
    return parse_positions(content, "choices[0].logprobs.content", src)


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


def _completion_logprobs(choice: Any, field: str, src: str) -> Mapping[str, Any]:
    choice = _as_mapping(choice)
    if not isinstance(choice, Mapping):
        raise _fail(src, field, "must be an object", "check the response shape")
    lp = _as_mapping(choice.get("logprobs"))
    if lp is None:
        raise _fail(
            src,
            f"{field}.logprobs",
            "is missing or null",
            "request with logprobs=0..20 (and echo=true for teacher-forced scoring); "
            "llama.cpp's own server has no echo: use `logprob-eval serve` or vLLM",
        )
    if not isinstance(lp, Mapping):
        raise _fail(src, f"{field}.logprobs", "must be an object", "check the response shape")
    tokens = lp.get("tokens")
    if not isinstance(tokens, list):
        raise _fail(
            src,
            f"{field}.logprobs.tokens",
            "is missing or not a list",
            "check that the server returns legacy completions logprobs",
        )
    for key in ("token_logprobs", "text_offset"):
        value = lp.get(key)
        if not isinstance(value, list) or len(value) != len(tokens):
            raise _fail(
                src,
                f"{field}.logprobs.{key}",
                f"must be a list as long as tokens ({len(tokens)})",
                "the body looks truncated or malformed; retry or re-record",
            )
    return lp


def parse_completion_positions(response: Any, index: int = 0) -> list[Position]:
    """Generated positions of ``choices[index]`` of a legacy ``/v1/completions`` response.

    ``top_logprobs`` there is a list of ``{token: logprob}`` dicts (one per position).
    """
    src = "OpenAI completions"
    choices = _choices(response, src, "/v1/completions")
    if len(choices) <= index:
        raise _fail(src, "choices", f"has no choice {index}", "pass a complete response")
    field = f"choices[{index}]"
    lp = _completion_logprobs(choices[index], field, src)
    tops = lp.get("top_logprobs") or [None] * len(lp["tokens"])
    if not isinstance(tops, list) or len(tops) != len(lp["tokens"]):
        raise _fail(
            src,
            f"{field}.logprobs.top_logprobs",
            "must be a list as long as tokens",
            "the body looks truncated or malformed",
        )
    out: list[Position] = []
    for j, tok in enumerate(lp["tokens"]):
        top = tops[j] or {}
        if not isinstance(top, Mapping):
            raise _fail(
                src,
                f"{field}.logprobs.top_logprobs[{j}]",
                "must be an object",
                "check the response shape",
            )
        out.append(
            parse_position(
                {
                    "token": tok,
                    "logprob": lp["token_logprobs"][j],
                    "top_logprobs": [{"token": t, "logprob": v} for t, v in top.items()],
                },
                f"{field}.logprobs[{j}]",
                src,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class EchoedToken:
    """One echoed prompt token: its text, character offset and log-prob (None if unknown)."""

    token: str
    offset: int
    logprob: float | None


def parse_completion_echo(response: Any) -> dict[int, tuple[str, list[EchoedToken]]]:
    """Echoed text and tokens of every choice of a ``/v1/completions`` response, by index."""
    src = "OpenAI completions"
    choices = _choices(response, src, "/v1/completions")
    out: dict[int, tuple[str, list[EchoedToken]]] = {}
    for i, choice in enumerate(choices):
        field = f"choices[{i}]"
        lp = _completion_logprobs(choice, field, src)
        choice = _as_mapping(choice)
        index = choice.get("index", i)
        text = choice.get("text")
        if not isinstance(index, int) or isinstance(index, bool):
            raise _fail(src, f"{field}.index", "must be an integer", "check the response shape")
        if not isinstance(text, str):
            raise _fail(src, f"{field}.text", "must be a string", "check the response shape")
        toks: list[EchoedToken] = []
        for j, tok in enumerate(lp["tokens"]):
            off = lp["text_offset"][j]
            if not isinstance(off, int) or isinstance(off, bool) or off < 0:
                raise _fail(
                    src,
                    f"{field}.logprobs.text_offset[{j}]",
                    "must be a non-negative integer",
                    "check the response shape",
                )
            raw = lp["token_logprobs"][j]
            value = (
                None if raw is None else _logprob(raw, f"{field}.logprobs.token_logprobs[{j}]", src)
            )
            toks.append(EchoedToken(_token(tok, f"{field}.logprobs.tokens[{j}]", src), off, value))
        out[index] = (text, toks)
    return out
