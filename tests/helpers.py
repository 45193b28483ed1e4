"""Small builders for position lists used across the tests (hand-written, not recorded)."""

from __future__ import annotations

from typing import Any


def pos(token: str, logprob: float, *alts: tuple[str, float]) -> dict[str, Any]:
    """A position dict in the OpenAI/Ollama shape; the sampled token is listed first."""
    top = [{"token": token, "logprob": logprob}] + [{"token": t, "logprob": lp} for t, lp in alts]
    return {"token": token, "logprob": logprob, "top_logprobs": top}


def fake_echo_completions(body: dict[str, Any]) -> dict[str, Any]:
    """A stand-in for an OpenAI-compatible /v1/completions server with echo, for tests.

    Hand-written, deterministic: tokens are words with their leading space, each token's
    log-prob is derived from a hash of the text before it and the token. Not a model, not
    a recording.
    """
    import hashlib
    import re

    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    choices = []
    for i, text in enumerate(prompts):
        toks = re.findall(r"\s*\S+", text)
        offs, lps, pos = [], [], 0
        for t in toks:
            offs.append(pos)
            h = hashlib.sha256((text[:pos] + "|" + t).encode()).digest()
            lps.append(-0.1 - 8.0 * h[0] / 255)
            pos += len(t)
        choices.append(
            {
                "index": i,
                "text": text,
                "finish_reason": "length",
                "logprobs": {
                    "tokens": toks,
                    "token_logprobs": lps,
                    "top_logprobs": None,
                    "text_offset": offs,
                },
            }
        )
    return {
        "id": "cmpl-fake",
        "object": "text_completion",
        "model": body["model"],
        "choices": choices,
    }
