"""Model backends behind one interface, chosen by a ``provider:model`` string.

=====================================================  ==================  ===============
spec                                                   methods             needs
=====================================================  ==================  ===============
``openai:gpt-4.1-mini``                                generation          OPENAI_API_KEY
``openai-responses:gpt-4.1-mini`` (or ``api="responses"``) generation      OPENAI_API_KEY
``gemini:gemini-2.0-flash``                            generation          GEMINI_API_KEY
``anthropic:MODEL``                                    none (typed error)  -
``openai-compatible:NAME@http://host:port/v1``         exact, generation   a server
``ollama:llama3.2`` (``ollama:MODEL@http://host:port``) generation          Ollama>=0.12.11
``local:gemma-3-270m``                                 exact, generation   ``[local]`` extra
=====================================================  ==================  ===============

``openai:MODEL`` takes ``api="chat"`` (default) or ``api="responses"``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError, UnknownNameError
from .base import Backend

__all__ = ["OPENAI_APIS", "PROVIDERS", "Backend", "get_backend", "parse_spec"]

OPENAI_APIS = {"chat": "openai", "responses": "openai-responses"}
"""``api=`` of an ``openai:`` spec -> the provider that speaks that API."""

PROVIDERS: dict[str, tuple[str, str]] = {
    "openai": ("logprob_eval.backends.openai_chat", "OpenAIChatBackend"),
    "openai-responses": ("logprob_eval.backends.openai_responses", "OpenAIResponsesBackend"),
    "gemini": ("logprob_eval.backends.gemini", "GeminiBackend"),
    "anthropic": ("logprob_eval.backends.anthropic", "AnthropicBackend"),
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
    """Make the backend for ``spec``; ``options`` go to its constructor (``method=``...).
    ``api=`` picks the API of an ``openai:`` spec ("chat" or "responses")."""
    provider, model, url = parse_spec(spec)
    api = options.pop("api", None)
    if api is not None:
        if provider not in ("openai", "openai-responses"):
            raise ConfigError(f"{spec}: api={api!r} applies to openai: specs only; remove it")
        if api not in OPENAI_APIS:
            raise UnknownNameError("OpenAI api", str(api), tuple(OPENAI_APIS))
        if provider == "openai-responses" and api != "responses":
            raise ConfigError(f"{spec}: api={api!r} contradicts the spec; use openai:{model}")
        provider = OPENAI_APIS[api]
    module, name = PROVIDERS[provider]
    cls = getattr(importlib.import_module(module), name)
    if url is not None:
        options.setdefault("host" if provider == "ollama" else "base_url", url)
    backend: Backend = cls(model, **options)
    return backend
