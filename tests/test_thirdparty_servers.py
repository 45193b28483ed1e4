"""Third-party servers in the loop, live: llama-cpp-python's server and llama.cpp's
``llama-server`` on the same GGUF as ``logprob-eval serve`` (fixtures in ``conftest.py``;
each skips with the one command that provides it).

With one-token batches on every server, llama.cpp computes the same numbers whichever
server calls it, so the scores must agree to the responses' rounding (1e-4 allowed), with
identical rankings. Kept small (CI has two cores): llama-cpp-python's echo sorts the whole
262k-token vocabulary in Python for every prompt token, seconds per label.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="install the [local] extra: pip install -e '.[local]'")

from logprob_eval.backends import get_backend
from logprob_eval.backends.jobs import RetryPolicy, make_jobs, score_jobs
from logprob_eval.data.datasets import Example
from logprob_eval.data.prompts import LabelSet, get_label_set, get_template
from logprob_eval.errors import ProtocolUnsupportedError
from logprob_eval.experiments.servers import server_agreement
from logprob_eval.experiments.table import to_frame

TOLERANCE = 1e-4
LLAMA_SERVER_TOLERANCE = 1e-3
"""llama-server normalises log-probs with a float32 sum of 262k exponentials: one position's
log-probs all move by the same few 1e-4 nats (3e-4 to 7e-4 measured); rankings stay."""
TEXTS = [
    Example("t1", "The striker scored twice in the last ten minutes.", ("Sports",)),
    Example("t2", "The museum opened a hall of old paintings.", ("Art",)),
]
SHORT = get_template("simple")  # "Text: ...\nTopics: ...\nTopic:"
NORMAL = get_label_set("normal")


def _frame(url: str, method: str, texts=TEXTS, label_set: LabelSet = NORMAL, **options):
    spec = f"openai-compatible:gemma-3-270m@{url}"
    with get_backend(spec, method=method, timeout=300, **options) as b:
        rows = score_jobs(b, make_jobs(texts, [SHORT], [label_set]), concurrency=1)
    assert all(r.status != "error" for r in rows), [r.error for r in rows if r.error]
    return to_frame(rows)


def _assert_agree(a, b, tolerance: float = TOLERANCE):
    agreement = server_agreement(a, b)
    assert agreement.rows == len(a) == len(b)
    assert agreement.holds(tolerance), agreement.as_json()


def test_generation_agrees_on_three_servers(
    llama_server_1tok, llama_cpp_python_1tok, own_server_1tok
):
    options = {"max_tokens": 4, "top_logprobs": 20}
    own = _frame(own_server_1tok.base_url, "generation", **options)
    assert (own["status"] == "exact").any()  # the check covers exact scores and bounds
    assert (own["status"] == "upper_bound").any()
    llama_server = _frame(llama_server_1tok.base_url, "generation", **options)
    _assert_agree(llama_server, own, LLAMA_SERVER_TOLERANCE)
    _assert_agree(_frame(llama_cpp_python_1tok.base_url, "generation", **options), own)


def test_exact_on_llama_cpp_python_agrees_with_the_own_server(
    llama_cpp_python_1tok, own_server_1tok
):
    """Three labels of one text: llama-cpp-python refuses a list of prompts (HTTP 500), so
    the backend learns to send one per request; its 0 is not "no tokens", so one token is
    generated and not read; it does not know ``continuation_offset``. The own server is
    reached the same way (``continuation_offset=False``): the whole text evaluated as one
    prompt, as llama-cpp-python does."""
    labels = LabelSet("three", {"Sports": "Sports", "Art": "Art", "Food": "Food"})
    url = llama_cpp_python_1tok.base_url
    with get_backend(f"openai-compatible:gemma-3-270m@{url}", method="exact", timeout=900) as b:
        rows = score_jobs(b, make_jobs(TEXTS[:1], [SHORT], [labels]), concurrency=1)
        assert [r.error for r in rows if r.error] == []
        assert b.batch_prompts is False and b.continuation_offset is False
    theirs = to_frame(rows)
    ours = _frame(own_server_1tok.base_url, "exact", TEXTS[:1], labels, continuation_offset=False)
    assert (theirs["status"] == "exact").all()
    _assert_agree(theirs, ours)


def test_exact_on_llama_server_stops_at_the_first_request_naming_echo(llama_server_1tok):
    url = llama_server_1tok.base_url
    jobs = make_jobs(TEXTS * 10, [SHORT], [NORMAL])
    with get_backend(f"openai-compatible:gemma-3-270m@{url}", method="exact") as b:
        with pytest.raises(ProtocolUnsupportedError) as info:
            score_jobs(b, jobs, concurrency=1, retry=RetryPolicy(attempts=6))
        assert b.request_count == 1  # 20 texts, retries on: one request, then the run stops
    assert "echo" in str(info.value) and "method='generation'" in str(info.value)


def test_own_server_through_openai_compatible_uses_the_extension_and_matches_local(own_server):
    """No option set: the backend reads ``continuation_offset`` from ``GET /v1/models``
    and gives the exact scores of ``local:`` (which always sends it), bit for bit."""
    url = own_server.base_url
    with get_backend(f"openai-compatible:gemma-3-270m@{url}", method="exact") as plain:
        rows = score_jobs(plain, make_jobs(TEXTS, [SHORT], [NORMAL]), concurrency=1)
        assert plain.continuation_offset is True
    with get_backend("local:gemma-3-270m", base_url=url, method="exact") as local:
        local_rows = score_jobs(local, make_jobs(TEXTS, [SHORT], [NORMAL]), concurrency=1)
    assert [(r.example_id, r.label, r.logprob) for r in rows] == [
        (r.example_id, r.label, r.logprob) for r in local_rows
    ]


def test_chat_through_the_openai_sdk_on_llama_server(llama_server_chat):
    """The seed's scenario: an instruct model's chat ``top_logprobs`` through the official
    SDK (``openai:``), served by llama-server."""
    url = llama_server_chat.base_url
    template = get_template("instruction")
    with get_backend(f"openai:smollm2-135m-instruct@{url}", method="generation", max_tokens=8) as b:
        rows = score_jobs(b, make_jobs(TEXTS, [template], [NORMAL]), concurrency=1)
    frame = to_frame(rows)
    assert (frame["status"] != "error").all(), frame["error"].tolist()
    assert len(frame) == 20
    assert (frame["status"] == "exact").any()  # the instruct model answers with a topic
    assert frame["logprob"].max() <= 0.0


def test_record_mode_once_starts_the_server_the_case_needs(tmp_path: Path, llama_server_1tok):
    """A suite case on ``...@llama-server`` records by starting its own llama-server (the
    fixture only proves the binary is there), then replays offline to the same rows."""
    from logprob_eval.evalsuite.config import load_eval_config
    from logprob_eval.evalsuite.runner import SuiteRunner

    (tmp_path / "evals.toml").write_text(
        "[dataset]\nsample = 2\nseed = 0\n"
        "[[models]]\n"
        'spec = "openai-compatible:gemma-3-270m@llama-server"\n'
        'methods = ["generation"]\none_token_batches = true\nmax_tokens = 4\n'
        '[grid]\ntemplates = ["simple"]\nlabel_sets = ["normal"]\n'
    )
    config = load_eval_config(tmp_path / "evals.toml")
    [case] = config.cases()
    assert case.id == "openai-compatible-gemma-3-270m-llama-server-1tok-generation-simple-normal"
    recorder = SuiteRunner(config, cassette_dir=tmp_path / "c", record_mode="once")
    try:
        recorded = recorder.frame(case)
        assert len(recorder._servers) == 1  # started for the case
    finally:
        recorder.close()
    cassette = json.loads((tmp_path / "c" / f"{case.id}.json").read_text())
    assert len(cassette["interactions"]) == 5  # 2 texts + 3 content-free inputs
    replayed = SuiteRunner(config, cassette_dir=tmp_path / "c", record_mode="none").frame(case)
    assert recorded[["example_id", "label", "logprob", "status"]].equals(
        replayed[["example_id", "label", "logprob", "status"]]
    )
    assert set(replayed["model"]) == {"openai-compatible:gemma-3-270m@llama-server 1tok"}


# -- the forced method: exact label scores without echo --------------------------------

ABOUT = get_label_set("simple")  # lower-case short labels: some rank below the top-1000


def _forced_vs_exact(url: str, own_url: str, label_set: LabelSet, tolerance: float, **options):
    from logprob_eval.experiments.servers import forced_agreement

    forced = _frame(url, "forced", label_set=label_set, **options)
    exact = _frame(own_url, "exact", label_set=label_set)
    assert (forced["method"] == "forced").all()
    found = forced_agreement(forced, exact, tolerance=tolerance)
    assert found.rows == len(exact), found.as_json()
    assert found.holds(), found.as_json()
    return found


def test_forced_on_llama_server_sends_ids_and_equals_exact_up_to_its_offset(
    llama_server_1tok, own_server_1tok
):
    """Token ids (its /tokenize); every label of these two texts is listed within 10,000,
    so every row is exact. Its values differ from the exact method by one offset per
    position (its float32 normalisation): within 1e-3, and the same for every label of a
    text to 1e-5."""
    url = llama_server_1tok.base_url
    found = _forced_vs_exact(
        url, own_server_1tok.base_url, ABOUT, LLAMA_SERVER_TOLERANCE, top_logprobs=20
    )
    assert found.exact == found.rows  # every label listed
    assert found.max_abs_diff > TOLERANCE  # the offset is real (1e-4 does not hold) ...
    assert found.max_offset_spread < 1e-5  # ... and one constant per position
    with get_backend(f"openai-compatible:gemma-3-270m@{url}", method="forced") as b:
        b.score(SHORT.render(TEXTS[0].text, ABOUT), list(ABOUT.phrases))
        assert b.forced_prompt == "ids"


def test_forced_on_llama_cpp_python_sends_text_and_equals_exact(
    llama_cpp_python_1tok, own_server_1tok
):
    """llama-cpp-python's server refuses a list of ids (HTTP 500, its prompt is str or
    list[str]) and has no /tokenize: text mode; the labels are single tokens, so each row's
    one step is the exact method's own prompt, and they agree to 1e-4."""
    url = llama_cpp_python_1tok.base_url
    found = _forced_vs_exact(url, own_server_1tok.base_url, ABOUT, TOLERANCE)
    assert found.exact == found.rows


def test_forced_bound_holds_where_the_label_is_not_listed(llama_server_1tok, own_server_1tok):
    """Capped at 20: the labels below the top-20 are intervals by the bound rule, each
    holding the exact score; the listed ones are exact."""
    url = llama_server_1tok.base_url
    found = _forced_vs_exact(
        url, own_server_1tok.base_url, ABOUT, LLAMA_SERVER_TOLERANCE, max_top_logprobs=20
    )
    assert found.bounds > 0  # both kinds checked
    assert found.exact > 0
    assert found.bounds_holding == found.bounds
