"""Small builders for position lists used across the tests (hand-written, not recorded)."""

from __future__ import annotations

from typing import Any


def pos(token: str, logprob: float, *alts: tuple[str, float]) -> dict[str, Any]:
    """A position dict in the OpenAI/Ollama shape; the sampled token is listed first."""
    top = [{"token": token, "logprob": logprob}] + [{"token": t, "logprob": lp} for t, lp in alts]
    return {"token": token, "logprob": logprob, "top_logprobs": top}
