"""The forced method (``logprob_eval.scoring.forced``) on a hand-written toy model
(``tests/forced_model.py``, unit-test data, not recordings) whose every log-prob is known:
the values, the requests shared between labels, the second ask with ``max_top_logprobs``,
the bound of an unlisted token (the project's rule, computed here independently), ids
versus text, and the backend's requests against loopback stand-ins of llama-server and of
a server without ``/tokenize``. The real servers are driven in
``tests/test_thirdparty_servers.py``.
"""

from __future__ import annotations

import json
import math

import pytest
from werkzeug import Request, Response

from logprob_eval.backends import get_backend
from logprob_eval.errors import ConfigError, MethodUnsupportedError
from logprob_eval.scoring.forced import forced_scores_ids, forced_scores_text

from . import forced_model as fm

PROMPT = "T:"


class Server:
    """The toy model behind ``tokenize`` / ``complete`` callables; counts completions."""

    def __init__(self, shape: str = "llama-server") -> None:
        self.shape = shape
        self.sent: list[tuple[object, int]] = []

    def tokenize(self, text: str) -> list[tuple[int, str]]:
        return [(i, fm.VOCAB[i]) for i in fm.tokenize(text)]

    def complete(self, prompt: str | list[int], k: int) -> dict:
        self.sent.append((prompt, k))
        ids = fm.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        answer = fm.llama_server_answer if self.shape == "llama-server" else fm.legacy_answer
        return answer(ids, k)


def _ids(labels, server, top=3, cap=10):
    conts = [" " + lab for lab in labels]
    return forced_scores_ids(
        labels,
        PROMPT,
        conts,
        tokenize=server.tokenize,
        complete=server.complete,
        top_logprobs=top,
        max_top_logprobs=cap,
    )


def _bound(context: list[int], k: int) -> float:
    """The bound rule by hand: an unlisted token is at most the smallest listed probability
    and at most the mass the listed tokens leave over."""
    listed = sorted(fm.logprobs(context), reverse=True)[:k]
    left = 1.0 - math.fsum(math.exp(v) for v in listed)
    return min(math.log(left), min(listed))


def test_single_token_labels_share_one_request_and_are_exact():
    server = Server()
    scores = _ids(["Sports", "about"], server)
    assert len(server.sent) == 1  # both read off the prompt's one completion
    for s, cont in zip(scores, [" Sports", " about"], strict=True):
        assert s.status == "exact" and s.method == "forced"
        assert s.logprob == pytest.approx(fm.true_logprob(PROMPT, cont), abs=1e-12)
        assert s.lower == s.logprob
        assert s.variants == (cont,)


def test_ids_tell_apart_tokens_that_spell_alike():
    # id 3 and id 11 are both " Sports"; the label is tokenized as id 3 (logit 2.0)
    server = Server()
    (s,) = _ids(["Sports"], server)
    ctx = fm.tokenize(PROMPT)
    assert s.logprob == pytest.approx(fm.logprobs(ctx)[3], abs=1e-12)
    assert s.logprob != pytest.approx(fm.logprobs(ctx)[11], abs=1e-6)


def test_multi_token_labels_sum_their_steps_and_share_prefixes():
    server = Server()
    scores = _ids(["about history", "about art"], server)
    # the prompt's completion, then one for the shared prefix " about"
    assert [p for p, _ in server.sent] == [fm.tokenize(PROMPT), fm.tokenize(PROMPT + " about")]
    ctx = fm.tokenize(PROMPT)
    for s, tok in zip(scores, (6, 7), strict=True):
        expected = fm.logprobs(ctx)[5] + fm.logprobs([*ctx, 5])[tok]
        assert s.status == "exact"
        assert s.logprob == pytest.approx(expected, abs=1e-12)
        assert [p.token for p in s.path] == [" about", fm.VOCAB[tok]]
        assert s.variant_tokens == ((" about", fm.VOCAB[tok]),)


def test_a_token_below_the_first_list_is_asked_again_with_the_larger_k():
    server = Server()
    (s,) = _ids(["Art"], server, top=3, cap=10)  # " Art" ranks 5th after ":"
    assert [k for _, k in server.sent] == [3, 10]
    assert s.status == "exact"
    assert s.logprob == pytest.approx(fm.true_logprob(PROMPT, " Art"), abs=1e-12)


def test_no_second_ask_when_every_token_is_in_the_first_list():
    server = Server()
    _ids(["Sports", "about"], server, top=3, cap=10)
    assert [k for _, k in server.sent] == [3]


def test_an_unlisted_token_gets_the_bound_rule_and_the_row_says_so():
    server = Server()
    (s,) = _ids(["art"], server, top=3, cap=5)  # " art" ranks 6th: never listed
    ctx = fm.tokenize(PROMPT)
    truth = fm.true_logprob(PROMPT, " art")
    assert s.status == "upper_bound"
    assert s.logprob == pytest.approx(_bound(ctx, 5), abs=1e-12)
    assert s.lower == -math.inf
    assert truth <= s.logprob  # the interval holds the exact score
    assert "not among the top-5 listed (top-k capped at 5: max_top_logprobs)" in s.note


def test_a_later_step_is_still_read_after_an_unlisted_one():
    # " about" listed, then " art" after it: both steps known, so the bound is tight
    server = Server()
    (s,) = _ids(["about art"], server, top=1, cap=1)
    ctx = fm.tokenize(PROMPT)
    # step 0: " about" ranks 3rd, unlisted at k=1; step 1: " art" ranks 2nd, unlisted too
    expected = _bound(ctx, 1) + _bound([*ctx, 5], 1)
    assert s.status == "upper_bound"
    assert s.logprob == pytest.approx(min(0.0, expected), abs=1e-12)
    assert fm.true_logprob(PROMPT, " about art") <= s.logprob


def test_text_mode_passes_over_a_shorter_token_for_a_longer_one_below_the_list():
    # after ":", " " is listed in the top-3 but " Art" only in the top-10: a walk through
    # " " + "Art" would score another token path than the exact method's
    server = Server(shape="legacy")
    (s,) = forced_scores_text(
        ["Art"], PROMPT, [" Art"], complete=server.complete, top_logprobs=3, max_top_logprobs=10
    )
    assert [k for _, k in server.sent] == [3, 10]
    assert [p.token for p in s.path] == [" Art"]
    assert s.status == "exact"
    assert s.logprob == pytest.approx(fm.true_logprob(PROMPT, " Art"), abs=1e-12)
    assert "text mode" in s.note


def test_text_mode_multi_token_label_sends_the_prefix_as_text():
    server = Server(shape="legacy")
    (s,) = forced_scores_text(
        ["about history"],
        PROMPT,
        [" about history"],
        complete=server.complete,
        top_logprobs=10,
        max_top_logprobs=10,
    )
    assert [p for p, _ in server.sent] == [PROMPT, PROMPT + " about"]
    assert s.logprob == pytest.approx(fm.true_logprob(PROMPT, " about history"), abs=1e-12)


def test_text_mode_stops_at_an_unlisted_step_with_the_bound():
    server = Server(shape="legacy")
    (s,) = forced_scores_text(
        ["art"], PROMPT, [" art"], complete=server.complete, top_logprobs=3, max_top_logprobs=3
    )
    # nothing spelling " art" is listed but " ": the walk takes " " and then finds no "art";
    # the label's own path (" art") leaves the walk at step 0, as an unlisted token there
    ctx = fm.tokenize(PROMPT)
    walk = fm.logprobs(ctx)[8] + _bound([*ctx, 8], 3)
    assert s.logprob == pytest.approx(max(walk, _bound(ctx, 3)), abs=1e-12)
    assert s.status == "upper_bound"
    assert s.lower == -math.inf
    assert fm.true_logprob(PROMPT, " art") <= s.logprob
    assert "the rest of the label is unknown" in s.note


# -- the backend: requests against loopback stand-ins ------------------------------------


def _llama_server(request: Request) -> Response:
    """A stand-in of llama-server: ``POST /tokenize`` with pieces, id-list prompts."""
    body = json.loads(request.get_data())
    if request.path == "/tokenize":
        ids = fm.tokenize(body["content"])
        tokens = [{"id": i, "piece": fm.VOCAB[i]} for i in ids]
        return Response(json.dumps({"tokens": tokens}), content_type="application/json")
    assert isinstance(body["prompt"], list)
    answer = fm.llama_server_answer(body["prompt"], body["logprobs"])
    return Response(json.dumps(answer), content_type="application/json")


def _text_server(request: Request) -> Response:
    """A server with no ``/tokenize`` (404) that takes text prompts only."""
    if request.path == "/tokenize":
        return Response(json.dumps({"detail": "Not Found"}), status=404)
    body = json.loads(request.get_data())
    answer = fm.legacy_answer(fm.tokenize(body["prompt"]), body["logprobs"])
    return Response(json.dumps(answer), content_type="application/json")


def _posts(httpserver) -> list[tuple[str, dict]]:
    return [(r.path, json.loads(r.get_data())) for r, _ in httpserver.log if r.method == "POST"]


def test_backend_sends_token_ids_where_the_server_tokenizes(httpserver):
    httpserver.expect_request("/tokenize").respond_with_handler(_llama_server)
    httpserver.expect_request("/v1/completions").respond_with_handler(_llama_server)
    url = httpserver.url_for("/v1")
    with get_backend(
        f"openai-compatible:m@{url}", method="forced", top_logprobs=3, max_top_logprobs=10
    ) as b:
        scores = b.score(PROMPT, ["Sports", "Art"])
        assert b.forced_prompt == "ids"
    posts = _posts(httpserver)
    assert [p for p, _ in posts].count("/tokenize") == 3  # the prompt and each label's text
    assert posts[0][1] == {"content": PROMPT, "add_special": True, "with_pieces": True}
    completions = [body for path, body in posts if path == "/v1/completions"]
    assert completions == [
        {"model": "m", "prompt": fm.tokenize(PROMPT), "logprobs": 3, "max_tokens": 1,
         "temperature": 0},
        {"model": "m", "prompt": fm.tokenize(PROMPT), "logprobs": 10, "max_tokens": 1,
         "temperature": 0},
    ]  # fmt: skip
    for label in ("Sports", "Art"):
        assert scores[label].status == "exact"
        assert scores[label].logprob == pytest.approx(fm.true_logprob(PROMPT, " " + label))


def test_backend_falls_back_to_text_where_there_is_no_tokenize(httpserver):
    httpserver.expect_request("/tokenize").respond_with_handler(_text_server)
    httpserver.expect_request("/v1/completions").respond_with_handler(_text_server)
    url = httpserver.url_for("/v1")
    with get_backend(f"openai-compatible:m@{url}", method="forced", top_logprobs=10) as b:
        first = b.score(PROMPT, ["Sports"])
        second = b.score(PROMPT, ["about history"])
        assert b.forced_prompt == "text"
    paths = [p for p, _ in _posts(httpserver)]
    assert paths.count("/tokenize") == 1  # asked once, then text for good
    assert first["Sports"].logprob == pytest.approx(fm.true_logprob(PROMPT, " Sports"))
    truth = fm.true_logprob(PROMPT, " about history")
    assert second["about history"].logprob == pytest.approx(truth)


def _capped_server(request: Request) -> Response:
    """A text server that lists at most 20 (``logprob-eval serve``'s HTTP 400 above it)."""
    if request.path == "/tokenize":
        return Response(json.dumps({"detail": "Not Found"}), status=404)
    body = json.loads(request.get_data())
    if body["logprobs"] > 20:
        error = {"message": f"'logprobs' must be an integer from 0 to 20, got {body['logprobs']}"}
        return Response(json.dumps({"error": error}), status=400)
    answer = fm.legacy_answer(fm.tokenize(body["prompt"]), body["logprobs"])
    return Response(json.dumps(answer), content_type="application/json")


def test_a_server_that_refuses_a_longer_list_caps_it_and_the_note_says_so(httpserver):
    httpserver.expect_request("/tokenize").respond_with_handler(_capped_server)
    httpserver.expect_request("/v1/completions").respond_with_handler(_capped_server)
    url = httpserver.url_for("/v1")
    with get_backend(f"openai-compatible:m@{url}", method="forced") as b:
        first = b.score(PROMPT, ["w29"])["w29"]  # ranks last of 42: not in the top-20
        second = b.score(PROMPT, ["w29"])["w29"]
    ks = [json.loads(r.get_data())["logprobs"] for r, _ in httpserver.log if r.path != "/tokenize"]
    # refused once, then never asked again (the walk reads " w2", then finds no "9")
    assert ks == [20, 200, 20, 20, 20]
    assert "top-k capped at 20: the server refused top_logprobs=200" in first.note
    assert "top-k capped at 20: the server refused more than 20" in second.note
    for s in (first, second):
        assert s.status == "upper_bound"
        assert fm.true_logprob(PROMPT, " w29") <= s.logprob


@pytest.mark.parametrize(
    ("spec", "works"),
    [
        ("openai:gpt-4.1-mini", "generation"),
        ("openai-responses:gpt-4.1-mini", "generation"),
        ("gemini:gemini-2.0-flash", "generation"),
    ],
)
def test_chat_only_apis_refuse_forced_at_construction(spec, works, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    monkeypatch.setenv("GEMINI_API_KEY", "test-not-a-key")
    with pytest.raises(MethodUnsupportedError) as err:
        get_backend(spec, method="forced")
    assert isinstance(err.value, ConfigError)
    assert "method='forced' is not available" in str(err.value)
    assert "continues no raw prompt" in str(err.value)
    assert f"use one of {works}" in str(err.value)
    assert err.value.methods == (works,)


def _ollama(request: Request) -> Response:
    """A stand-in of Ollama's ``/api/generate`` (raw mode: the prompt as written)."""
    body = json.loads(request.get_data())
    assert body["raw"] is True
    assert body["options"]["num_predict"] == 1
    answer = fm.ollama_answer(fm.tokenize(body["prompt"]), body["top_logprobs"])
    return Response(json.dumps(answer), content_type="application/json")


def test_ollama_forced_uses_raw_mode_and_notes_its_cap(httpserver):
    httpserver.expect_request("/api/generate").respond_with_handler(_ollama)
    with get_backend(f"ollama:m@{httpserver.url_for('')}", method="forced", top_logprobs=3) as b:
        scores = b.score(PROMPT, ["Sports", "Art", "art"])
    sent = [json.loads(r.get_data()) for r, _ in httpserver.log]
    assert [s["top_logprobs"] for s in sent] == [3, 20]  # asked again, up to Ollama's 20
    assert {s["prompt"] for s in sent} == {PROMPT}
    for label in ("Sports", "Art"):
        assert scores[label].status == "exact"
        assert scores[label].logprob == pytest.approx(fm.true_logprob(PROMPT, " " + label))
    # " art" ranks 6th: listed within 20 here, so exact too
    assert scores["art"].logprob == pytest.approx(fm.true_logprob(PROMPT, " art"))


def test_ollama_forced_bound_note_names_the_cap(httpserver):
    # " w29" ranks last of 42 tokens after ":": never among Ollama's 20
    httpserver.expect_request("/api/generate").respond_with_handler(_ollama)
    with get_backend(f"ollama:m@{httpserver.url_for('')}", method="forced") as b:
        s = b.score(PROMPT, ["w29"])["w29"]
    assert s.status == "upper_bound"
    assert fm.true_logprob(PROMPT, " w29") <= s.logprob
    assert "top-k capped at 20: Ollama lists at most 20" in s.note


def test_ollama_chat_endpoint_cannot_force():
    with pytest.raises(ConfigError, match="endpoint='chat'"):
        get_backend("ollama:m@http://127.0.0.1:9", method="forced", endpoint="chat")


def test_forced_options_are_checked():
    with pytest.raises(ConfigError, match="max_top_logprobs=0"):
        get_backend(
            "openai-compatible:m@http://127.0.0.1:9/v1", method="forced", max_top_logprobs=0
        )
    with pytest.raises(ConfigError, match="forced_prompt='tokens'"):
        get_backend("openai-compatible:m@http://127.0.0.1:9/v1", forced_prompt="tokens")


# -- the comparison with the exact method (experiments.servers.forced_agreement) ----------


def _table(rows):
    import pandas as pd

    cols = ["example_id", "label", "logprob", "lower", "status"]
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])


def test_forced_agreement_counts_hand_computed():
    from logprob_eval.experiments.servers import forced_agreement

    inf = math.inf
    forced = _table(
        [
            ("a", "x", -1.0003, -1.0003, "exact"),  # +3e-4
            ("a", "y", -2.0001, -2.0001, "exact"),  # +1e-4 (spread in text a: 2e-4)
            ("b", "x", -0.5, -0.5, "exact"),  # 0
            ("b", "y", -3.0, -inf, "upper_bound"),  # holds -4
            ("b", "z", -5.0, -inf, "upper_bound"),  # does not hold -4.5
            ("c", "x", -1.0, -1.0, "exact"),  # no exact partner
        ]
    )
    exact = _table(
        [
            ("a", "x", -1.0, -1.0, "exact"),
            ("a", "y", -2.0, -2.0, "exact"),
            ("b", "x", -0.5, -0.5, "exact"),
            ("b", "y", -4.0, -4.0, "exact"),
            ("b", "z", -4.5, -4.5, "exact"),
        ]
    )
    f = forced_agreement(forced, exact, tolerance=2e-4)
    assert (f.rows, f.unpaired, f.exact, f.bounds, f.bounds_holding) == (5, 1, 3, 2, 1)
    assert f.within == 2  # 3e-4 is out
    assert f.max_abs_diff == pytest.approx(3e-4)
    assert f.median_abs_diff == pytest.approx(1e-4)
    assert f.max_offset_spread == pytest.approx(2e-4)
    assert f.exact_share == pytest.approx(3 / 5)
    assert f.worst[0][:2] == ("a", "x")
    assert not f.holds()
    ok = forced_agreement(forced.iloc[[1, 2, 3]], exact, tolerance=2e-4)
    assert ok.holds()


def test_forced_agreement_compares_only_the_exact_methods_token_path():
    from logprob_eval.experiments.servers import forced_agreement

    forced = _table([("a", "x", -21.5, -21.5, "exact"), ("a", "y", -1.0, -1.0, "exact")])
    forced["path"] = ['[" sp", "orts"]', '[" y"]']
    exact = _table([("a", "x", -12.3, -12.3, "exact"), ("a", "y", -1.0, -1.0, "exact")])
    exact["path"] = ['[" sports"]', '[" y"]']
    f = forced_agreement(forced, exact, tolerance=1e-4)
    assert (f.exact, f.other_path, f.within) == (1, 1, 1)
    assert f.exact_share == pytest.approx(0.5)
    assert f.holds()  # the other path is not compared; it counts against the share


def test_a_short_list_that_leaves_mass_over_is_asked_again():
    # a list keyed by token text (llama-cpp-python) merges tokens that spell alike, so it
    # can come back with fewer than k entries while more tokens rank below it
    server = Server(shape="legacy")
    answers = []

    def complete(prompt, k):
        body = server.complete(prompt, k)
        tops = body["choices"][0]["logprobs"]["top_logprobs"][0]
        if k == 5:  # drop one entry, as a merge of two same-text tokens would
            tops.pop(next(iter(tops)))
        answers.append(len(tops))
        return body

    (s,) = forced_scores_text(
        ["art"], PROMPT, [" art"], complete=complete, top_logprobs=5, max_top_logprobs=50
    )
    assert [k for _, k in server.sent] == [5, 50]
    assert s.status == "exact"
