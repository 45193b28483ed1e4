"""OpenAI-compatible ``/v1/completions`` servers (vLLM, ``logprob-eval serve``).

``exact`` method: teacher-forced log P(label | prompt). Every label is appended to the
prompt, all of a text's labels go in one request as a list of prompts, the server echoes
the prompt log-probs (``echo=true, max_tokens=0, logprobs=0``) and the label's own tokens
are found by text offsets. A token that straddles the prompt/label boundary is included
and flagged in the score's note.

``generation`` method: one completion with ``logprobs=top_logprobs`` read by the matcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal

from ..echo import align_echo, echoed_label_score
from ..errors import ConfigError, ResponseFormatError
from ..parsing import EchoedToken, parse_completion_echo, parse_completion_positions
from ..records import LabelScore, Method
from ._openai_client import call_json, make_client
from .base import Backend

__all__ = ["Normalize", "OpenAICompatibleBackend", "label_continuation"]

Normalize = Literal["none", "token", "byte"]
_EXTENSIONS = ("continuation_offset",)  # body fields the OpenAI SDK does not know
_OPENERS = "\"'([{<`“‘"


def label_continuation(prompt: str, phrase: str) -> str:
    """The text appended to ``prompt`` for ``phrase``: a space unless the prompt already
    ends in whitespace or an opening quote/bracket (``{"topic": "`` + ``Sports``)."""
    if not prompt or prompt[-1].isspace() or prompt[-1] in _OPENERS:
        return phrase
    return " " + phrase


class OpenAICompatibleBackend(Backend):
    """``openai-compatible:NAME@http://host:port/v1``."""

    provider = "openai-compatible"
    methods: ClassVar[tuple[Method, ...]] = ("exact", "generation")

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        method: Method = "exact",
        api_key: str | None = None,
        normalize: Normalize = "none",
        top_logprobs: int = 20,
        max_tokens: int = 16,
        batch_prompts: bool = True,
        continuation_offset: bool = False,
        timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, method=method, timeout=timeout, **kwargs)
        if normalize not in ("none", "token", "byte"):
            raise ConfigError(f"normalize={normalize!r} must be 'none', 'token' or 'byte'")
        if not 0 <= top_logprobs <= 20:
            raise ConfigError(f"top_logprobs={top_logprobs!r} must be between 0 and 20")
        self.base_url = base_url
        self.normalize: Normalize = normalize
        self.top_logprobs = top_logprobs
        self.max_tokens = max_tokens
        self.batch_prompts = batch_prompts
        self.continuation_offset = continuation_offset
        self._client = make_client(self.spec, base_url=base_url, api_key=api_key, timeout=timeout)

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.model}@{self.base_url}"

    # payloads (public so tests and the cassette layer can see exactly what is sent) ------

    def exact_payload(self, prompts: list[str], offset: int | None = None) -> dict[str, Any]:
        """``offset``: where the continuation begins in every prompt, sent as the
        ``continuation_offset`` extension when the server understands it (``logprob-eval
        serve``): only the continuation's log-probs come back, and the text before it is
        evaluated as a generation request for it would be."""
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": prompts if len(prompts) != 1 else prompts[0],
            "echo": True,
            "logprobs": 0,
            "max_tokens": 0,
            "temperature": 0,
        }
        if self.continuation_offset and offset is not None:
            payload["continuation_offset"] = offset
        return payload

    def generation_payload(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "prompt": prompt,
            "logprobs": self.top_logprobs,
            "max_tokens": self.max_tokens,
            "temperature": 0,
        }

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        if self.method == "generation":
            return self._score_generation(prompt, labels)
        return self._score_exact(prompt, labels)

    def _send(self, payload: dict[str, Any]) -> Any:
        create = self._client.completions.with_raw_response.create
        sdk = {k: v for k, v in payload.items() if k not in _EXTENSIONS}
        extra = {k: v for k, v in payload.items() if k in _EXTENSIONS}
        if extra:
            sdk["extra_body"] = extra
        return self._request(
            "completions", payload, lambda: call_json(self.spec, self._client, create, sdk)
        )

    def _score_generation(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        body = self._send(self.generation_payload(prompt))
        return self._match_generated(parse_completion_positions, body, labels)

    def _score_exact(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        labels = list(labels)
        if len(set(labels)) != len(labels) or not all(isinstance(x, str) and x for x in labels):
            raise ConfigError(f"labels {labels!r} must be distinct non-empty strings")
        conts = [label_continuation(prompt, lab) for lab in labels]
        return dict(zip(labels, self.teacher_forced(prompt, conts, labels=labels), strict=True))

    def teacher_forced(
        self, prompt: str, continuations: Sequence[str], *, labels: Sequence[str] | None = None
    ) -> list[LabelScore]:
        """log P(continuation | prompt) for each continuation, exactly as written (no space
        added), from echoed prompt log-probs; ``labels`` name the scores (default: the
        continuations)."""
        fulls = [prompt + c for c in continuations]
        groups = [fulls] if self.batch_prompts else [[f] for f in fulls]
        echoed: list[tuple[str, list[EchoedToken]]] = []
        for group in groups:
            body = self._send(self.exact_payload(group, len(prompt)))
            try:
                parsed = parse_completion_echo(body)
            except ResponseFormatError as exc:
                raise self._format_error(exc) from None
            missing = [i for i in range(len(group)) if i not in parsed]
            if missing:
                raise self._format_error(
                    ResponseFormatError(
                        f"response has {len(parsed)} choices for {len(group)} prompts (missing "
                        f"index {missing[0]}); the server must accept a list of prompts, or "
                        "set batch_prompts=False",
                        field="choices",
                    )
                )
            echoed.extend(parsed[i] for i in range(len(group)))
        names = list(labels) if labels is not None else list(continuations)
        return [
            self._label_score(name, prompt, full, *echo)
            for name, full, echo in zip(names, fulls, echoed, strict=True)
        ]

    def _label_score(
        self, label: str, prompt: str, full: str, text: str, tokens: list[EchoedToken]
    ) -> LabelScore:
        if not text.startswith(full):
            raise self._format_error(
                ResponseFormatError(
                    f"echoed text does not start with the prompt sent for label {label!r} "
                    f"(got {text[:60]!r}...); the server must support echo=true",
                    field="choices[].text",
                )
            )
        try:
            aligned = align_echo(text, tokens)
            score = echoed_label_score(label, len(prompt), len(full), aligned)
        except ResponseFormatError as exc:
            raise self._format_error(exc) from None
        notes = [score.note] if score.note else []
        value, n_tokens = score.logprob, len(score.path)
        if self.normalize == "token":
            value /= n_tokens
            notes.append(f"per-token mean over {n_tokens} tokens")
        elif self.normalize == "byte":
            n_bytes = max(1, len(full[len(prompt) :].encode("utf-8")))
            value /= n_bytes
            notes.append(f"per-byte mean over {n_bytes} bytes")
        return replace(
            score,
            logprob=value,
            lower=value,
            variants=(full[len(prompt) :],),
            note="; ".join(notes),
        )

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
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        body = self._send(payload)
        try:
            return str(body["choices"][0]["text"])
        except (KeyError, IndexError, TypeError):
            raise self._format_error(
                ResponseFormatError("field 'choices[0].text' is missing", field="choices")
            ) from None

    def close(self) -> None:
        self._client.close()
