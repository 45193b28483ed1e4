"""Model backends behind one interface, chosen by a ``provider:model`` string.

=====================================================  ==================  ===============
spec                                                   methods             needs
=====================================================  ==================  ===============
``openai:gpt-4.1-mini``                                generation          OPENAI_API_KEY
``openai-compatible:NAME@http://host:port/v1``         exact, generation   a server
``ollama:llama3.2`` (``ollama:MODEL@http://host:port``) generation          Ollama>=0.12.11
``local:gemma-3-270m``                                 exact, generation   ``[local]`` extra
=====================================================  ==================  ===============
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError, UnknownNameError
from .base import Backend

__all__ = ["PROVIDERS", "Backend", "get_backend", "parse_spec"]

PROVIDERS: dict[str, tuple[str, str]] = {
    "openai": ("logprob_eval.backends.openai_chat", "OpenAIChatBackend"),
    "openai-compatible": ("logprob_eval.backends.openai_compatible", "OpenAICompatibleBackend"),
    "ollama": ("logprob_eval.backends.ollama", "OllamaBackend"),
    "local": ("logprob_eval.backends.local", "LocalBackend"),
}
"""Provider name -> (module, class); modules are imported only when used."""


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """``provider:model[@url]`` -> (provider, model, url or None)."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(
            f"model spec {spec!r} must look like 'provider:model', e.g. 'openai:gpt-4.1-mini', "
            "'ollama:llama3.2', 'local:gemma-3-270m' or "
            "'openai-compatible:NAME@http://127.0.0.1:8000/v1'"
        )
    provider, rest = spec.split(":", 1)
    if provider not in PROVIDERS:
        raise UnknownNameError("provider", provider, tuple(PROVIDERS))
    model, url = rest, None
    if "@" in rest:
        model, url = rest.split("@", 1)
    if not model:
        raise ConfigError(f"model spec {spec!r} has no model name after '{provider}:'")
    if provider == "openai-compatible" and not url:
        raise ConfigError(
            f"model spec {spec!r} needs a server URL: 'openai-compatible:{model}@http://host:port/v1'"
        )
    return provider, model, url


def get_backend(spec: str, **options: Any) -> Backend:
    """Make the backend for ``spec``; ``options`` go to its constructor (``method=``...)."""
    provider, model, url = parse_spec(spec)
    module, name = PROVIDERS[provider]
    cls = getattr(importlib.import_module(module), name)
    if url is not None:
        options.setdefault("host" if provider == "ollama" else "base_url", url)
    backend: Backend = cls(model, **options)
    return backend
