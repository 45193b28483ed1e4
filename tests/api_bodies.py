"""Response bodies written by hand from the OpenAI and Ollama API documentation.

Unit-test data only: these are NOT recordings. Recorded traffic lives in cassettes/.
"""

from __future__ import annotations

from typing import Any

OPENAI_CHAT: dict[str, Any] = {
    "id": "chatcmpl-doc-example",
    "object": "chat.completion",
    "model": "gpt-4.1-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Sports"},
            "logprobs": {
                "content": [
                    {
                        "token": "Sports",
                        "logprob": -0.01,
                        "bytes": [83, 112, 111, 114, 116, 115],
                        "top_logprobs": [
                            {
                                "token": "Sports",
                                "logprob": -0.01,
                                "bytes": [83, 112, 111, 114, 116, 115],
                            },
                            {
                                "token": "Health",
                                "logprob": -4.7,
                                "bytes": [72, 101, 97, 108, 116, 104],
                            },
                        ],
                    },
                ],
                "refusal": None,
            },
            "finish_reason": "stop",
        }
    ],
}

OLLAMA_GENERATE: dict[str, Any] = {
    "model": "llama3.2",
    "response": "Sports",
    "done": True,
    "logprobs": [
        {
            "token": "Sports",
            "logprob": -0.02,
            "bytes": [83, 112, 111, 114, 116, 115],
            "top_logprobs": [
                {"token": "Sports", "logprob": -0.02},
                {"token": "Travel", "logprob": -4.1},
            ],
        },
    ],
}


def completion_echo(
    prompts: list[str], tokenised: list[list[str]], logprobs: list[list[float]], model: str = "m"
) -> dict[str, Any]:
    """A legacy /v1/completions body with echo=true, max_tokens=0, in OpenAI's documented shape."""
    choices = []
    for i, (text, toks, lps) in enumerate(zip(prompts, tokenised, logprobs, strict=True)):
        assert "".join(toks) == text
        offs, pos = [], 0
        for t in toks:
            offs.append(pos)
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
        "id": "cmpl-doc-example",
        "object": "text_completion",
        "model": model,
        "choices": choices,
    }
