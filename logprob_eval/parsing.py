"""Parse provider responses into :class:`~logprob_eval.records.Position` records.

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
(:mod:`logprob_eval.token_bytes`). Malformed input, and a response that carries no
log-probs (a refusal, a tool call, a server that ignored the request), raises
:class:`~logprob_eval.errors.ResponseFormatError` naming the field, why, and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ResponseFormatError
from .records import SENTINEL_LOGPROB, Alternative, Position
from .token_bytes import byte_level_decode, is_byte_level

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
    if not math.isfinite(lp):
        raise _fail(
            source,
            field,
            "is NaN" if math.isnan(lp) else f"is {lp!r}, not finite",
            "a log-probability must be a finite number <= 0",
        )
    if lp <= SENTINEL_LOGPROB:
        return -math.inf  # a provider's sentinel for "no mass" (-9999, float32 lowest)
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


def _alternative(entry: Any, parent: str, j: int, source: str) -> Alternative:
    """Entry ``j`` of ``parent``'s ``top_logprobs``."""
    if type(entry) is dict and entry.get("bytes") is None:
        # the common case, checked in one step: a text token and a plain log-prob
        token, value = entry.get("token"), entry.get("logprob")
        if type(token) is str and type(value) is float and SENTINEL_LOGPROB < value <= 0.0:
            return Alternative(token, value)
    field = f"{parent}.top_logprobs[{j}]"
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
        top_logprobs=tuple([_alternative(alt, field, j, source) for j, alt in enumerate(top)]),
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
    positions = [parse_position(e, f"{field}[{i}]", source) for i, e in enumerate(entries)]
    return _decode_byte_level(positions)


def _decode_byte_level(positions: list[Position]) -> list[Position]:
    """Raw byte-level BPE pieces decoded, when the response uses them (else unchanged)."""
    if not is_byte_level(p.token for p in positions) and not is_byte_level(
        a.token for p in positions for a in p.top_logprobs
    ):
        return positions

    def decoded(token: str, given: tuple[int, ...] | None) -> tuple[str, tuple[int, ...] | None]:
        raw = byte_level_decode(token)
        if raw is None:
            return token, given
        return raw.decode("utf-8", "replace"), tuple(raw)

    def alternative(alt: Alternative) -> Alternative:
        token, raw = decoded(alt.token, alt.bytes)
        return Alternative(token, alt.logprob, raw)

    out = []
    for p in positions:
        token, raw = decoded(p.token, p.bytes)
        out.append(Position(token, p.logprob, tuple(map(alternative, p.top_logprobs)), raw))
    return out


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
        for choice in chunk.get("choices") or []:
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


def _completion_logprobs(choice: Any, field: str, src: str) -> Mapping[str, Any]:
    choice = _as_mapping(choice)
    if not isinstance(choice, Mapping):
        raise _fail(src, field, "must be an object", "check the response shape")
    lp = _as_mapping(choice.get("logprobs"))
    if lp is None:
        raise _fail(
            src,
            f"{field}.logprobs",
            "is missing or null: the server ignored the log-prob request",
            "request with logprobs=0..20 (and echo=true for teacher-forced scoring); "
            "llama.cpp's own server has no echo: use `logprob-eval serve` or vLLM",
        )
    if not isinstance(lp, Mapping):
        raise _fail(src, f"{field}.logprobs", "must be an object", "check the response shape")
    return lp


def _legacy_lists(
    lp: Mapping[str, Any], field: str, src: str, with_offsets: bool
) -> tuple[list[Any], list[Any], list[Any]]:
    """(tokens, token_logprobs, top_logprobs) of a legacy ``logprobs`` object, checked to
    be lists of one length (``top_logprobs`` may be null: no alternatives listed)."""
    tokens = lp.get("tokens")
    if not isinstance(tokens, list):
        raise _fail(
            src,
            f"{field}.logprobs.tokens",
            "is missing or not a list",
            "check that the server returns legacy completions logprobs",
        )
    for key in ("token_logprobs", "text_offset") if with_offsets else ("token_logprobs",):
        value = lp.get(key)
        if not isinstance(value, list) or len(value) != len(tokens):
            raise _fail(
                src,
                f"{field}.logprobs.{key}",
                f"must be a list as long as tokens ({len(tokens)})",
                "the body looks truncated or malformed; retry or re-record",
            )
    tops = lp.get("top_logprobs") or [None] * len(tokens)
    if not isinstance(tops, list) or len(tops) != len(tokens):
        raise _fail(
            src,
            f"{field}.logprobs.top_logprobs",
            "must be a list as long as tokens",
            "the body looks truncated or malformed",
        )
    return tokens, lp["token_logprobs"], tops


def _legacy_positions(
    lp: Mapping[str, Any], field: str, src: str, *, with_offsets: bool
) -> list[Position]:
    """Positions of a legacy ``logprobs`` object (``top_logprobs``: ``{token: logprob}``)."""
    tokens, logprobs, tops = _legacy_lists(lp, field, src, with_offsets)
    entries = []
    for j, (tok, value, top) in enumerate(zip(tokens, logprobs, tops, strict=True)):
        if not isinstance(top or {}, Mapping):
            raise _fail(
                src,
                f"{field}.logprobs.top_logprobs[{j}]",
                "must be an object",
                "check the response shape",
            )
        if value is None:
            raise _fail(
                src,
                f"{field}.logprobs.token_logprobs[{j}]",
                "is null: an echoed prompt token (echo=true) has no log-prob without context",
                "read echoed prompts with parse_completion_echo, or request without echo to "
                "read generated positions",
            )
        alts = [{"token": t, "logprob": v} for t, v in (top or {}).items()]
        entries.append({"token": tok, "logprob": value, "top_logprobs": alts})
    return parse_positions(entries, f"{field}.logprobs", src)


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
    return _legacy_positions(lp, field, src, with_offsets=True)


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
        _legacy_lists(lp, field, src, with_offsets=True)
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
