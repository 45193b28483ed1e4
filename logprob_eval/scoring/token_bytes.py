"""The bytes behind a token's text, wherever a server shows them.

Servers show a token's text in three ways, and this module turns each into the token's
UTF-8 bytes, so that tokens which split a character still spell a label when joined:

* a ``bytes`` list next to the token (OpenAI chat, vLLM, Ollama): used as is;
* OpenAI's ``bytes:\\xe4\\xbd`` token strings for pieces of a character: the escapes;
* raw byte-level BPE pieces (GPT-2 alphabet: ``ĠHello`` for `` Hello``, ``Ċ`` for a
  newline), which lmdeploy lists: decoded when a response is recognised as using them
  (some token holds ``Ġ`` or ``Ċ``, the alphabet's space and newline).

Everything else is the UTF-8 encoding of the token's text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

__all__ = ["byte_level_decode", "is_byte_level", "token_bytes"]

_ESCAPED = re.compile(r"bytes:((?:\\x[0-9a-fA-F]{2})+)")


def token_bytes(token: str, given: tuple[int, ...] | None = None) -> bytes:
    """The bytes of a token: ``given`` if the server listed them, else from its text."""
    if given is not None:
        return bytes(given)
    if token.startswith("bytes:"):
        escaped = _ESCAPED.fullmatch(token)
        if escaped:
            return bytes.fromhex(escaped.group(1).replace("\\x", ""))
    return token.encode("utf-8", "surrogatepass")


@functools.cache
def _alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet: character -> the byte it stands for."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars = {b: b for b in printable}
    shifted = 0
    for b in range(256):
        if b not in chars:
            chars[b] = 256 + shifted
            shifted += 1
    return {chr(c): b for b, c in chars.items()}


_MARKERS = ("\u0120", "\u010a")  # "Ġ" (space) and "Ċ" (newline) in the alphabet


def is_byte_level(tokens: Iterable[str]) -> bool:
    """Whether these tokens look like raw byte-level BPE pieces (one holds ``Ġ`` or ``Ċ``)."""
    text = "".join(tokens)
    return any(marker in text for marker in _MARKERS)


def byte_level_decode(token: str) -> bytes | None:
    """The bytes a raw byte-level BPE piece stands for; None if it is not one.

    In a response that mixes decoded and raw tokens (lmdeploy decodes the sampled token,
    not the alternatives) a token is taken as raw when it holds a character the alphabet
    moved (``Ġ``, ``Ċ``, ...) or when the bytes it stands for are valid UTF-8; a decoded
    ``é`` stays ``é``. (A raw piece of a character made only of Latin-1 letters, such as
    ``ä½``, is then taken as decoded text: a known ambiguity of such mixed responses.)
    """
    alphabet = _alphabet()
    try:
        raw = bytes(alphabet[c] for c in token)
    except KeyError:
        return None
    if any(ord(c) > 0xFF for c in token):
        return raw
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return raw
