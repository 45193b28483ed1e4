"""The Gemini backend against a loopback HTTP server (pytest-httpserver).

Bodies are written from the provider's API reference (``api_bodies.py``, marked there):
there is no recorded Gemini body in ``../shared/real-responses``.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from werkzeug import Response

from logprob_eval.backends import get_backend
from logprob_eval.backends.gemini import parse_gemini
from logprob_eval.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ContentBlockedError,
    LogprobsUnsupportedError,
    MissingDependencyError,
    RateLimitedError,
    ResponseFormatError,
)
from logprob_eval.server.process import free_port

from .api_bodies import GEMINI_ANSWER_BLOCKED, GEMINI_GENERATE, GEMINI_PROMPT_BLOCKED, gemini_error

LABELS = ["Sports", "Health", "Art", "Food"]
FAKE_KEY = "AIza" + "SyFAKE0fake1fake2fake3fake4fake5fa"  # Google key shape, not a key
PATH = "/v1beta/models/gemini-2.0-flash:generateContent"


@pytest.fixture
def gemini(httpserver, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    b = get_backend("gemini:gemini-2.0-flash", base_url=httpserver.url_for("/v1beta"), timeout=2)
    yield b
    b.close()


def test_scores_labels_and_sends_logprob_config_with_the_key_in_a_header(httpserver, gemini):
    httpserver.expect_request(PATH, method="POST").respond_with_json(GEMINI_GENERATE)
    scores = gemini.score("Text: a match\nTopics:", LABELS)
    # "Sports" sampled (-0.1), "Sport" a listed prefix (-4.0): their mass adds, an upper bound
    assert scores["Sports"].status == "upper_bound"
    assert scores["Sports"].logprob == pytest.approx(math.log(math.exp(-0.1) + math.exp(-4.0)))
    # " Health" sampled after the comma: exact, conditional on "Sports,"
    assert (scores["Health"].status, scores["Health"].start) == ("exact", 2)
    assert scores["Health"].logprob == pytest.approx(-0.8)
    assert scores["Art"].logprob == pytest.approx(-1.1)  # an alternative at step 2
    assert scores["Food"].status == "upper_bound"  # not listed: bounded by the smallest listed
    assert scores["Food"].logprob == pytest.approx(-4.0)
    request = httpserver.log[0][0]
    assert request.headers["x-goog-api-key"] == FAKE_KEY
    assert "key=" not in request.url  # never in the URL (messages quote URLs)
    sent = json.loads(request.get_data())
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Text: a match\nTopics:"}]}]
    cfg = sent["generationConfig"]
    assert (cfg["responseLogprobs"], cfg["logprobs"], cfg["temperature"]) == (True, 20, 0)


def test_parser_reads_omitted_zero_logprob_as_certain_token():
    positions = parse_gemini(GEMINI_GENERATE)
    assert [p.token for p in positions] == ["Sports", ",", " Health"]
    assert positions[1].logprob == 0.0
    assert [a.token for a in positions[2].top_logprobs] == [" Health", " Art"]


def test_empty_logprobs_result_scores_every_label_missing(httpserver, gemini):
    body = copy.deepcopy(GEMINI_GENERATE)
    body["candidates"][0]["logprobsResult"] = {}
    body["candidates"][0]["content"] = {"parts": [{"text": ""}], "role": "model"}
    httpserver.expect_request(PATH).respond_with_json(body)
    scores = gemini.score("p", LABELS)
    assert {s.status for s in scores.values()} == {"missing"}
    assert all(s.logprob == -math.inf for s in scores.values())


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (GEMINI_PROMPT_BLOCKED, "the prompt was blocked by the provider \\(reason SAFETY\\)"),
        (GEMINI_ANSWER_BLOCKED, "the answer was blocked by the provider \\(reason SAFETY\\)"),
    ],
)
def test_safety_blocked_prompt_and_answer_are_typed(httpserver, gemini, body, text):
    httpserver.expect_request(PATH).respond_with_json(body)
    with pytest.raises(ContentBlockedError, match=text) as ei:
        gemini.score("p", LABELS)
    assert not ei.value.retriable


def test_answer_without_logprobs_result_names_the_model(httpserver, gemini):
    body = copy.deepcopy(GEMINI_GENERATE)
    del body["candidates"][0]["logprobsResult"]
    httpserver.expect_request(PATH).respond_with_json(body)
    with pytest.raises(
        LogprobsUnsupportedError, match=r"gemini:gemini-2\.0-flash.*no logprobsResult"
    ):
        gemini.score("p", LABELS)


@pytest.mark.parametrize("model", ["gemini-2.5-pro", "gemini-2.0-flash-thinking-exp-01-21"])
def test_known_refusing_models_are_refused_before_any_request(model, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    with pytest.raises(LogprobsUnsupportedError, match=f"gemini:{model}.*gemini-2.0-flash"):
        get_backend(f"gemini:{model}", base_url=f"http://127.0.0.1:{free_port()}")


def test_bad_options_and_missing_key(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
    with pytest.raises(BackendError, match="set GEMINI_API_KEY \\(or GOOGLE_API_KEY\\)"):
        get_backend("gemini:gemini-2.0-flash")
    monkeypatch.setenv("GOOGLE_API_KEY", FAKE_KEY)  # the second variable is honoured
    get_backend("gemini:gemini-2.0-flash").close()
    for bad in (0, 21):
        with pytest.raises(ConfigError, match=f"top_logprobs={bad} must be between 1 and 20"):
            get_backend("gemini:gemini-2.0-flash", top_logprobs=bad)
    with pytest.raises(ConfigError, match="method='exact' is not available"):
        get_backend("gemini:gemini-2.0-flash", method="exact")


def test_vertex_ai_endpoint_and_bearer_token(httpserver, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    b = get_backend("gemini:gemini-2.0-flash", vertex=True, project="p1", access_token="tok")
    assert b.url == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1"
        "/publishers/google/models/gemini-2.0-flash:generateContent"
    )
    b.close()
    path = "/v1/projects/p1/locations/l/publishers/google/models/gemini-2.0-flash:generateContent"
    httpserver.expect_request(path).respond_with_json(GEMINI_GENERATE)
    base = httpserver.url_for("/v1/projects/p1/locations/l/publishers/google")
    with get_backend(
        "gemini:gemini-2.0-flash", vertex=True, project="p1", access_token="tok", base_url=base
    ) as b:
        assert b.score("p", LABELS)["Art"].logprob == pytest.approx(-1.1)
    assert httpserver.log[0][0].headers["Authorization"] == "Bearer tok"
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        get_backend("gemini:gemini-2.0-flash", vertex=True, access_token="tok")


def test_vertex_without_token_or_google_auth_names_the_pip_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_google(name, *args, **kwargs):
        if name.startswith("google"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_google)
    with pytest.raises(MissingDependencyError, match="pip install 'google-auth>=2'"):
        get_backend("gemini:gemini-2.0-flash", vertex=True, project="p1")


def _err(status, body, headers=None):
    return Response(
        json.dumps(body), status=status, headers=headers or {}, content_type="application/json"
    )


RETRY_INFO = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]


@pytest.mark.parametrize(
    ("response", "err", "text"),
    [
        (
            _err(
                400,
                gemini_error(
                    400, "INVALID_ARGUMENT", "Logprobs is not enabled for models/gemini-2.0-flash"
                ),
            ),
            LogprobsUnsupportedError,
            "logprobs unsupported for gemini:gemini-2.0-flash: Logprobs is not enabled",
        ),
        (
            _err(
                400,
                gemini_error(
                    400,
                    "INVALID_ARGUMENT",
                    f"API key not valid. Please pass a valid API key. key={FAKE_KEY}",
                    [{"reason": "API_KEY_INVALID"}],
                ),
            ),
            BackendError,
            "HTTP 400: authentication failed.*set GEMINI_API_KEY",
        ),
        (
            _err(400, gemini_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")),
            BackendError,
            "HTTP 400: request rejected",
        ),
        (
            _err(401, gemini_error(401, "UNAUTHENTICATED", "Request had invalid credentials.")),
            BackendError,
            "HTTP 401: authentication failed",
        ),
        (
            _err(403, gemini_error(403, "PERMISSION_DENIED", f"Method doesn't allow {FAKE_KEY}")),
            BackendError,
            "HTTP 403: authentication failed",
        ),
        (
            _err(404, gemini_error(404, "NOT_FOUND", "models/gemini-x is not found")),
            BackendError,
            "HTTP 404: not found.*check the model name",
        ),
        (
            _err(429, gemini_error(429, "RESOURCE_EXHAUSTED", "quota"), {"Retry-After": "7"}),
            RateLimitedError,
            "HTTP 429: rate limited",
        ),
        (
            _err(500, gemini_error(500, "INTERNAL", "An internal error has occurred.")),
            BackendUnavailableError,
            "HTTP 500: server error",
        ),
        (
            _err(503, gemini_error(503, "UNAVAILABLE", "The model is overloaded.")),
            BackendUnavailableError,
            "HTTP 503: server error",
        ),
        (
            Response('{"candidates": [{"content": {"parts": [{"te', status=200),
            BackendUnavailableError,
            "not valid JSON",
        ),
        (Response("<html>502</html>", status=200), BackendUnavailableError, "not valid JSON"),
    ],
)
def test_http_failures_are_typed_and_never_quote_the_key(httpserver, gemini, response, err, text):
    httpserver.expect_request(PATH).respond_with_response(response)
    with pytest.raises(err, match=text) as ei:
        gemini.score("p", LABELS)
    assert "gemini:gemini-2.0-flash" in str(ei.value)
    assert FAKE_KEY not in str(ei.value)  # the key the server echoed back is redacted
    if err is RateLimitedError:
        assert ei.value.retry_after == 7.0 and ei.value.retriable


def test_429_without_retry_after_reads_google_retry_info(httpserver, gemini):
    body = gemini_error(429, "RESOURCE_EXHAUSTED", "quota", RETRY_INFO)
    httpserver.expect_request(PATH).respond_with_response(_err(429, body))
    with pytest.raises(RateLimitedError) as ei:
        gemini.score("p", LABELS)
    assert ei.value.retry_after == 17.0


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda c: c["logprobsResult"]["chosenCandidates"][0].pop("token"), "chosenCandidates[0]"),
        (
            lambda c: c["logprobsResult"]["chosenCandidates"][0].update(logProbability="x"),
            "chosenCandidates[0].logProbability",
        ),
        (lambda c: c["logprobsResult"]["topCandidates"].pop(), "topCandidates"),
        (
            lambda c: c["logprobsResult"]["topCandidates"][2].update(candidates=3),
            "topCandidates[2].candidates",
        ),
        (
            lambda c: c["logprobsResult"]["chosenCandidates"][2].update(logProbability=0.7),
            "chosenCandidates[2]",
        ),
    ],
)
def test_malformed_logprobs_result_names_the_field(httpserver, gemini, mutate, field):
    body = copy.deepcopy(GEMINI_GENERATE)
    mutate(body["candidates"][0])
    httpserver.expect_request(PATH).respond_with_json(body)
    with pytest.raises(ResponseFormatError, match=r"gemini:gemini-2\.0-flash") as ei:
        gemini.score("p", LABELS)
    assert field in ei.value.field


def test_no_candidates_without_block_reason_is_a_format_error(httpserver, gemini):
    httpserver.expect_request(PATH).respond_with_json({"candidates": []})
    with pytest.raises(ResponseFormatError, match="'candidates' is missing or empty"):
        gemini.score("p", LABELS)
