"""How a cassette stores an HTTP body, and the canonical form requests are matched on.

A body is stored decoded, so a cassette reads well in review, under one of four keys:

* ``"json"``: a JSON document (every chat, completion and batch-create body);
* ``"multipart"``: a ``multipart/form-data`` upload (the Batch API's ``POST /v1/files``),
  one entry per part in order: a plain field as its text, a file as ``{"filename",
  "content_type"}`` plus its content as ``"jsonl"`` (a list of JSON values, one per line)
  or ``"text"``;
* ``"jsonl"``: JSON Lines, one JSON value per line (a batch's output and error files);
* ``"string"``: anything else, as text.

The multipart boundary is random on every upload and is not stored: a stored upload is
re-encoded with :data:`BOUNDARY`, and requests are matched on the decoded parts
(:func:`canonical`), so the same upload matches whatever boundary the client drew.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["BOUNDARY", "canonical", "decode_body", "encode_body", "structured"]

BOUNDARY = "logprob-eval-boundary"
_NAME = re.compile(r'(?:^|;)\s*name="([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(r'(?:^|;)\s*filename="([^"]*)"', re.IGNORECASE)


def _text(raw: Any) -> str:
    if raw is None:
        return ""
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def _jsonl(text: str) -> list[Any] | None:
    """The values of ``text`` as JSON Lines (at least one line break), else None."""
    if "\n" not in text.strip():
        return None
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        return None


def _part(chunk: str) -> tuple[str, Any] | None:
    head, sep, content = chunk.partition("\r\n\r\n")
    if not sep:
        return None
    headers = {}
    for line in head.split("\r\n"):
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    name = _NAME.search(disposition)
    if name is None:
        return None
    filename = _FILENAME.search(disposition)
    if filename is None and "content-type" not in headers:
        return name.group(1), content
    part: dict[str, Any] = {
        "filename": filename.group(1) if filename else None,
        "content_type": headers.get("content-type"),
    }
    lines = _jsonl(content)
    if lines is not None:
        part["jsonl"] = lines
    else:
        part["text"] = content
    return name.group(1), part


def _multipart(text: str) -> dict[str, Any] | None:
    """The parts of a ``multipart/form-data`` body by name; None if ``text`` is not one
    (or repeats a part name, which a dict cannot keep)."""
    first, sep, _ = text.partition("\r\n")
    end = f"\r\n{first}--\r\n"
    if not sep or not first.startswith("--") or len(first) < 3 or not text.endswith(end):
        return None
    inner = text[len(first) + 2 : -len(end)]
    parts: dict[str, Any] = {}
    for chunk in inner.split(f"\r\n{first}\r\n"):
        part = _part(chunk)
        if part is None or part[0] in parts:
            return None
        parts[part[0]] = part[1]
    return parts


def decode_body(raw: Any) -> dict[str, Any]:
    """A raw body as stored in a cassette (see the module docstring)."""
    text = _text(raw)
    try:
        return {"json": json.loads(text)}
    except ValueError:
        pass
    parts = _multipart(text)
    if parts is not None:
        return {"multipart": parts}
    lines = _jsonl(text)
    if lines is not None:
        return {"jsonl": lines}
    return {"string": text}


def _encode_part(name: str, part: Any) -> str:
    if not isinstance(part, dict):
        return f'Content-Disposition: form-data; name="{name}"\r\n\r\n{part}'
    head = f'Content-Disposition: form-data; name="{name}"'
    if part.get("filename") is not None:
        head += f'; filename="{part["filename"]}"'
    if part.get("content_type") is not None:
        head += f"\r\nContent-Type: {part['content_type']}"
    content = _encode_lines(part["jsonl"]) if "jsonl" in part else str(part.get("text", ""))
    return f"{head}\r\n\r\n{content}"


def _encode_lines(values: list[Any]) -> str:
    return "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values)


def encode_body(stored: Any) -> str:
    """A stored body back as the text a client sent or a server answered."""
    if not isinstance(stored, dict):
        return "" if stored is None else str(stored)
    if "json" in stored:
        return json.dumps(stored["json"], ensure_ascii=False, separators=(",", ":"))
    if "multipart" in stored:
        parts = [_encode_part(n, p) for n, p in stored["multipart"].items()]
        return "".join(f"--{BOUNDARY}\r\n{p}\r\n" for p in parts) + f"--{BOUNDARY}--\r\n"
    if "jsonl" in stored:
        return _encode_lines(stored["jsonl"])
    return str(stored.get("string", ""))


def structured(raw: Any) -> Any | None:
    """The JSON value or the decoded multipart parts of a request body; None for other
    bodies (used to say which field of a request changed)."""
    stored = decode_body(raw)
    if "json" in stored:
        return stored["json"]
    if "multipart" in stored:
        return stored["multipart"]
    return None


def canonical(raw: Any) -> str:
    """The form a request body is matched on: JSON and multipart bodies as JSON with
    sorted keys (no whitespace, no boundary), anything else as its text."""
    stored = decode_body(raw)
    for kind in ("json", "multipart"):
        if kind in stored:
            text = json.dumps(
                stored[kind], sort_keys=True, ensure_ascii=False, separators=(",", ":")
            )
            return text if kind == "json" else f"multipart:{text}"
    return _text(raw)
