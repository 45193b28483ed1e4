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

    from .api_bodies import completion_echo

    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    tokenised, logprobs = [], []
    for text in prompts:
        toks = re.findall(r"\s*\S+", text)
        lps, pos = [], 0
        for t in toks:
            h = hashlib.sha256((text[:pos] + "|" + t).encode()).digest()
            lps.append(-0.1 - 8.0 * h[0] / 255)
            pos += len(t)
        tokenised.append(toks)
        logprobs.append(lps)
    return completion_echo(prompts, tokenised, logprobs, model=body["model"])
