"""OpenAI chat completions (generation method): top-k log-probs of the generated answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from ..errors import ConfigError, LogprobsUnsupportedError, ResponseFormatError
from ..scoring.parsing import parse_openai_chat
from ..scoring.records import LabelScore, Method
from ._openai_client import call_json, make_client
from .base import Backend

__all__ = ["NO_LOGPROBS_MODELS", "OpenAIChatBackend"]

NO_LOGPROBS_MODELS = re.compile(r"^(o\d|gpt-5|codex)", re.IGNORECASE)
"""Reasoning models answer ``unsupported_parameter`` to ``logprobs``; refused before sending."""


class OpenAIChatBackend(Backend):
    """``openai:MODEL``: one chat request per prompt, labels matched on the answer."""

    provider = "openai"
    methods: ClassVar[tuple[Method, ...]] = ("generation",)

    def __init__(
        self,
        model: str,
        *,
        method: Method = "generation",
        base_url: str | None = None,
        api_key: str | None = None,
        top_logprobs: int = 20,
        max_tokens: int = 16,
        timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, method=method, timeout=timeout, **kwargs)
        if not 0 <= top_logprobs <= 20:
            raise ConfigError(f"top_logprobs={top_logprobs!r} must be between 0 and 20")
        if NO_LOGPROBS_MODELS.match(model):
            raise LogprobsUnsupportedError(
                f"logprobs unsupported for {self.spec}: reasoning models (o-series, gpt-5 "
                "family) return no log-probabilities; pick e.g. openai:gpt-4.1-mini",
                backend=self.spec,
            )
        self.base_url = base_url
        self.top_logprobs = top_logprobs
        self.max_tokens = max_tokens
        self._client = make_client(self.spec, base_url=base_url, api_key=api_key, timeout=timeout)

    def payload(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }

    def batch_request(self, prompt: str) -> tuple[str, dict[str, Any]]:
        return "chat/completions", self.payload(prompt)

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        endpoint, payload = self.batch_request(prompt)
        create = self._client.chat.completions.with_raw_response.create
        body = self._request(
            endpoint, payload, lambda: call_json(self.spec, self._client, create, payload)
        )
        return self._match_generated(parse_openai_chat, body, labels)

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 48,
        temperature: float = 0.8,
        seed: int | None = None,
    ) -> str:
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        create = self._client.chat.completions.with_raw_response.create
        body = self._request(
            "chat/completions", payload, lambda: call_json(self.spec, self._client, create, payload)
        )
        try:
            return str(body["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise self._format_error(
                ResponseFormatError(
                    "field 'choices[0].message.content' is missing", field="choices"
                )
            ) from None

    def close(self) -> None:
        self._client.close()
