"""``local:gemma-3-270m``: the embedded model behind ``logprob-eval serve``.

The backend starts the server on a free loopback port (or uses ``base_url`` when one is
already running) and speaks to it exactly as to any OpenAI-compatible server.
"""

from __future__ import annotations

from typing import Any

from ..scoring.records import Method
from .openai_compatible import OpenAICompatibleBackend

__all__ = ["LocalBackend"]


class LocalBackend(OpenAICompatibleBackend):
    """The OpenAI-compatible backend plus the server process it owns."""

    provider = "local"

    def __init__(
        self,
        model: str = "gemma-3-270m",
        *,
        method: Method = "exact",
        base_url: str | None = None,
        server_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._server = None
        if base_url is None:
            from ..server.engine import resolve_model_path
            from ..server.process import LocalServer

            resolve_model_path(model)  # fail fast, with the pip line, if the extra is missing
            self._server = LocalServer(model, **(server_options or {})).start()
            base_url = self._server.base_url
        try:
            kwargs.setdefault("continuation_offset", True)  # our server knows the extension
            super().__init__(model, base_url=base_url, method=method, **kwargs)
        except Exception:
            self.close()
            raise

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.model}"

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
        if self._server is not None:
            self._server.stop()
            self._server = None
