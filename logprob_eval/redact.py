"""Keep secrets out of messages, logs, reports and cassettes."""

from __future__ import annotations

import re

__all__ = ["KEY_PATTERN", "SECRET_HEADERS", "redact"]

KEY_PATTERN = re.compile(
    # a key starts a token: "task-across-label_sets" (a case id) holds "sk-..." but no key
    r"((?<![A-Za-z0-9])sk-[A-Za-z0-9_\-*]{8,}|(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{20,}|"
    r"Bearer\s+[A-Za-z0-9._\-~+/]{8,}=*|"
    r"(?i:api[_-]?key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._\-]{8,}|\bkey=[A-Za-z0-9._\-]{8,})"
)
"""Key-shaped strings: OpenAI- and Anthropic-style ``sk-...`` keys, Google ``AIza...`` API keys,
bearer tokens, ``api_key=...`` / ``key=...`` pairs."""

SECRET_HEADERS: tuple[str, ...] = (
    "authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "openai-organization",
    "openai-project",
    "cookie",
    "set-cookie",
)
"""Request and response headers that never reach a cassette (compared lower-case)."""


def redact(text: str) -> str:
    """``text`` with every key-shaped substring replaced by ``[REDACTED]``."""
    return KEY_PATTERN.sub("[REDACTED]", text)
