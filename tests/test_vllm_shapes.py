"""The ``openai-compatible`` backend (exact method) against vLLM's behaviour, on loopback.

Two sources of bodies: vLLM's recorded answers in ``../shared/real-responses`` (read there,
skipped when absent; see its SOURCES.md), and a stand-in that answers list prompts in
vLLM's documented ``/v1/completions`` shape (hand-written from its API reference: ``null``
log-prob of the first prompt token, ``top_logprobs`` ``null`` there, ``stop_reason`` and
``prompt_logprobs`` fields). The stand-in is not a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug import Request, Response

from logprob_eval.backends import get_backend
from logprob_eval.errors import ResponseFormatError

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "real-responses"


def _real(name: str) -> dict:
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (reference data outside the project)")
    return json.loads(path.read_text())


def test_recorded_vllm_echo_null_first_logprob_and_a_generated_tail(httpserver):
    """vLLM 0.16, echo=true, logprobs=5, max_tokens=1 (recorded): the first prompt token
    has a null log-prob and one generated token follows the prompt. Both are outside the
    label, whose score is the sum of its own recorded token log-probs."""
    body = _real("completions_vllm-issue_1.json")
    httpserver.expect_request("/v1/completions").respond_with_json(body)
    with get_backend(f"openai-compatible:qwen@{httpserver.url_for('/v1')}") as b:
        [score] = b.teacher_forced("The step of boiling water", [" is:"])
    lp = body["choices"][0]["logprobs"]["token_logprobs"]
    assert [s.token for s in score.path] == [" is", ":"]
    assert score.logprob == pytest.approx(lp[5] + lp[6])  # -2.2331 + -8.5370, as recorded
    assert score.status == "exact" and score.note == ""


def test_recorded_vllm_first_token_has_no_score_and_says_why(httpserver):
    body = _real("completions_vllm-issue_1.json")
    httpserver.expect_request("/v1/completions").respond_with_json(body)
    with get_backend(f"openai-compatible:qwen@{httpserver.url_for('/v1')}") as b:
        with pytest.raises(ResponseFormatError, match=r"token 0 \('The'\) has no log-prob"):
            b.teacher_forced("", ["The step"])


def test_recorded_vllm_bos_echo_scores_the_label_tokens(httpserver):
    body = _real("completions_kserve-vllm_1.json")
    httpserver.expect_request("/v1/completions").respond_with_json(body)
    with get_backend(f"openai-compatible:opt@{httpserver.url_for('/v1')}") as b:
        [score] = b.teacher_forced("Hi, I love my cat-", [" Labrador"])
    assert [s.token for s in score.path] == [" Labrador"]
    assert score.logprob == pytest.approx(-11.009231567382812)


def _vllm_standin(request: Request) -> Response:
    """Answers a list of prompts in vLLM's shape: word-piece tokens, null first log-prob."""
    sent = json.loads(request.get_data())
    prompts = sent["prompt"] if isinstance(sent["prompt"], list) else [sent["prompt"]]
    choices = []
    for i, text in enumerate(prompts):
        pieces = text.replace(" ", "\x00 ").split("\x00")
        tokens = [p for p in pieces if p]
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        lps = [None] + [-0.5 * (1 + len(t)) for t in tokens[1:]]
        choices.append(
            {
                "index": i,
                "text": text,
                "logprobs": {
                    "text_offset": offsets,
                    "token_logprobs": lps,
                    "tokens": tokens,
                    "top_logprobs": [None]
                    + [{t: lp} for t, lp in zip(tokens[1:], lps[1:], strict=True)],
                },
                "finish_reason": "length",
                "stop_reason": None,
                "prompt_logprobs": None,
            }
        )
    choices.reverse()  # order is the server's business: choices map back by index
    body = {
        "id": "cmpl-standin",
        "object": "text_completion",
        "model": sent["model"],
        "choices": choices,
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    return Response(json.dumps(body), content_type="application/json")


def test_list_prompts_one_request_per_text_and_choices_mapped_by_index(httpserver):
    httpserver.expect_request("/v1/completions").respond_with_handler(_vllm_standin)
    labels = ["Sports", "Health", "Art"]
    with get_backend(f"openai-compatible:m@{httpserver.url_for('/v1')}") as b:
        scores = b.score("Text: a goal\nTopic:", labels)
        assert b.request_count == 1
    for label in labels:  # one word-piece " Label": -0.5 * (1 + len(" Label"))
        assert scores[label].logprob == pytest.approx(-0.5 * (2 + len(label)))
        assert [s.token for s in scores[label].path] == [f" {label}"]
    [sent] = [json.loads(r.get_data()) for r, _ in httpserver.log if r.method == "POST"]
    assert sent["prompt"] == [f"Text: a goal\nTopic: {x}" for x in labels]
    assert (sent["echo"], sent["max_tokens"], sent["logprobs"]) == (True, 1, 0)
