"""The OpenAI Responses backend and Anthropic's typed answer, against loopback servers.

Bodies are written from the provider's API reference (``api_bodies.py``, marked there):
there is no recorded Responses API body in ``../shared/real-responses``.
"""

from __future__ import annotations

import copy
import json

import pytest
from werkzeug import Response

from logprob_eval.backends import get_backend
from logprob_eval.backends.openai_responses import OpenAIResponsesBackend
from logprob_eval.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ContentBlockedError,
    LogprobsUnsupportedError,
    RateLimitedError,
    ResponseFormatError,
    UnknownNameError,
)

from .api_bodies import OPENAI_RESPONSES, OPENAI_RESPONSES_REFUSAL

LABELS = ["Sports", "Health", "Art"]
FAKE_KEY = "sk-test-" + "r1e2s3p4o5n6s7e8s9x0"


@pytest.fixture
def responses(httpserver, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    b = get_backend("openai-responses:gpt-4.1-mini", base_url=httpserver.url_for("/v1"), timeout=2)
    yield b
    b.close()


def test_scores_labels_and_asks_for_logprobs_through_include(httpserver, responses):
    httpserver.expect_request("/v1/responses", method="POST").respond_with_json(OPENAI_RESPONSES)
    scores = responses.score("Text: a goal\nTopic:", LABELS)
    assert (scores["Sports"].status, scores["Sports"].logprob) == ("exact", pytest.approx(-0.02))
    assert scores["Health"].logprob == pytest.approx(-4.1)
    assert scores["Art"].status == "upper_bound"
    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent["include"] == ["message.output_text.logprobs"]
    assert (sent["top_logprobs"], sent["temperature"], sent["max_output_tokens"]) == (20, 0, 16)
    assert sent["input"] == [{"role": "user", "content": "Text: a goal\nTopic:"}]
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {FAKE_KEY}"


def test_openai_spec_with_api_responses_is_the_same_backend(httpserver, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    httpserver.expect_request("/v1/responses").respond_with_json(OPENAI_RESPONSES)
    with get_backend(
        "openai:gpt-4.1-mini", api="responses", base_url=httpserver.url_for("/v1")
    ) as b:
        assert isinstance(b, OpenAIResponsesBackend)
        assert b.spec == "openai-responses:gpt-4.1-mini"
        assert b.score("p", LABELS)["Sports"].logprob == pytest.approx(-0.02)
    with get_backend("openai:gpt-4.1-mini", api="chat") as b:
        assert type(b).__name__ == "OpenAIChatBackend"
    with pytest.raises(UnknownNameError, match="unknown OpenAI api 'batch'"):
        get_backend("openai:gpt-4.1-mini", api="batch")
    with pytest.raises(ConfigError, match="applies to openai: specs only"):
        get_backend("ollama:llama3.2", api="responses")


def test_answer_in_several_output_text_parts_after_a_reasoning_item(httpserver, responses):
    body = copy.deepcopy(OPENAI_RESPONSES)
    message = body["output"][0]
    second = copy.deepcopy(message["content"][0])
    second["text"] = ", Art"
    second["logprobs"] = [
        {"token": ",", "logprob": 0.0, "top_logprobs": []},
        {"token": " Art", "logprob": -0.3, "top_logprobs": [{"token": " Art", "logprob": -0.3}]},
    ]
    message["content"].append(second)
    body["output"].insert(0, {"type": "reasoning", "id": "rs_1", "summary": []})
    httpserver.expect_request("/v1/responses").respond_with_json(body)
    scores = responses.score("p", LABELS)
    assert (scores["Art"].status, scores["Art"].start) == ("exact", 2)
    assert scores["Art"].logprob == pytest.approx(-0.3)


@pytest.mark.parametrize("model", ["o3-mini", "o4-mini", "gpt-5", "gpt-5-nano"])
def test_reasoning_models_are_refused_before_any_request(model, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    with pytest.raises(LogprobsUnsupportedError, match=f"openai-responses:{model}"):
        get_backend(f"openai-responses:{model}", base_url="http://127.0.0.1:9/v1")


def test_max_tokens_below_the_api_minimum_is_refused(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    with pytest.raises(ConfigError, match=r"max_tokens=8 is below.*minimum.*16"):
        get_backend("openai-responses:gpt-4.1-mini", max_tokens=8)


def test_refusal_is_typed(httpserver, responses):
    httpserver.expect_request("/v1/responses").respond_with_json(OPENAI_RESPONSES_REFUSAL)
    with pytest.raises(ContentBlockedError, match="the model refused to answer") as ei:
        responses.score("p", LABELS)
    assert not ei.value.retriable


@pytest.mark.parametrize(
    ("mutate", "err", "text"),
    [
        (
            lambda b: b["output"][0]["content"][0].pop("logprobs"),
            ResponseFormatError,
            r"include=\['message\.output_text\.logprobs'\]",
        ),
        (
            lambda b: b["output"][0]["content"][0].update(logprobs=[]),
            ResponseFormatError,
            "missing or empty for a non-empty answer",
        ),
        (lambda b: b.pop("output"), ResponseFormatError, "'output' is missing"),
        (
            lambda b: b.update(
                output=[{"type": "reasoning", "id": "rs"}],
                status="incomplete",
                incomplete_details={"reason": "max_output_tokens"},
            ),
            ResponseFormatError,
            r"no message item \(incomplete: max_output_tokens\).*raise max_tokens",
        ),
        (
            lambda b: b["output"][0]["content"][0]["logprobs"][0].update(logprob="high"),
            ResponseFormatError,
            r"output\[0\]\.content\[0\]\.logprobs\[0\]\.logprob",
        ),
        (
            lambda b: b.update(status="failed", error={"code": "server_error", "message": "x"}),
            BackendUnavailableError,
            "the response failed",
        ),
        (
            lambda b: b.update(status="failed", error={"code": "invalid_prompt", "message": "x"}),
            BackendError,
            "the response failed \\(invalid_prompt",
        ),
    ],
)
def test_no_logprobs_and_malformed_answers_are_typed(httpserver, responses, mutate, err, text):
    body = copy.deepcopy(OPENAI_RESPONSES)
    mutate(body)
    httpserver.expect_request("/v1/responses").respond_with_json(body)
    with pytest.raises(err, match=text) as ei:
        responses.score("p", LABELS)
    assert "openai-responses:gpt-4.1-mini" in str(ei.value)


def test_empty_answer_scores_missing(httpserver, responses):
    body = copy.deepcopy(OPENAI_RESPONSES)
    body["output"][0]["content"][0].update(text="", logprobs=[])
    httpserver.expect_request("/v1/responses").respond_with_json(body)
    assert {s.status for s in responses.score("p", LABELS).values()} == {"missing"}


def _error(status, message, code=None, headers=None):
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return Response(
        json.dumps(body), status=status, headers=headers or {}, content_type="application/json"
    )


@pytest.mark.parametrize(
    ("response", "err", "text"),
    [
        (
            _error(400, "Unsupported parameter: 'top_logprobs'.", "unsupported_parameter"),
            LogprobsUnsupportedError,
            "logprobs unsupported for openai-responses:gpt-4.1-mini",
        ),
        (_error(400, "Invalid 'input'."), BackendError, "HTTP 400: request rejected"),
        (
            _error(401, f"Incorrect API key provided: {FAKE_KEY}."),
            BackendError,
            "HTTP 401: authentication failed.*set OPENAI_API_KEY",
        ),
        (_error(403, "Project does not have access"), BackendError, "HTTP 403: authentication"),
        (_error(404, "The model `x` does not exist"), BackendError, "check the model name"),
        (
            _error(429, "Rate limit reached", headers={"Retry-After": "3"}),
            RateLimitedError,
            "HTTP 429: rate limited",
        ),
        (_error(500, "server had an error"), BackendUnavailableError, "HTTP 500: server error"),
        (_error(503, "overloaded"), BackendUnavailableError, "HTTP 503: server error"),
        (
            Response('{"output": [{"type": "message", "con', status=200),
            BackendUnavailableError,
            "not valid JSON",
        ),
    ],
)
def test_http_failures_are_typed(httpserver, responses, response, err, text):
    httpserver.expect_request("/v1/responses").respond_with_response(response)
    with pytest.raises(err, match=text) as ei:
        responses.score("p", LABELS)
    assert FAKE_KEY not in str(ei.value)
    if err is RateLimitedError:
        assert ei.value.retry_after == 3.0


# Anthropic --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [None, "generation", "exact"])
def test_anthropic_is_a_typed_error_naming_the_alternatives(httpserver, method):
    options = {"method": method} if method else {}
    with pytest.raises(LogprobsUnsupportedError) as ei:
        get_backend("anthropic:claude-sonnet-4-5", base_url=httpserver.url_for("/v1"), **options)
    msg = str(ei.value)
    assert msg.startswith("logprobs unsupported for anthropic:claude-sonnet-4-5:")
    assert "returns no log-probabilities" in msg
    for alternative in ("gemini:", "openai:", "local:gemma-3-270m", "openai-compatible:"):
        assert alternative in msg
    assert ei.value.backend == "anthropic:claude-sonnet-4-5"
    assert httpserver.log == []  # raised before any request
