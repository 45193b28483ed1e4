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


# -- Gemini: written from the provider's API reference (generateContent, LogprobsResult) -----
# Not a recording. Shape: candidates[].logprobsResult.{topCandidates[].candidates[],
# chosenCandidates[]} of {token, tokenId, logProbability}; a zero logProbability is omitted
# (proto3 JSON), as the "Sports" step below shows.

GEMINI_GENERATE: dict[str, Any] = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Sports, Health"}], "role": "model"},
            "finishReason": "STOP",
            "avgLogprobs": -0.45,
            "logprobsResult": {
                "topCandidates": [
                    {
                        "candidates": [
                            {"token": "Sports", "tokenId": 61024, "logProbability": -0.1},
                            {"token": "Health", "tokenId": 31412, "logProbability": -3.2},
                            {"token": "Sport", "tokenId": 48213, "logProbability": -4.0},
                        ]
                    },
                    {"candidates": [{"token": ",", "tokenId": 236764}]},
                    {
                        "candidates": [
                            {"token": " Health", "tokenId": 19734, "logProbability": -0.8},
                            {"token": " Art", "tokenId": 6522, "logProbability": -1.1},
                        ]
                    },
                ],
                "chosenCandidates": [
                    {"token": "Sports", "tokenId": 61024, "logProbability": -0.1},
                    {"token": ",", "tokenId": 236764},
                    {"token": " Health", "tokenId": 19734, "logProbability": -0.8},
                ],
            },
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15},
    "modelVersion": "gemini-2.0-flash",
}

GEMINI_PROMPT_BLOCKED: dict[str, Any] = {
    "promptFeedback": {
        "blockReason": "SAFETY",
        "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}],
    },
    "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
    "modelVersion": "gemini-2.0-flash",
}

GEMINI_ANSWER_BLOCKED: dict[str, Any] = {
    "candidates": [
        {
            "finishReason": "SAFETY",
            "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
            ],
            "index": 0,
        }
    ],
    "modelVersion": "gemini-2.0-flash",
}


def gemini_error(code: int, status: str, message: str, details: list[Any] | None = None) -> Any:
    """The google.rpc.Status error body the Gemini API answers with."""
    return {"error": {"code": code, "message": message, "status": status, "details": details or []}}


# -- OpenAI Responses: written from the provider's API reference (POST /v1/responses) ------
# Not a recording. output[].content[] of type output_text carries logprobs when the request
# says include=["message.output_text.logprobs"].

OPENAI_RESPONSES: dict[str, Any] = {
    "id": "resp_doc_example",
    "object": "response",
    "status": "completed",
    "model": "gpt-4.1-mini-2025-04-14",
    "output": [
        {
            "type": "message",
            "id": "msg_doc_example",
            "status": "completed",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "Sports",
                    "annotations": [],
                    "logprobs": [
                        {
                            "token": "Sports",
                            "logprob": -0.02,
                            "bytes": [83, 112, 111, 114, 116, 115],
                            "top_logprobs": [
                                {
                                    "token": "Sports",
                                    "logprob": -0.02,
                                    "bytes": [83, 112, 111, 114, 116, 115],
                                },
                                {
                                    "token": "Health",
                                    "logprob": -4.1,
                                    "bytes": [72, 101, 97, 108, 116, 104],
                                },
                            ],
                        }
                    ],
                }
            ],
        }
    ],
    "incomplete_details": None,
    "error": None,
    "usage": {"input_tokens": 20, "output_tokens": 1, "total_tokens": 21},
}

OPENAI_RESPONSES_REFUSAL: dict[str, Any] = {
    **OPENAI_RESPONSES,
    "output": [
        {
            "type": "message",
            "id": "msg_doc_refusal",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "I'm sorry, I can't help with that."}],
        }
    ],
}
