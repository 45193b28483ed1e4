"""``anthropic:MODEL``: resolves to a typed error, before any request.

Anthropic's Messages API exposes no log-probabilities of any kind (no per-token logprobs,
no top alternatives, no prompt log-probs), so neither scoring method can run on Claude.
The study this project grew from listed Anthropic among the providers with log-probs; it
has none. The spec is known (rather than an unknown provider) so that the answer is this
explanation and the alternatives, and so that eval cases naming it skip with that reason.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import LogprobsUnsupportedError
from ..scoring.records import Method
from .base import Backend

__all__ = ["AnthropicBackend", "no_logprobs_reason"]


def no_logprobs_reason(spec: str) -> str:
    return (
        f"logprobs unsupported for {spec}: Anthropic's API returns no log-probabilities "
        "(no token logprobs, no top alternatives, no prompt echo), so Claude cannot be scored "
        "by label log-probs. Use a provider that returns them (openai:gpt-4.1-mini, "
        "openai-responses:gpt-4.1-mini, gemini:gemini-2.0-flash, ollama:MODEL), or the exact "
        "method on an open model (local:gemma-3-270m, or "
        "openai-compatible:MODEL@http://host:port/v1 on vLLM)"
    )


class AnthropicBackend(Backend):
    """Never constructed: raises :class:`LogprobsUnsupportedError` with the alternatives."""

    provider = "anthropic"
    methods: ClassVar[tuple[Method, ...]] = ()

    def __init__(self, model: str, **options: Any) -> None:
        spec = f"{self.provider}:{model}"
        raise LogprobsUnsupportedError(no_logprobs_reason(spec), backend=spec)

    def score(self, prompt: str, labels: Any) -> Any:  # pragma: no cover - never constructed
        raise LogprobsUnsupportedError(no_logprobs_reason(self.spec), backend=self.spec)
