"""Recording replaces a committed cassette only when the whole case succeeded (the runner,
directly: no pytest subprocess). The server is the hand-written loopback stand-in of
``helpers`` (not a model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug import Request, Response

from logprob_eval.evalsuite.config import load_eval_config
from logprob_eval.evalsuite.runner import (
    CassetteCorruptError,
    CassetteMissError,
    RecordingFailedError,
    SuiteRunner,
)
from logprob_eval.server.process import free_port

from .helpers import fake_echo_completions

CONFIG = """
[dataset]
sample = 3
[[models]]
spec = "openai-compatible:fake@{url}"
methods = ["exact"]
[grid]
templates = ["simple"]
label_sets = ["normal"]
"""


@pytest.fixture
def url(httpserver):
    def answer(request: Request) -> Response:
        body = fake_echo_completions(json.loads(request.get_data()))
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/completions").respond_with_handler(answer)
    return httpserver.url_for("/v1")


def runner(tmp_path: Path, url: str, mode: str) -> SuiteRunner:
    cfg = tmp_path / "evals.toml"
    cfg.write_text(CONFIG.format(url=url))
    return SuiteRunner(
        load_eval_config(cfg), cassette_dir=tmp_path / "cassettes", record_mode=mode, root=tmp_path
    )


@pytest.fixture
def committed(tmp_path, url):
    """The case recorded once; returns (runner factory, case, cassette path, its bytes)."""
    first = runner(tmp_path, url, "once")
    case = first.config.cases()[0]
    first.scores(case)
    path = first.cassette_path(case.id)
    return case, path, path.read_bytes()


def leftovers(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p != path]


@pytest.mark.parametrize("mode", ["rewrite", "all", "new_episodes"])
def test_interrupted_recording_leaves_the_cassette(tmp_path, url, committed, mode):
    case, path, before = committed
    r = runner(tmp_path, url, mode)
    sent = []

    def work(backend, live):
        sent.append(backend.score("Text: a\nTopic:", ["Sports"]))  # a request went out
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        r._run(case, case.id, "exact", work)
    assert sent  # recording had begun
    assert path.read_bytes() == before
    assert leftovers(path) == []


def test_failed_rows_leave_the_cassette_and_are_not_retried(tmp_path, committed):
    case, path, before = committed
    dead = f"http://127.0.0.1:{free_port()}/v1"
    r = runner(tmp_path, dead, "rewrite")
    case = r.config.cases()[0]  # the same case id, served from the dead URL
    with pytest.raises(RecordingFailedError, match="no server at") as first:
        r.scores(case)
    assert "is unchanged" in str(first.value)
    with pytest.raises(RecordingFailedError) as again:  # the case's next test: at once
        r.scores(case)
    assert again.value is first.value
    assert path.read_bytes() == before
    assert leftovers(path) == []


def test_a_successful_recording_replaces_the_cassette(tmp_path, url, committed):
    case, path, before = committed
    cfg = tmp_path / "evals.toml"
    cfg.write_text(CONFIG.format(url=url) + '[templates]\nsimple = "T: {text}\\nTopic:"\n')
    stale = SuiteRunner(
        load_eval_config(cfg),
        cassette_dir=tmp_path / "cassettes",
        record_mode="none",
        root=tmp_path,
    )
    case = stale.config.cases()[0]
    with pytest.raises(CassetteMissError, match="no recording"):
        stale.scores(case)
    once = SuiteRunner(
        stale.config, cassette_dir=tmp_path / "cassettes", record_mode="once", root=tmp_path
    )
    rows = once.scores(case)
    assert all(r.status == "exact" for r in rows)
    assert path.read_bytes() != before
    assert "T: " in path.read_text()
    assert leftovers(path) == []


def test_a_valid_cassette_under_once_contacts_no_server(tmp_path, committed):
    case, path, before = committed
    dead = f"http://127.0.0.1:{free_port()}/v1"  # would fail if anything were sent
    r = runner(tmp_path, dead, "once")
    case = r.config.cases()[0]  # the same case id, served from the dead URL
    assert len(r.scores(case)) == (3 + 3) * 10  # texts and content-free inputs x labels
    assert r.requests_live == 0
    assert path.read_bytes() == before


def test_a_corrupt_cassette_is_named_with_its_damage(tmp_path, url, committed):
    case, path, _ = committed
    path.write_text(path.read_text()[:200])
    with pytest.raises(CassetteCorruptError) as err:
        runner(tmp_path, url, "none").scores(case)
    msg = str(err.value)
    assert f"cassette {path} is corrupt (line " in msg
    assert "git checkout --" in msg and "--record-mode=once" in msg
