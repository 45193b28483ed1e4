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
from logprob_eval.scoring.parsing import parse_completion_echo, parse_completion_positions

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


def test_streamed_chunks_with_choices_not_a_list_are_named():
    # found by the property above: a chunk whose "choices" is not a list raised TypeError
    with pytest.raises(ResponseFormatError, match=r"'\[1\]\.choices' must be a list, got bool"):
        parse_openai_chat([{"choices": []}, {"choices": True}])


def test_completion_generation_positions_keep_their_own_values():
    """A legacy /v1/completions body with generated log-probs, hand-written in the shape of
    OpenAI's API reference (unit-test data, not a recording)."""
    body = {
        "object": "text_completion",
        "choices": [
            {
                "index": 0,
                "text": " Sports, Art",
                "logprobs": {
                    "tokens": [" Sports", ",", " Art"],
                    "token_logprobs": [-0.25, -0.75, -1.5],
                    "top_logprobs": [
                        {" Sports": -0.25, " Art": -2.0},
                        {",": -0.75, " and": -1.0},
                        {" Art": -1.5, " Food": -1.75},
                    ],
                    "text_offset": [0, 7, 8],
                },
                "finish_reason": "length",
            }
        ],
    }
    got = parse_completion_positions(body)
    assert [(p.token, p.logprob) for p in got] == [(" Sports", -0.25), (",", -0.75), (" Art", -1.5)]
    assert [[(a.token, a.logprob) for a in p.top_logprobs] for p in got] == [
        [(" Sports", -0.25), (" Art", -2.0)],
        [(",", -0.75), (" and", -1.0)],
        [(" Art", -1.5), (" Food", -1.75)],
    ]


_token = st.text(st.sampled_from(list("ab ,xyz")), min_size=1, max_size=3)
_lp = st.floats(min_value=-30.0, max_value=0.0, allow_nan=False)


@given(st.lists(st.tuples(_token, _lp, st.dictionaries(_token, _lp, max_size=4)), max_size=8))
def test_completion_positions_round_trip(steps):
    """Whatever well-formed body goes in, position j holds token j, log-prob j and the
    alternatives listed at j (not a neighbour's)."""
    body = {
        "choices": [
            {
                "text": "".join(t for t, _, _ in steps),
                "logprobs": {
                    "tokens": [t for t, _, _ in steps],
                    "token_logprobs": [lp for _, lp, _ in steps],
                    "top_logprobs": [top for _, _, top in steps],
                    "text_offset": [
                        sum(len(t) for t, _, _ in steps[:j]) for j in range(len(steps))
                    ],
                },
            }
        ]
    }
    got = parse_completion_positions(body)
    assert [(p.token, p.logprob) for p in got] == [(t, lp) for t, lp, _ in steps]
    assert [{a.token: a.logprob for a in p.top_logprobs} for p in got] == [
        top for _, _, top in steps
    ]


@given(st.lists(st.tuples(_token, _lp, st.dictionaries(_token, _lp, max_size=4)), max_size=8))
def test_chat_positions_round_trip(steps):
    body = {
        "choices": [
            {
                "message": {"role": "assistant", "content": "".join(t for t, _, _ in steps)},
                "logprobs": {
                    "content": [
                        {
                            "token": t,
                            "logprob": lp,
                            "top_logprobs": [{"token": k, "logprob": v} for k, v in top.items()],
                        }
                        for t, lp, top in steps
                    ]
                },
            }
        ]
    }
    got = parse_openai_chat(body)
    assert [(p.token, p.logprob) for p in got] == [(t, lp) for t, lp, _ in steps]
    assert [{a.token: a.logprob for a in p.top_logprobs} for p in got] == [
        top for _, _, top in steps
    ]
