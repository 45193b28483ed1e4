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


SUPPORT_TICKETS = [  # hand-written ticket intents (tests' data): labels the study never had
    ("Can I get a refund for last month?", ["refund", "billing"]),
    ("My card was charged twice.", ["billing"]),
    ("The app crashes when I log in.", ["bug"]),
    ("How do I change my password?", ["account"]),
    ("Please close my account and refund me.", ["account", "refund"]),
    ("The invoice shows the wrong VAT number.", ["billing"]),
    ("Export to PDF does nothing.", ["bug"]),
]
