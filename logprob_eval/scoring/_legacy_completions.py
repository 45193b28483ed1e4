"""Legacy ``/v1/completions`` log-probs: generated positions and echoed prompts.

The shape: ``logprobs`` holds parallel lists ``tokens``, ``token_logprobs``,
``top_logprobs`` (``{token: logprob}`` dicts, or null) and ``text_offset``. With
``echo=true`` the prompt's tokens come first and the first has no log-prob (null: no
context). Together also answers chat requests in this shape (without ``text_offset``).

llama.cpp's ``llama-server`` answers ``/v1/completions`` with the chat shape instead:
``logprobs.content`` is a list of ``{id, token, bytes, logprob, top_logprobs: [{id,
token, bytes, logprob}]}``; generated positions are read from it as from a chat answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._response_fields import _as_mapping, _choices, _fail, _logprob, _token, parse_positions
from .records import Position

__all__ = ["EchoedToken", "parse_completion_echo", "parse_completion_positions"]


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
            "check that the server returns legacy completions logprobs (tokens, "
            "token_logprobs, top_logprobs, text_offset) or a logprobs.content list",
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

    ``top_logprobs`` there is a list of ``{token: logprob}`` dicts (one per position);
    a ``logprobs.content`` list of chat-shaped entries (llama-server) is read as such.
    """
    src = "OpenAI completions"
    choices = _choices(response, src, "/v1/completions")
    if len(choices) <= index:
        raise _fail(src, "choices", f"has no choice {index}", "pass a complete response")
    field = f"choices[{index}]"
    lp = _completion_logprobs(choices[index], field, src)
    if "tokens" not in lp and isinstance(lp.get("content"), list):  # llama-server's shape
        return parse_positions(lp["content"], f"{field}.logprobs.content", src)
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
        # field names are spelt out only for a failure (a text has hundreds of tokens)
        columns = zip(lp["tokens"], lp["text_offset"], lp["token_logprobs"], strict=True)
        for j, (tok, off, raw) in enumerate(columns):
            if not isinstance(off, int) or isinstance(off, bool) or off < 0:
                raise _fail(
                    src,
                    f"{field}.logprobs.text_offset[{j}]",
                    "must be a non-negative integer",
                    "check the response shape",
                )
            if not isinstance(tok, str):
                _token(tok, f"{field}.logprobs.tokens[{j}]", src)  # raises
            value = (
                None if raw is None else _logprob(raw, f"{field}.logprobs.token_logprobs[{j}]", src)
            )
            toks.append(EchoedToken(tok, off, value))
        out[index] = (text, toks)
    return out
