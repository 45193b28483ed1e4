"""Reading a cassette file one interaction at a time.

``json.load`` of a whole cassette reads the file into one string (its decoding briefly
takes two more copies) and builds every interaction's parsed tree at once: about four
times the file (a 166 MB cassette of 10,000 texts peaks at 690 MB that way) before anything
is replayed. :func:`read_interactions` reads the file a chunk at a time and parses one
interaction at a time, so a caller that turns each into its compact form (vcrpy's bodies
are bytes) holds a chunk of text and the compact forms, never the whole file or its tree.
Every cassette this project ever wrote reads the same way: the format is unchanged.

Damage is reported as ``json.load`` reports it: a :class:`json.JSONDecodeError` with its
line and column in the file, or ``KeyError('interactions')`` for a JSON document without
recordings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from typing import Any, TextIO

__all__ = ["read_interactions"]

CHUNK = 1 << 20
"""Characters read at a time."""

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Text:
    """The part of a JSON text read so far and not yet released: ``buf``, whose first
    character is character ``start`` of the file, on line ``line`` (0-based) at column
    ``column`` (0-based)."""

    def __init__(self, fh: TextIO, chunk: int) -> None:
        self.fh, self.chunk = fh, chunk
        self.buf, self.eof = "", False
        self.start = self.line = self.column = 0

    def more(self) -> bool:
        """Read the next chunk; False at the end of the file."""
        part = "" if self.eof else self.fh.read(self.chunk)
        self.eof = not part
        self.buf += part
        return bool(part)

    def skip(self, at: int) -> int:
        """The position of the next non-whitespace character at or after ``at`` (the end
        of the text if there is none)."""
        while True:
            at = _SPACE.match(self.buf, at).end()  # type: ignore[union-attr]  # always matches
            if at < len(self.buf) or not self.more():
                return at

    def expect(self, at: int, char: str, what: str) -> int:
        """The position after ``char``, the next non-whitespace character."""
        at = self.skip(at)
        if self.buf[at : at + 1] != char:
            raise self.error(f"Expecting {what}", at)
        return at + 1

    def value(self, at: int) -> tuple[Any, int]:
        """The JSON value at ``at`` (after whitespace) and the position after it; a value
        that ends where the text read so far ends (a number) is read on."""
        at = self.skip(at)
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, at)
            except json.JSONDecodeError as exc:
                if self.more():
                    continue
                raise self.error(exc.msg, exc.pos) from None
            if end < len(self.buf) or not self.more():
                return value, end

    def release(self, at: int) -> int:
        """Forget the text before ``at`` (once a chunk of it is done); the new ``at``."""
        if at < self.chunk:
            return at
        done = self.buf[:at]
        newlines = done.count("\n")
        self.line += newlines
        self.column = at - done.rfind("\n") - 1 if newlines else self.column + at
        self.start += at
        self.buf = self.buf[at:]
        return 0

    def error(self, msg: str, at: int) -> json.JSONDecodeError:
        """``json.load``'s error for ``msg`` at ``at``, placed in the whole file."""
        before = self.buf[:at]
        newlines = before.count("\n")
        line = self.line + newlines + 1
        column = at - before.rfind("\n") if newlines else self.column + at + 1
        exc = json.JSONDecodeError(msg, self.buf, at)
        exc.pos, exc.lineno, exc.colno = self.start + at, line, column
        exc.args = (f"{msg}: line {line} column {column} (char {self.start + at})",)
        return exc


def read_interactions(fh: TextIO, *, chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
    """The ``interactions`` of the cassette JSON read from ``fh``, parsed one at a time, in
    order (the rest of the document is checked and skipped)."""
    text = _Text(fh, chunk)
    at = text.expect(0, "{", "value")
    found = False
    if text.buf[text.skip(at) : text.skip(at) + 1] == "}":
        raise KeyError("interactions")
    while True:
        key_at = text.skip(at)
        key, at = text.value(key_at)
        if not isinstance(key, str):
            raise text.error("Expecting property name enclosed in double quotes", key_at)
        at = text.expect(at, ":", "':' delimiter")
        if key == "interactions":
            found = True
            at = yield from _items(text, at)
        else:
            _, at = text.value(at)
        at = text.skip(at)
        if text.buf[at : at + 1] == "}":
            break
        at = text.expect(at, ",", "',' delimiter")
    end = text.skip(at + 1)
    if end != len(text.buf):
        raise text.error("Extra data", end)
    if not found:
        raise KeyError("interactions")


def _items(text: _Text, at: int) -> Generator[dict[str, Any], None, int]:
    """The values of the JSON array at ``at``; returns the position after it."""
    at = text.skip(text.expect(at, "[", "'['"))
    if text.buf[at : at + 1] == "]":
        return at + 1
    while True:
        value, at = text.value(at)
        yield value
        at = text.skip(text.release(at))
        if text.buf[at : at + 1] == "]":
            return at + 1
        at = text.expect(at, ",", "',' delimiter")
