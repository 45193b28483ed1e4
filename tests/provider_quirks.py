"""Small response bodies, one per provider quirk, written by hand from the documented shapes.

Unit-test data only: these are NOT recordings. Each is written from the shape the provider
documents (or the issue thread that reported it shows) so that the behaviour is tested
without ``../shared/real-responses``; the numbers are made up.
"""

from __future__ import annotations

import math
from typing import Any


def chat(content: Any, **logprobs: Any) -> dict[str, Any]:
    """An OpenAI chat completion around ``logprobs.content`` (OpenAI API reference shape)."""
    return {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x"},
                "logprobs": {"content": content, **logprobs},
                "finish_reason": "stop",
            }
        ],
    }


def entry(token: str, logprob: float, top: list[tuple[str, float]] | None = None) -> dict:
    return {
        "token": token,
        "logprob": logprob,
        "top_logprobs": [{"token": t, "logprob": v} for t, v in (top or [])],
    }


# 1. a sampled token ranked below the top-2 (temperature sampling)
# OpenAI gives it as the position's token only; vLLM appends it to the top-k list.
OUTSIDE_TOP_K_OPENAI = chat([entry("Most", -6.9, [("I", -2.2), ("The", -3.5)])])
OUTSIDE_TOP_K_VLLM = chat([entry("Most", -6.9, [("Most", -6.9), ("I", -2.2), ("The", -3.5)])])

# 2. vLLM echo of a prompt whose tokenizer adds BOS: "</s>" is in tokens and counted in
# text_offset, but not in text (legacy completions shape, echo=true, logprobs=0)
VLLM_ECHO_BOS = {
    "object": "text_completion",
    "choices": [
        {
            "index": 0,
            "text": "Topic: Sports",
            "logprobs": {
                "tokens": ["</s>", "Topic", ":", " Sports"],
                "token_logprobs": [None, -7.0, -1.0, -2.5],
                "text_offset": [0, 4, 9, 10],
                "top_logprobs": None,
            },
            "finish_reason": "length",
        }
    ],
}

# 3. sentinels: vLLM and OpenAI clamp -inf to -9999.0; sglang pads lists with float32 lowest
SENTINELS = chat(
    [entry("Yes", -0.01, [("Yes", -0.01), ("No", -9999.0), ("", -3.4028234663852886e38)])]
)

# 4. a character split over tokens: OpenAI writes the pieces as "bytes:\\x.." strings and
# gives their bytes; "日本" is e6 97 a5 e6 9c ac in UTF-8
SPLIT_CHARACTER = chat(
    [
        {
            "token": "bytes:\\xe6\\x97",
            "logprob": -0.5,
            "bytes": [0xE6, 0x97],
            "top_logprobs": [
                {"token": "bytes:\\xe6\\x97", "logprob": -0.5, "bytes": [0xE6, 0x97]},
                {"token": "中", "logprob": -1.5, "bytes": [0xE4, 0xB8, 0xAD]},
            ],
        },
        {
            "token": "bytes:\\xa5",
            "logprob": -0.1,
            "bytes": [0xA5],
            "top_logprobs": [{"token": "bytes:\\xa5", "logprob": -0.1, "bytes": [0xA5]}],
        },
        {
            "token": "本",
            "logprob": -0.2,
            "bytes": [0xE6, 0x9C, 0xAC],
            "top_logprobs": [{"token": "本", "logprob": -0.2, "bytes": [0xE6, 0x9C, 0xAC]}],
        },
    ]
)

# 5. other shapes
REFUSAL = {
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": "I can't help."},
            "logprobs": {"content": None, "refusal": [entry("I", -0.1)]},
            "finish_reason": "stop",
        }
    ],
}
TOOL_CALL = {
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
}
LOGPROBS_IGNORED = {
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Sports"}, "logprobs": None}
    ],
}
STREAM_CHUNKS = [
    {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None}],
    },
    {
        "object": "chat.completion.chunk",
        "choices": [
            {
                "index": 0,
                "delta": {"content": " Sp"},
                "logprobs": {"content": [entry(" Sp", -0.3, [(" Sp", -0.3), (" Art", -2.0)])]},
            }
        ],
    },
    {
        "object": "chat.completion.chunk",
        "choices": [
            {
                "index": 0,
                "delta": {"content": "orts"},
                "logprobs": {"content": [entry("orts", -0.1, [("orts", -0.1)])]},
            }
        ],
    },
]
# Together answers chat requests with logprobs: 1 in the legacy completions shape
LEGACY_CHAT = {
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Sports"},
            "logprobs": {"tokens": [" Sp", "orts"], "token_logprobs": [-0.3, -0.1]},
        }
    ],
}
# lmdeploy lists raw byte-level BPE pieces: "Ġ" stands for a space, "Ċ" for a newline
BYTE_LEVEL = chat([entry("Sports", -0.3, [("Sports", -0.3), ("ĠSports", -2.0), ("ĊArt", -3.0)])])
# TGI and Together with top_p < 1: log-probs of the truncated distribution
TRUNCATED_ONE_ENTRY = chat([entry("Sports", 0.0, [("Sports", 0.0)])])
TRUNCATED_ABOVE_ONE = chat([entry("Sports", -0.1, [("Sports", -0.1), ("Art", -0.5)])])

# -- the bound's evidence (issue 23): lists that are no slice of a full distribution ----------
# TGI with top_p < 1: a single entry at log-prob 0.0 (the truncated distribution's only token)
TGI_SINGLE_ENTRY = chat([entry("Deep", 0.0, [("Deep", 0.0)])])
# Ollama's API examples: probabilities that sum past 1 (0.905 + 0.368 = 1.27)
OLLAMA_PAST_ONE = {
    "model": "example",
    "message": {"role": "assistant", "content": "Hello"},
    "logprobs": [entry("Hello", -0.1, [("Hello", -0.1), ("Hi", -1.0)])],
}
# LM Studio rounds probabilities to multiples of 0.25: 0.5 + 0.25 + 0.25 = 1 exactly, and
# 0.75 + 0.5 = 1.25
LMSTUDIO_ROUNDED_TO_ONE = chat(
    [
        entry(
            "Sports",
            math.log(0.5),
            [("Sports", math.log(0.5)), ("Art", math.log(0.25)), ("Food", math.log(0.25))],
        )
    ]
)
LMSTUDIO_ROUNDED_PAST_ONE = chat(
    [entry("Sports", math.log(0.75), [("Sports", math.log(0.75)), ("Art", math.log(0.5))])]
)

# Padding fillers in a top-k list: not listed tokens. sglang pads with float32's lowest;
# vLLM and OpenAI clamp -inf to -9999.0; -inf itself (Python servers print -Infinity);
# other huge negative fillers.
FILLERS = {
    "float32-lowest": -3.4028234663852886e38,
    "huge-negative": -1e30,
    "-inf": -math.inf,
    "-9999": -9999.0,
}


def padded(filler: float, top: list[tuple[str, float]], n: int = 3) -> dict[str, Any]:
    """A chat body whose one position lists ``top`` (the sampled token first), then ``n``
    fillers at ``filler``."""
    token, logprob = top[0]
    fillers = [(f"<pad{j}>", filler) for j in range(n)]
    return chat([entry(token, logprob, [*top, *fillers])])
