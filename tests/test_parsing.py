"""Parsers. Response bodies here are hand-written from the OpenAI and Ollama API docs
(unit-test data, not recordings)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logprob_eval import ResponseFormatError, parse_ollama, parse_openai_chat, parse_positions
from logprob_eval.errors import LogprobEvalError
from logprob_eval.parsing import parse_completion_echo, parse_completion_positions

from .api_bodies import OLLAMA_GENERATE, OPENAI_CHAT


def test_openai_chat_shape():
    [p] = parse_openai_chat(OPENAI_CHAT)
    assert p.token == "Sports"
    assert p.logprob == -0.01
    assert p.bytes == (83, 112, 111, 114, 116, 115)
    assert [a.token for a in p.top_logprobs] == ["Sports", "Health"]


def test_openai_sdk_objects_are_accepted():
    class Obj:
        def model_dump(self) -> dict[str, Any]:
            return copy.deepcopy(OPENAI_CHAT)

    assert parse_openai_chat(Obj())[0].token == "Sports"


def test_ollama_shape():
    [p] = parse_ollama(OLLAMA_GENERATE)
    assert (p.token, p.logprob, len(p.top_logprobs)) == ("Sports", -0.02, 2)


def test_openai_missing_logprobs_explains_reasoning_models():
    body = copy.deepcopy(OPENAI_CHAT)
    body["choices"][0]["logprobs"] = None
    with pytest.raises(ResponseFormatError, match=r"choices\[0\]\.logprobs.*logprobs=True") as ei:
        parse_openai_chat(body)
    assert ei.value.field == "choices[0].logprobs"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("choices"), "choices"),
        (lambda b: b["choices"][0]["logprobs"].pop("content"), "choices[0].logprobs.content"),
        (
            lambda b: b["choices"][0]["logprobs"]["content"][0].pop("logprob"),
            "choices[0].logprobs.content[0].logprob",
        ),
        (
            lambda b: b["choices"][0]["logprobs"]["content"][0].update(token=5),
            "choices[0].logprobs.content[0].token",
        ),
        (
            lambda b: b["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1].update(
                logprob=None
            ),
            "choices[0].logprobs.content[0].top_logprobs[1].logprob",
        ),
        (
            lambda b: b["choices"][0]["logprobs"]["content"][0].update(bytes=[300]),
            "choices[0].logprobs.content[0].bytes",
        ),
        (
            lambda b: b["choices"][0]["logprobs"]["content"][0].update(top_logprobs="x"),
            "choices[0].logprobs.content[0].top_logprobs",
        ),
    ],
)
def test_openai_malformed_fields_are_named(mutate, field):
    body = copy.deepcopy(OPENAI_CHAT)
    mutate(body)
    with pytest.raises(ResponseFormatError) as ei:
        parse_openai_chat(body)
    assert ei.value.field == field
    assert repr(field)[1:-1] in str(ei.value)


def test_ollama_without_logprobs_names_the_version():
    body = {k: v for k, v in OLLAMA_GENERATE.items() if k != "logprobs"}
    with pytest.raises(ResponseFormatError, match=r"0\.12\.11"):
        parse_ollama(body)


def test_ollama_error_body():
    with pytest.raises(ResponseFormatError, match="model 'x' not found"):
        parse_ollama({"error": "model 'x' not found"})


def test_nan_and_positive_logprobs_rejected():
    with pytest.raises(ResponseFormatError, match="NaN"):
        parse_positions([{"token": "a", "logprob": float("nan")}])
    with pytest.raises(ResponseFormatError, match="> 0"):
        parse_positions([{"token": "a", "logprob": 0.5}])


def test_tiny_positive_float_noise_is_clamped():
    [p] = parse_positions([{"token": "a", "logprob": 1e-7}])
    assert p.logprob == 0.0


def test_missing_top_logprobs_means_none_listed():
    [p] = parse_positions([{"token": "a", "logprob": -1.0}])
    assert p.top_logprobs == ()
    assert [a.token for a in p.alternatives] == ["a"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


@given(json_values)
@pytest.mark.parametrize(
    "parser",
    [
        parse_openai_chat,
        parse_ollama,
        parse_positions,
        parse_completion_echo,
        parse_completion_positions,
    ],
)
def test_parsers_raise_only_library_errors(parser, value):
    try:
        parser(value)
    except LogprobEvalError as exc:
        assert str(exc)
