"""Reading a cassette file one interaction at a time.

``json.loads`` of a whole cassette builds every interaction's parsed tree at once: about
four times the file (a 170 MB cassette of 10,000 texts takes 700 MB that way), before
anything is replayed. :func:`read_interactions` walks the same JSON text and parses one
interaction at a time, so a caller that turns each into its compact form (vcrpy's bodies
are bytes) holds the text and the compact forms, never the whole tree. Every cassette
this project ever wrote reads the same way; the format is unchanged.

Damage is reported as ``json.loads`` would report it: a :class:`json.JSONDecodeError`
with its line and column in the file, or ``KeyError('interactions')`` for a JSON
document without recordings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from typing import Any

__all__ = ["read_interactions"]

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip(text: str, at: int) -> int:
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]  # matches always


def _expect(text: str, at: int, char: str, what: str) -> int:
    """The position after ``char`` at ``at`` (after whitespace), else the decode error."""
    at = _skip(text, at)
    if text[at : at + 1] != char:
        raise json.JSONDecodeError(f"Expecting {what}", text, at)
    return at + 1


def read_interactions(text: str) -> Iterator[dict[str, Any]]:
    """The ``interactions`` of a cassette's JSON ``text``, parsed one at a time, in order
    (the rest of the document is checked and skipped)."""
    at = _expect(text, 0, "{", "'{'")
    found = False
    at = _skip(text, at)
    if text[at : at + 1] == "}":
        raise KeyError("interactions")
    while True:
        key, at = _DECODER.raw_decode(text, _skip(text, at))
        if not isinstance(key, str):
            raise json.JSONDecodeError("Expecting property name in double quotes", text, at)
        at = _expect(text, at, ":", "':' delimiter")
        if key == "interactions":
            found = True
            at = yield from _items(text, at)
        else:
            _, at = _DECODER.raw_decode(text, _skip(text, at))
        at = _skip(text, at)
        if text[at : at + 1] == "}":
            break
        at = _expect(text, at, ",", "',' delimiter")
    if _skip(text, at + 1) != len(text):
        raise json.JSONDecodeError("Extra data", text, _skip(text, at + 1))
    if not found:
        raise KeyError("interactions")


def _items(text: str, at: int) -> Generator[dict[str, Any], None, int]:
    """The values of the JSON array at ``at``; returns the position after it."""
    at = _expect(text, at, "[", "'['")
    at = _skip(text, at)
    if text[at : at + 1] == "]":
        return at + 1
    while True:
        value, at = _DECODER.raw_decode(text, _skip(text, at))
        yield value
        at = _skip(text, at)
        if text[at : at + 1] == "]":
            return at + 1
        at = _expect(text, at, ",", "',' delimiter")
