"""Eval cases recorded through OpenAI's Batch API (``batch = true``), against the loopback
stand-in of the Batch API (``batch_standin.py``, written from the API reference; its answers
are a documented chat body, not a model): the cassette holds the batch's own traffic, replay
plays it back offline in order without waiting, a changed prompt is a stale cassette, a
failed line keeps the committed cassette, and no key is stored."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest

from logprob_eval.backends import get_backend
from logprob_eval.backends.jobs import make_jobs, score_jobs
from logprob_eval.cache import ResponseCache
from logprob_eval.errors import ConfigError
from logprob_eval.evalsuite.bodies import BOUNDARY, canonical, decode_body, encode_body
from logprob_eval.evalsuite.cassettes import JsonSerializer, explain_miss
from logprob_eval.evalsuite.config import load_eval_config
from logprob_eval.evalsuite.runner import (
    CassetteMissError,
    RecordingFailedError,
    SuiteRunner,
)
from logprob_eval.experiments.stability import content_free_examples

from .batch_standin import BatchStandIn

pytest_plugins = ["pytester"]

KEY = "sk-proj-" + "Btch" * 8
CASE = "openai-gpt-4.1-mini-generation-simple-normal"
N_TEXTS = 4
N_LINES = N_TEXTS + len(content_free_examples())  # one request per text, one batch line each
CONFIG = """
[dataset]
path = "topics"
sample = 4
seed = 2

[[models]]
spec = "openai:gpt-4.1-mini"
methods = ["generation"]
base_url = "{url}"
batch = true
batch_poll_interval = {poll}
batch_cache_dir = "batch-cache"

[grid]
templates = ["simple"]
label_sets = ["normal"]
"""
STALE = '\n[templates]\nsimple = "Passage: {text}\\nTopic:"\n'


@pytest.fixture
def standin(httpserver):
    s = BatchStandIn(step=2, fail=lambda cid: None)
    httpserver.expect_request(re.compile(".*")).respond_with_handler(s.handle)
    s.url = httpserver.url_for("/v1")  # type: ignore[attr-defined]
    return s


def make_runner(root: Path, url: str, mode: str, *, poll: float = 0.01, extra: str = ""):
    cfg = root / "evals.toml"
    cfg.write_text(CONFIG.format(url=url, poll=poll) + extra)
    return SuiteRunner(
        load_eval_config(cfg), cassette_dir=root / "cassettes", record_mode=mode, root=root
    )


def interactions(path: Path) -> list[dict]:
    return json.loads(path.read_text())["interactions"]


def route(it: dict) -> str:
    return f"{it['request']['method']} {re.sub(r'^https?://[^/]+', '', it['request']['uri'])}"


@pytest.fixture
def recorded(tmp_path, standin, monkeypatch):
    """The case recorded once through a batch: (case, cassette path, its bytes, rows)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    r = make_runner(tmp_path, standin.url, "once")
    case = r.config.cases()[0]
    rows = r.scores(case)
    monkeypatch.delenv("OPENAI_API_KEY")
    path = r.cassette_path(case.id)
    return case, path, path.read_bytes(), rows


def test_the_cassette_holds_the_batch_traffic_and_no_key(recorded, standin, httpserver, tmp_path):
    case, path, _, rows = recorded
    assert case.id == CASE
    assert len(rows) == N_LINES * 10 and {r.status for r in rows} <= {"exact", "upper_bound"}
    # one upload, one batch, polls until N_LINES lines ran at 2 per poll, two downloads
    polls = -(-N_LINES // 2)
    assert dict(standin.calls) == {"upload": 1, "create": 1, "poll": polls, "download": 2}
    its = interactions(path)
    assert [route(it) for it in its] == [
        "POST /v1/files",
        "POST /v1/batches",
        *["GET /v1/batches/batch_1"] * polls,
        "GET /v1/files/file-out-batch_1/content",
        "GET /v1/files/file-err-batch_1/content",
    ]
    # the upload, stored part by part with the JSONL decoded; the lines are the case's prompts
    upload = its[0]["request"]
    assert upload["headers"] == {"content-type": [f"multipart/form-data; boundary={BOUNDARY}"]}
    parts = upload["body"]["multipart"]
    assert parts["purpose"] == "batch"
    lines = parts["file"]["jsonl"]
    sent = standin.files["file-in-1"].decode().splitlines()
    assert lines == [json.loads(x) for x in sent]  # what went over the wire, line for line
    jobs = make_jobs(
        [*make_runner(tmp_path, standin.url, "none").dataset, *content_free_examples()],
        [case.template],
        [case.label_set],
    )
    assert [x["body"]["messages"][0]["content"] for x in lines] == [j.prompt for j in jobs]
    statuses = [it["response"]["body"]["json"]["status"] for it in its[2 : 2 + polls]]
    assert statuses == ["in_progress"] * (polls - 1) + ["completed"]
    assert len(its[-2]["response"]["body"]["jsonl"]) == N_LINES  # the output file, decoded
    # the key went out, and is in no stored byte
    assert all(r.headers.get("Authorization") == f"Bearer {KEY}" for r, _ in httpserver.log)
    stored = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert path in stored and any(p.suffix == ".sqlite" for p in stored)
    for p in stored:
        assert KEY.encode() not in p.read_bytes(), p
    assert {k.lower() for it in its for s in ("request", "response") for k in it[s]["headers"]} == {
        "content-type"
    }


def test_answers_land_in_the_response_cache_under_the_synchronous_keys(recorded, standin, tmp_path):
    case, _, _, rows = recorded
    cache = ResponseCache(tmp_path / "batch-cache")
    assert len(cache) == N_LINES
    examples = [*make_runner(tmp_path, standin.url, "none").dataset, *content_free_examples()]
    jobs = make_jobs(examples, [case.template], [case.label_set])
    with get_backend("openai:gpt-4.1-mini", base_url=standin.url, api_key=KEY, cache=cache) as b:
        sync = score_jobs(b, jobs, concurrency=1)
        assert b.request_count == 0  # every answer came from the cache
    assert [r.as_dict() for r in sync] == [r.as_dict() for r in rows]


def test_replay_sends_nothing_waits_for_nothing_and_plays_polls_in_order(
    recorded, standin, httpserver, tmp_path, monkeypatch
):
    import openai.resources.batches as batches

    _, path, raw, rows = recorded
    sent = len(httpserver.log)
    seen: list[str] = []
    retrieve = batches.Batches.retrieve

    def spy(self, *a, **kw):
        batch = retrieve(self, *a, **kw)
        seen.append(batch.status)
        return batch

    monkeypatch.setattr(batches.Batches, "retrieve", spy)
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    # an hour between polls: a replay that waited would never end
    replay = make_runner(tmp_path, standin.url, "none", poll=3600)
    got = replay.scores(replay.config.cases()[0])
    assert [r.as_dict() for r in got] == [r.as_dict() for r in rows]
    assert len(httpserver.log) == sent  # the stand-in saw nothing
    assert waits == []
    recorded_statuses = [
        it["response"]["body"]["json"]["status"]
        for it in interactions(path)
        if route(it) == "GET /v1/batches/batch_1"
    ]
    assert seen == recorded_statuses  # each poll once, in recorded order
    assert path.read_bytes() == raw


def test_a_changed_prompt_is_a_stale_cassette_naming_the_line(recorded, standin, tmp_path):
    _, path, raw, _ = recorded
    stale = make_runner(tmp_path, standin.url, "none", extra=STALE)
    with pytest.raises(CassetteMissError) as exc:
        stale.scores(stale.config.cases()[0])
    msg = str(exc.value)
    assert f"case {CASE}: a request has no recording in {CASE}.json" in msg
    assert "file.jsonl[0].body.messages[0].content" in msg
    assert "Passage: " in msg and "Text: " in msg
    assert f"-m openai -k {CASE} --record-mode=once" in msg
    assert path.read_bytes() == raw


def test_a_failed_line_fails_the_recording_and_keeps_the_cassette(
    recorded, standin, tmp_path, monkeypatch
):
    _, path, raw, _ = recorded
    first, third = (
        x["custom_id"]
        for x in interactions(path)[0]["request"]["body"]["multipart"]["file"]["jsonl"][0:3:2]
    )
    standin.fail = {first: "400", third: "expired"}.get
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    again = make_runner(tmp_path, standin.url, "rewrite")
    with pytest.raises(RecordingFailedError) as exc:
        again.scores(again.config.cases()[0])
    msg = str(exc.value)
    assert standin.calls["create"] == 2  # the batch really ran again
    assert "20 of 70 rows have no answer" in msg
    assert "batch line failed: HTTP 400 (Invalid 'messages[0].content')" in msg
    assert "batch_expired" in msg
    assert f"the committed cassette cassettes/{CASE}.json is unchanged" in msg
    assert path.read_bytes() == raw
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file


def test_multipart_uploads_match_whatever_the_boundary():
    import httpx2

    def upload(text: str) -> bytes:
        req = httpx2.Request(
            "POST",
            "http://h/v1/files",
            data={"purpose": "batch"},
            files={"file": ("b.jsonl", text.encode())},
        )
        return req.read()

    lines = '{"custom_id": "a", "body": {"x": "caf\\u00e9"}}\n{"custom_id": "b", "body": {}}\n'
    one, two = upload(lines), upload(lines)
    assert one != two  # a random boundary each time
    assert canonical(one) == canonical(two)
    stored = decode_body(one)
    assert stored["multipart"]["file"]["jsonl"][0]["body"] == {"x": "café"}
    assert canonical(encode_body(stored)) == canonical(one)  # what replay matches on
    assert canonical(upload(lines.replace("a", "c"))) != canonical(one)
    # JSON Lines answers are stored line by line and read back as the same values
    jsonl = decode_body(b'{"a": 1}\n{"b": [2]}\n')
    assert jsonl == {"jsonl": [{"a": 1}, {"b": [2]}]}
    assert [json.loads(x) for x in encode_body(jsonl).splitlines()] == [{"a": 1}, {"b": [2]}]
    assert decode_body("plain text") == {"string": "plain text"}


def test_a_poll_beyond_the_recording_says_so(recorded):
    _, path, _, _ = recorded
    uri = "http://127.0.0.1:1/v1/batches/batch_1"
    assert "GET /v1/batches/batch_1 is recorded 4 time(s), all played already" in explain_miss(
        path, b"", method="GET", uri=uri
    )
    assert "GET /v1/batches/batch_9 was never recorded" in explain_miss(
        path, b"", method="GET", uri=uri.replace("_1", "_9")
    )


def test_the_serializer_refuses_a_key_inside_an_upload():
    body = (
        f'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        f'Content-Type: application/octet-stream\r\n\r\n{{"api_key": "{KEY}"}}\r\n--b--\r\n'
    )
    cassette = {
        "interactions": [
            {
                "request": {"method": "POST", "uri": "http://h/v1/files", "body": body},
                "response": {"status": {"code": 200}, "headers": {}, "body": {"string": ""}},
            }
        ]
    }
    with pytest.raises(ValueError, match="key-shaped"):
        JsonSerializer.serialize(cassette)


def _load(tmp_path: Path, model: str):
    path = tmp_path / "e.toml"
    path.write_text(f'[dataset]\npath = "topics"\n\n[[models]]\n{model}\n')
    return load_eval_config(path)


def test_the_config_switch_is_checked(tmp_path):
    ok = _load(tmp_path, 'spec = "openai:gpt-4.1-mini"\napi = "responses"\nbatch = true')
    assert ok.models[0].options["batch"] is True
    _load(tmp_path, 'spec = "openai-responses:gpt-4.1-mini"\nbatch = true\nbatch_poll_interval = 5')
    with pytest.raises(ConfigError, match=r"models\[0\]\.batch = true: gemini has no batch API"):
        _load(tmp_path, 'spec = "gemini:gemini-2.0-flash"\nbatch = true')
    with pytest.raises(ConfigError, match=r"exists for openai:, openai-responses: models"):
        _load(tmp_path, 'spec = "ollama:llama3.2"\nbatch = true')
    with pytest.raises(ConfigError, match=r"batch_poll_interval: applies only with batch = true"):
        _load(tmp_path, 'spec = "openai:gpt-4.1-mini"\nbatch_poll_interval = 5')
    with pytest.raises(ConfigError, match=r"batch_poll_interval = 0: Input should be greater"):
        _load(tmp_path, 'spec = "openai:gpt-4.1-mini"\nbatch = true\nbatch_poll_interval = 0')
    with pytest.raises(ConfigError, match=r"models\[0\]\.bacth: .*did you mean 'batch'"):
        _load(tmp_path, 'spec = "openai:gpt-4.1-mini"\nbacth = true')


# -- through pytest, as a user runs it -------------------------------------------------------

EVAL_TEST = """
from logprob_eval.experiments import ranking_metrics, split_content_free

def test_ranking(llm_case, llm_scores):
    df, _ = split_content_free(llm_scores(llm_case))
    m = ranking_metrics(df, llm_case.config)
    assert m.n_examples == 4 and m.n_errors == 0
"""


def test_record_replay_stale_and_failed_batch_through_pytest(
    pytester, standin, httpserver, monkeypatch
):
    for var in ("OPENAI_API_KEY", "HYPOTHESIS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    pytester.makefile(".toml", evals=CONFIG.format(url=standin.url, poll=0.01))
    pytester.makeini(
        "[pytest]\nllm_config = evals.toml\nllm_cassette_dir = cassettes\n"
        "llm_builtin_checks = false\n"
    )
    pytester.makepyfile(test_evals=EVAL_TEST)
    cassette = pytester.path / "cassettes" / f"{CASE}.json"

    skip = pytester.runpytest_subprocess("-rs")
    skip.assert_outcomes(skipped=1)
    skip.stdout.fnmatch_lines([f"*no cassette for {CASE}*OPENAI_API_KEY=... pytest . -m openai*"])

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    rec = pytester.runpytest_subprocess("--record-mode=once", "-p", "no:cacheprovider")
    rec.assert_outcomes(passed=1)
    assert standin.calls["create"] == 1 and cassette.is_file()
    raw = cassette.read_bytes()
    assert KEY not in rec.stdout.str() + rec.stderr.str()
    for p in pytester.path.rglob("*"):
        if p.is_file():
            assert KEY.encode() not in p.read_bytes(), p
    sent = len(httpserver.log)

    monkeypatch.delenv("OPENAI_API_KEY")
    replay = pytester.runpytest_subprocess("--block-network", "-p", "no:cacheprovider")
    replay.assert_outcomes(passed=1)
    assert len(httpserver.log) == sent

    pytester.makefile(".toml", evals=CONFIG.format(url=standin.url, poll=0.01) + STALE)
    stale = pytester.runpytest_subprocess("--block-network", "-p", "no:cacheprovider")
    stale.assert_outcomes(failed=1)
    stale.stdout.fnmatch_lines(
        [f"*case {CASE}: a request has no recording*file.jsonl[[]0[]].body.messages*Passage:*"]
    )
    assert len(httpserver.log) == sent and cassette.read_bytes() == raw

    pytester.makefile(".toml", evals=CONFIG.format(url=standin.url, poll=0.01))
    standin.fail = lambda cid: "400" if hashlib.sha256(cid.encode()).digest()[0] < 128 else None
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    failed = pytester.runpytest_subprocess("--record-mode=rewrite", "-p", "no:cacheprovider")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*recording failed*batch line failed: HTTP 400*is unchanged*"])
    assert standin.calls["create"] == 2
    assert cassette.read_bytes() == raw


def test_a_server_gone_mid_poll_fails_the_recording_instead_of_polling_forever(
    tmp_path, monkeypatch
):
    import threading
    import types

    from pytest_httpserver import HTTPServer

    from logprob_eval.evalsuite import batching

    server = HTTPServer(host="127.0.0.1", port=0)
    standin = BatchStandIn(step=1, fail=lambda cid: None)

    def handle(request):
        response = standin.handle(request)
        if standin.calls["poll"] == 2:  # the batch exists and runs; then the server goes
            threading.Thread(target=server.stop).start()
        return response

    server.expect_request(re.compile(".*")).respond_with_handler(handle)
    server.start()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        assert len(waits) < 200, "still polling a server that is gone"

    monkeypatch.setattr(batching, "time", types.SimpleNamespace(sleep=sleep))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    try:
        r = make_runner(tmp_path, server.url_for("/v1"), "rewrite")
        with pytest.raises(RecordingFailedError, match=r"recording failed: .*no server at") as exc:
            r.scores(r.config.cases()[0])
    finally:
        if server.is_running():
            server.stop()
    assert standin.calls["create"] == 1 and 2 <= len(waits) < 200
    assert KEY not in str(exc.value)
    assert not (tmp_path / "cassettes").exists() or not any((tmp_path / "cassettes").iterdir())
