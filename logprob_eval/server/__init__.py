"""The local model's OpenAI-compatible scoring server (needs the ``local`` extra to run)."""

from __future__ import annotations

from .process import LocalServer, free_port

__all__ = ["LocalServer", "free_port"]
