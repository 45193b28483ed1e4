"""Reading one response's fields into records, with errors that name the field.

The helpers the provider parsers share (:mod:`logprob_eval.scoring.parsing` is the public seam):
typed checks of tokens, log-probs and bytes, position entries, and the reading rules that
hold for every provider: log-probs at or below -9999 are sentinels for "no mass" (-inf),
and so is ``-inf`` itself in a ``top_logprobs`` list (padding); other non-finite or positive
ones are errors; raw byte-level BPE pieces are decoded when a
response uses them (:mod:`logprob_eval.scoring.token_bytes`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ResponseFormatError
from .records import SENTINEL_LOGPROB, Alternative, Position
from .token_bytes import byte_level_decode, is_byte_level

__all__ = ["LOGPROB_TOLERANCE", "parse_position", "parse_positions"]

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


def _logprob(value: Any, field: str, source: str, *, in_top_list: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(
            source,
            field,
            f"must be a number, got {type(value).__name__} {value!r:.40}",
            "check that the server returned log-probabilities",
        )
    lp = float(value)
    if in_top_list and lp == -math.inf:
        return lp  # a filler padding a top-k list, like the sentinels below
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


def _token_entry(entry: Any, field: str, source: str, needs: str) -> Mapping[str, Any]:
    """``entry`` as an object holding ``token`` and ``logprob``; ``needs`` is the fix."""
    entry = _as_mapping(entry)
    if not isinstance(entry, Mapping):
        raise _fail(source, field, f"must be an object, got {type(entry).__name__}", needs)
    for key in ("token", "logprob"):
        if key not in entry:
            raise _fail(source, f"{field}.{key}", "is missing", needs)
    return entry


def _alternative(entry: Any, parent: str, j: int, source: str) -> Alternative:
    """Entry ``j`` of ``parent``'s ``top_logprobs``."""
    if type(entry) is dict and entry.get("bytes") is None:
        # the common case, checked in one step: a text token and a plain log-prob
        token, value = entry.get("token"), entry.get("logprob")
        if type(token) is str and type(value) is float and SENTINEL_LOGPROB < value <= 0.0:
            return Alternative(token, value)
    field = f"{parent}.top_logprobs[{j}]"
    entry = _token_entry(
        entry, field, source, "each top_logprobs entry needs 'token' and 'logprob'"
    )
    return Alternative(
        _token(entry["token"], f"{field}.token", source),
        _logprob(entry["logprob"], f"{field}.logprob", source, in_top_list=True),
        _bytes(entry.get("bytes"), f"{field}.bytes", source),
    )


def parse_position(entry: Any, field: str = "positions[0]", source: str = "") -> Position:
    """One ``{token, logprob, bytes?, top_logprobs?}`` entry (or a Position) to a Position."""
    if isinstance(entry, Position):
        return entry
    entry = _token_entry(
        entry, field, source, "each position needs 'token', 'logprob' and optionally 'top_logprobs'"
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
    if not is_byte_level([p.token for p in positions]) and not is_byte_level(
        [a.token for p in positions for a in p.top_logprobs]  # lists: join() copies a generator
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
