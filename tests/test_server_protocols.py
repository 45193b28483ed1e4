"""What OpenAI-compatible servers differ in, decided once per backend: list prompts, the
``continuation_offset`` extension, ``max_tokens`` and echo (``openai_compatible`` module doc).

The servers here are hand-written stand-ins on loopback for fault injection: each refuses
what the real server refuses, the way it refuses it (llama-cpp-python's server: HTTP 500
with an empty message on a list of prompts, from ``assert len(body.prompt) <= 1``;
llama-server: ``Only no echo is supported``, or generated text only). The real servers
are driven in ``test_thirdparty_servers.py``.
"""

from __future__ import annotations

import json
import time

import pytest
from werkzeug import Request, Response

from logprob_eval.backends import get_backend
from logprob_eval.backends.jobs import RetryPolicy, make_jobs, score_jobs
from logprob_eval.data.datasets import Example
from logprob_eval.data.prompts import get_label_set, get_template
from logprob_eval.errors import BackendUnavailableError, ProtocolUnsupportedError
from logprob_eval.scoring.parsing import parse_completion_positions

from .api_bodies import completion_echo

PROMPT = "T:"


def _echo_one(text: str) -> dict:
    """An echo body for ``PROMPT + " Label"``: tokens "T", ":", " Label"; the label's
    log-prob is -len(label) (so each label has its own number)."""
    label = text[len(PROMPT) :]
    return completion_echo([text], [["T", ":", label]], [[-1.0, -1.0, -float(len(label))]])


def _posts(httpserver) -> list[dict]:
    return [json.loads(r.get_data()) for r, _ in httpserver.log if r.method == "POST"]


def _gets(httpserver) -> list[str]:
    return [r.path for r, _ in httpserver.log if r.method == "GET"]


def _refuses_lists(request: Request) -> Response:
    """llama-cpp-python's server: one prompt per request, a list is an HTTP 500 without a
    message."""
    sent = json.loads(request.get_data())
    prompt = sent["prompt"]
    if isinstance(prompt, list) and len(prompt) > 1:
        return Response("", status=500)
    text = prompt[0] if isinstance(prompt, list) else prompt
    return Response(json.dumps(_echo_one(text)), content_type="application/json")


def test_a_server_that_refuses_lists_gets_one_prompt_per_request(httpserver):
    httpserver.expect_request("/v1/completions").respond_with_handler(_refuses_lists)
    url = httpserver.url_for("/v1")
    with get_backend(f"openai-compatible:m@{url}") as b:
        first = b.score(PROMPT, ["Sports", "Art"])
        assert b.batch_prompts is False  # decided by the first list
        second = b.score(PROMPT, ["Health", "Food", "Travel"])
    assert {k: v.logprob for k, v in first.items()} == {"Sports": -7.0, "Art": -4.0}
    assert second["Travel"].logprob == -7.0 and second["Food"].logprob == -5.0
    prompts = [p["prompt"] for p in _posts(httpserver)]
    # one list (refused), then single prompts only: the probe is not repeated
    assert prompts == [
        [f"{PROMPT} Sports", f"{PROMPT} Art"],
        f"{PROMPT} Sports",
        f"{PROMPT} Art",
        f"{PROMPT} Health",
        f"{PROMPT} Food",
        f"{PROMPT} Travel",
    ]


def test_a_server_that_refuses_every_request_reports_that_error_not_the_list(httpserver):
    httpserver.expect_request("/v1/completions").respond_with_json(
        {"error": {"message": "model is loading"}}, status=503
    )
    with get_backend(f"openai-compatible:m@{httpserver.url_for('/v1')}") as b:
        with pytest.raises(BackendUnavailableError, match="model is loading"):
            b.score(PROMPT, ["Sports", "Art"])
        assert b.batch_prompts is None  # nothing learnt from a server that answers nothing
    assert [p["prompt"] for p in _posts(httpserver)][-1] == f"{PROMPT} Sports"


@pytest.mark.parametrize(
    ("models_body", "status", "expected"),
    [
        ({"data": [{"id": "m", "extensions": ["continuation_offset"]}]}, 200, True),
        ({"data": [{"id": "m", "owned_by": "llamacpp"}]}, 200, False),
        ({"data": [{"id": "other", "extensions": ["continuation_offset"]}]}, 200, False),
        ({"error": "not found"}, 404, False),
    ],
    ids=["listed", "not-listed", "other-model", "no-models-endpoint"],
)
def test_continuation_offset_is_used_exactly_when_the_server_lists_it(
    httpserver, models_body, status, expected
):
    httpserver.expect_request("/v1/models").respond_with_json(models_body, status=status)
    httpserver.expect_request("/v1/completions").respond_with_handler(
        lambda r: Response(
            json.dumps(_echo_one(json.loads(r.get_data())["prompt"])),
            content_type="application/json",
        )
    )
    with get_backend(f"openai-compatible:m@{httpserver.url_for('/v1')}") as b:
        b.score(PROMPT, ["Sports"])
        b.score(PROMPT, ["Art"])
        assert b.continuation_offset is expected
    sent = _posts(httpserver)
    assert _gets(httpserver) == ["/v1/models"]  # asked once
    for body in sent:
        assert body.get("continuation_offset") == (len(PROMPT) if expected else None)
        assert body["max_tokens"] == (0 if expected else 1)


def test_set_options_send_no_probe(httpserver):
    httpserver.expect_request("/v1/completions").respond_with_handler(
        lambda r: Response(
            json.dumps(_echo_one(json.loads(r.get_data())["prompt"])),
            content_type="application/json",
        )
    )
    url = httpserver.url_for("/v1")
    with get_backend(f"openai-compatible:m@{url}", continuation_offset=False) as b:
        b.score(PROMPT, ["Sports"])
    assert _gets(httpserver) == []


def _no_echo_error(request: Request) -> Response:
    """llama-server (this build): ``echo`` is an error naming it."""
    body = {"error": {"code": 500, "message": "Only no echo is supported", "type": "server_error"}}
    return Response(json.dumps(body), status=500, content_type="application/json")


def _echo_ignored(request: Request) -> Response:
    """llama-server (older builds): echo ignored, the generated token only, its log-probs
    in ``logprobs.content``."""
    sent = json.loads(request.get_data())
    prompts = sent["prompt"] if isinstance(sent["prompt"], list) else [sent["prompt"]]
    entry = {"id": 236761, "token": ",", "bytes": [44], "logprob": -0.7, "top_logprobs": []}
    choices = [
        {"index": i, "text": ",", "logprobs": {"content": [entry]}, "finish_reason": "length"}
        for i in range(len(prompts))
    ]
    return Response(json.dumps({"choices": choices}), content_type="application/json")


@pytest.mark.parametrize("handler", [_no_echo_error, _echo_ignored], ids=["refused", "ignored"])
def test_a_server_without_echo_stops_the_exact_method_at_once(httpserver, handler):
    """60 texts, retries on: the run stops at its first request, naming echo and the method
    that works, instead of failing row by row."""
    httpserver.expect_request("/v1/completions").respond_with_handler(handler)
    examples = [Example(f"t{i}", f"text number {i}", ("Sports",)) for i in range(60)]
    jobs = make_jobs(examples, [get_template("simple")], [get_label_set("normal")])
    url = httpserver.url_for("/v1")
    with get_backend(f"openai-compatible:m@{url}", continuation_offset=False) as b:
        started = time.monotonic()
        with pytest.raises(ProtocolUnsupportedError) as info:
            score_jobs(b, jobs, concurrency=2, retry=RetryPolicy(attempts=6))
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "echo" in message and "method='generation'" in message
    assert "retry" not in message
    assert len(_posts(httpserver)) <= 2  # one per worker thread at most


def test_completions_in_the_content_shape_are_read_as_positions():
    """llama-server's /v1/completions log-probs (shape from its README: ``logprobs.content``
    entries with ``id``, ``token``, ``bytes``, ``logprob``, ``top_logprobs``)."""
    body = {
        "choices": [
            {
                "index": 0,
                "text": " Sports",
                "logprobs": {
                    "content": [
                        {
                            "id": 17151,
                            "token": " Sports",
                            "bytes": [32, 83, 112, 111, 114, 116, 115],
                            "logprob": -0.25,
                            "top_logprobs": [
                                {"id": 17151, "token": " Sports", "bytes": None, "logprob": -0.25},
                                {"id": 9000, "token": " Art", "bytes": None, "logprob": -2.5},
                            ],
                        }
                    ]
                },
            }
        ]
    }
    [pos] = parse_completion_positions(body)
    assert (pos.token, pos.logprob) == (" Sports", -0.25)
    assert [(t.token, t.logprob) for t in pos.top_logprobs] == [(" Sports", -0.25), (" Art", -2.5)]
