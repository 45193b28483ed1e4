"""The local model server, live against Gemma 3 270M (needs the ``[local]`` extra)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("llama_cpp", reason="install the [local] extra: pip install -e '.[local]'")

import requests

from logprob_eval.backends import get_backend
from logprob_eval.data.prompts import LABEL_SETS, TEMPLATES
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


def _tf_body(prompt: str, conts: list[str], **extra) -> dict:
    """The label-only request the exact method sends to this server."""
    return {
        "model": MODEL,
        "prompt": [prompt + c for c in conts],
        "echo": True,
        "logprobs": 0,
        "max_tokens": 0,
        "temperature": 0,
        "continuation_offset": len(prompt),
        **extra,
    }


def _label_lps(body: dict) -> list[list[float]]:
    return [[x for x in c["logprobs"]["token_logprobs"] if x is not None] for c in body["choices"]]


def test_echo_logprobs_equal_llama_cpp_python_at_the_same_batching(handler: _Handler):
    """Cross-check against an independent implementation: llama-cpp-python's own echo path,
    which evaluates the prompt in one batch of n_batch=512 tokens like our prefill."""
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
    ref_llm = Llama(
        model_path=str(resolve_model_path(MODEL)),
        n_ctx=256,
        n_batch=512,
        logits_all=True,
        verbose=False,
    )
    ref = ref_llm.create_completion(prompt, echo=True, logprobs=1, max_tokens=1, temperature=0)
    ref_lp = ref["choices"][0]["logprobs"]
    n = len(lp["tokens"])
    assert "".join(lp["tokens"]) == prompt
    assert ref_lp["tokens"][:n] == lp["tokens"]
    assert lp["text_offset"] == ref_lp["text_offset"][:n]
    pairs = [
        (mine, theirs)
        for mine, theirs in zip(lp["token_logprobs"], ref_lp["token_logprobs"][:n], strict=True)
        if theirs is not None
    ]
    assert len(pairs) >= n - 1
    # ours is rounded to 1e-6 in the response; the computation is the same batch
    assert max(abs(m - t) for m, t in pairs) <= 1e-6


def test_label_only_request_evaluates_the_prompt_once(engine: Engine, handler: _Handler):
    """Ten single-token labels cost one prefill: one decode call, no label token evaluated."""
    ls = LABEL_SETS["normal"]
    prompt = TEMPLATES["simple"].render("A brand new text about nothing in particular.", ls)
    n_prompt = len(engine.tokenize(prompt))
    conts = [" " + p for p in ls.phrases]
    assert all(len(engine.tokenize(prompt + c)) == n_prompt + 1 for c in conts)
    calls, evaluated = engine.decode_calls, engine.tokens_evaluated
    body = handler.completions(_tf_body(prompt, conts))
    assert engine.decode_calls - calls == 1
    assert engine.tokens_evaluated - evaluated == n_prompt
    for choice in body["choices"]:
        lps = choice["logprobs"]["token_logprobs"]
        assert all(x is None for x in lps[:-1]) and lps[-1] < 0  # only the label's token
        assert "".join(choice["logprobs"]["tokens"]) == choice["text"]


def test_same_request_same_numbers_whatever_the_order_and_history(handler: _Handler):
    ls = LABEL_SETS["verbose"]  # multi-token labels sharing their first tokens
    prompt = TEMPLATES["question"].render(TEXT, ls)
    conts = [" " + p for p in ls.phrases]
    first = _label_lps(handler.completions(_tf_body(prompt, conts)))
    # other work in between: another prompt sharing a prefix, a generation, an echo
    handler.completions(_tf_body(prompt[:-3], conts[:2]))
    handler.completions({"model": MODEL, "prompt": prompt + " art", "max_tokens": 3})
    handler.completions({"model": MODEL, "prompt": prompt, "echo": True, "logprobs": 0})
    rev = _label_lps(handler.completions(_tf_body(prompt, conts[::-1])))[::-1]
    alone = [_label_lps(handler.completions(_tf_body(prompt, [c])))[0] for c in conts[:3]]
    assert rev == first  # bit-identical (after the response's rounding to 1e-6)
    assert alone == first[:3]
    assert all(len(x) >= 2 for x in first)


def test_same_numbers_under_concurrent_clients(handler: _Handler):
    from concurrent.futures import ThreadPoolExecutor

    ls = LABEL_SETS["normal"]
    texts = [TEXT, "The senate passed the budget.", "A new vaccine trial began."]
    bodies = [
        _tf_body(TEMPLATES[t].render(x, ls), [" " + p for p in ls.phrases])
        for x in texts
        for t in ("simple", "question")
    ]
    serial = [_label_lps(handler.completions(b)) for b in bodies]
    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(lambda b: _label_lps(handler.completions(b)), bodies * 2))
    assert concurrent == serial * 2


@pytest.mark.parametrize("label_set", ["normal", "verbose"])
def test_generated_equals_teacher_forced(handler: _Handler, label_set: str):
    """Every generated token's log-prob, and every listed alternative at the first position,
    equals the teacher-forced log-prob of the same tokens after the same prompt."""
    ls = LABEL_SETS[label_set]
    prompt = TEMPLATES["simple"].render("The bakery's sourdough sells out early.", ls)
    gen = handler.completions(
        {"model": MODEL, "prompt": prompt, "logprobs": 20, "max_tokens": 6, "temperature": 0}
    )
    lp = gen["choices"][0]["logprobs"]
    generated = gen["choices"][0]["text"]
    alternatives = list(lp["top_logprobs"][0].items())[1:8]
    conts = [generated] + [tok for tok, _ in alternatives]
    forced = _label_lps(handler.completions(_tf_body(prompt, conts)))
    assert forced[0] == lp["token_logprobs"]  # all six generated tokens, bit-identical
    compared = 0
    for (_, value), got in zip(alternatives, forced[1:], strict=True):
        if len(got) == 1:  # the alternative re-tokenizes as itself
            assert got[0] == value
            compared += 1
    assert compared >= 5


def test_generation_top_k_is_sorted_and_normalised(engine: Engine):
    from logprob_eval.server.engine import row_steps

    gen = engine.generate(engine.tokenize("Text: A goal.\nTopic:"), max_tokens=3)
    steps = row_steps(gen.rows, gen.tokens, 20)
    assert len(steps) == 3 and gen.finish == "length"
    for s in steps:
        lps = [lp for _, lp in s.top]
        assert len(lps) == 20 and lps == sorted(lps, reverse=True)
        assert s.top[0] == (s.token, s.logprob)  # greedy: the sampled token is the argmax
        assert sum(math.exp(x) for x in lps) <= 1.0 + 1e-6


def test_engine_reuses_only_the_plans_own_batches(engine: Engine):
    """A cached prompt is reused across labels; a prefix evaluated in another batch is not."""
    prompt = engine.tokenize("Text: The museum restored the fresco.\nTopic:")
    n = len(prompt)
    label = engine.tokenize("Text: The museum restored the fresco.\nTopic: the history of art")[n:]
    full = prompt + label
    fresh = engine.teacher_forced(full, n, n)
    reused = engine.tokens_reused
    again = engine.teacher_forced(full, n, n)
    assert engine.tokens_reused - reused == len(full) - 1  # nothing re-evaluated
    assert np.array_equal(again, fresh)
    # the same tokens with the prompt ending later: another plan, so the prompt's cached
    # batch is not reused, and afterwards the first plan is recomputed, not patched
    evaluated = engine.tokens_evaluated
    engine.teacher_forced(full, n + 1, n)
    assert engine.tokens_evaluated - evaluated == len(full) - 1
    evaluated = engine.tokens_evaluated
    assert np.array_equal(engine.teacher_forced(full, n, n), fresh)
    assert engine.tokens_evaluated - evaluated == len(full) - 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "other", "prompt": "x"}, 404, "model_not_found"),
        ({"model": MODEL, "prompt": 5}, 400, "invalid_value"),
        ({"model": MODEL, "prompt": "x", "logprobs": 21}, 400, "invalid_value"),
        ({"model": MODEL, "prompt": "x", "max_tokens": -1}, 400, "invalid_value"),
        ({"model": MODEL, "prompt": "x", "temperature": 3}, 400, "invalid_value"),
        ({"model": MODEL, "prompt": "word " * 2000}, 400, "context_length_exceeded"),
        ({"model": MODEL, "prompt": "ab", "continuation_offset": 1}, 400, "invalid_value"),
        (
            {"model": MODEL, "prompt": "ab", "echo": True, "logprobs": 0, "max_tokens": 0}
            | {"continuation_offset": 3},
            400,
            "invalid_value",
        ),
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


def test_plan_prefills_the_prompt_in_chunks_from_zero_then_one_token_per_call():
    from logprob_eval.server.engine import plan

    assert plan(5, 3, 512) == [(0, 3), (3, 4), (4, 5)]
    assert plan(2, 3, 512) == [(0, 3)]  # the prompt is always evaluated whole
    assert plan(7, 5, 2) == [(0, 2), (2, 4), (4, 5), (5, 6), (6, 7)]
