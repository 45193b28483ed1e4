"""A hand-written toy language model for the forced method's unit tests: a small
vocabulary, a tokenizer (longest match) and a next-token distribution that depends on the
last token. The answers it gives are written in llama-server's ``logprobs.content`` shape
and in the legacy ``/v1/completions`` shape, from those servers' documented formats.

Unit-test data only: these are NOT recordings (recorded traffic lives in cassettes/).
"""

from __future__ import annotations

import math
from typing import Any

VOCAB = [
    "<bos>", "T", ":", " Sports", " Art", " about", " history", " art", " ", "Sports", "Art",
    " Sports",  # id 11: the same text as id 3, another token (ids tell them apart)
    *[f" w{i}" for i in range(30)],
]  # fmt: skip
ID_OF = {t: i for i, t in enumerate(VOCAB) if i != 11}


def tokenize(text: str) -> list[int]:
    """BOS, then the longest vocabulary piece at each point (never id 11)."""
    ids, at = [0], 0
    pieces = sorted(ID_OF, key=len, reverse=True)
    while at < len(text):
        piece = next(p for p in pieces if p != "<bos>" and text.startswith(p, at))
        ids.append(ID_OF[piece])
        at += len(piece)
    return ids


def logits(context: list[int]) -> list[float]:
    """The next-token logits after ``context``: they depend on its last token only."""
    last = context[-1]
    out = [-8.0 - 0.1 * i for i in range(len(VOCAB))]
    if last == 2:  # after ":": the labels' first tokens, " Art" ranked 5th
        for tok, value in ((3, 2.0), (8, 1.5), (5, 1.2), (11, 1.1), (4, 0.2), (7, -6.0)):
            out[tok] = value
    elif last == 5:  # after " about"
        out[6], out[7] = 1.0, 0.5
    elif last == 8:  # after " " (the text-mode detour)
        out[9], out[10] = 0.3, -0.5
    return out


def logprobs(context: list[int]) -> list[float]:
    row = logits(context)
    top = max(row)
    norm = top + math.log(math.fsum(math.exp(v - top) for v in row))
    return [v - norm for v in row]


def true_logprob(prompt: str, continuation: str) -> float:
    """The exact method's number: the sum over the continuation's tokens in context."""
    full, head = tokenize(prompt + continuation), tokenize(prompt)
    start = next(i for i, (a, b) in enumerate(zip(full, [*head, -1], strict=False)) if a != b)
    return math.fsum(logprobs(full[:j])[full[j]] for j in range(start, len(full)))


def _ranked(context: list[int], k: int) -> list[tuple[int, float]]:
    lps = logprobs(context)
    return sorted(enumerate(lps), key=lambda e: -e[1])[:k]


def llama_server_answer(context: list[int], k: int) -> dict[str, Any]:
    """A one-token completion in llama-server's shape (greedy: the top token sampled)."""

    def entry(tok: int, lp: float) -> dict[str, Any]:
        return {"id": tok, "token": VOCAB[tok], "bytes": list(VOCAB[tok].encode()), "logprob": lp}

    top = _ranked(context, k)
    first = {**entry(*top[0]), "top_logprobs": [entry(t, lp) for t, lp in top]}
    return {"choices": [{"index": 0, "text": VOCAB[top[0][0]], "logprobs": {"content": [first]}}]}


def legacy_answer(context: list[int], k: int) -> dict[str, Any]:
    """A one-token completion in the legacy shape (llama-cpp-python): top-k as a dict by
    token text (the sampled token included)."""
    top = _ranked(context, k)
    tops: dict[str, float] = {}
    for t, lp in top:
        tops.setdefault(VOCAB[t], lp)
    lp = {"tokens": [VOCAB[top[0][0]]], "token_logprobs": [top[0][1]], "top_logprobs": [tops]}
    lp["text_offset"] = [0]
    return {"choices": [{"index": 0, "text": VOCAB[top[0][0]], "logprobs": lp}]}


def ollama_answer(context: list[int], k: int) -> dict[str, Any]:
    """A one-token ``/api/generate`` answer (Ollama >= 0.12.11: top-level ``logprobs``
    entries with ``top_logprobs``; at most 20 alternatives)."""

    def entry(tok: int, lp: float) -> dict[str, Any]:
        return {"token": VOCAB[tok], "logprob": lp, "bytes": list(VOCAB[tok].encode())}

    top = _ranked(context, min(k, 20))
    first = {**entry(*top[0]), "top_logprobs": [entry(t, lp) for t, lp in top]}
    return {"model": "m", "response": VOCAB[top[0][0]], "done": True, "logprobs": [first]}
