"""Batch scoring against a loopback stand-in of OpenAI's Batch API (``batch_standin.py``):
200 requests, some failing; a run killed with SIGKILL while it polls resumes from the saved
batch id, submits nothing twice and loses no result."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logprob_eval.backends import get_backend
from logprob_eval.backends.jobs import make_jobs, score_jobs
from logprob_eval.backends.openai_batch import score_jobs_batch
from logprob_eval.cache import ResponseCache
from logprob_eval.data.datasets import Example
from logprob_eval.data.prompts import LABEL_SETS, TEMPLATES
from logprob_eval.errors import ConfigError

from .batch_standin import BatchStandIn, failure

KEY = "sk-fake-" + "b" * 24
SCRIPT = """
import json, sys
from logprob_eval.backends import get_backend
from logprob_eval.backends.openai_batch import score_jobs_batch
from logprob_eval.cache import ResponseCache
from logprob_eval.data.datasets import Example
from logprob_eval.data.prompts import LABEL_SETS, TEMPLATES
from logprob_eval.backends.jobs import make_jobs
url, cache_dir, out, n, key = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
examples = [Example(f"x{i:03d}", f"Batch text number {i} about a match.", ("Sports",))
            for i in range(n)]
jobs = make_jobs(examples, [TEMPLATES["simple"]], [LABEL_SETS["normal"]])
cache = ResponseCache(cache_dir)
with get_backend("openai:gpt-4.1-mini", base_url=url, api_key=key, cache=cache) as b:
    rows = score_jobs_batch(b, jobs, cache=cache, poll_interval=0.02)
    with open(out, "w") as fh:
        json.dump([r.as_dict() for r in rows], fh)
    print("synchronous requests", b.request_count, flush=True)
"""
N = 200


def _jobs(n: int = N) -> list:
    examples = [
        Example(f"x{i:03d}", f"Batch text number {i} about a match.", ("Sports",)) for i in range(n)
    ]
    return make_jobs(examples, [TEMPLATES["simple"]], [LABEL_SETS["normal"]])


@pytest.fixture
def standin(httpserver):
    s = BatchStandIn(step=10)
    httpserver.expect_request(re.compile(".*")).respond_with_handler(s.handle)
    s.url = httpserver.url_for("/v1")  # type: ignore[attr-defined]
    return s


def _run(args, env, **kw):
    return subprocess.Popen([sys.executable, *args], env=env, **kw)


def test_200_requests_some_failing_killed_mid_poll_resume_and_lose_nothing(standin, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    cache_dir, out = tmp_path / "cache", tmp_path / "rows.json"
    args = [str(script), standin.url, str(cache_dir), str(out), str(N), KEY]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = _run(args, env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while standin.calls["poll"] < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # mid-poll: the batch exists, nothing downloaded
    proc.wait(10)
    assert standin.calls["create"] == 1 and standin.calls["download"] == 0
    saved = list((cache_dir / "batches").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["batch_id"] == "batch_1"
    assert len(ResponseCache(cache_dir)) == 0

    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "synchronous requests 0"
    # resumed the saved batch: one upload, one batch, both files downloaded once
    assert (standin.calls["upload"], standin.calls["create"], standin.calls["download"]) == (
        1,
        1,
        2,
    )
    lines = standin.batches["batch_1"]["lines"]
    assert len(lines) == N
    failing = {x["body"]["messages"][0]["content"]: failure(x["custom_id"]) for x in lines}
    n_failed = sum(v is not None for v in failing.values())
    assert 5 <= n_failed <= 30

    rows = json.loads(out.read_text())
    assert len(rows) == N * 10  # every job, every label: 0 results lost
    jobs = _jobs()
    for i, job in enumerate(jobs):
        got = rows[i * 10 : (i + 1) * 10]
        assert {r["example_id"] for r in got} == {job.example.id}
        kind = failing[job.prompt]
        if kind is None:
            assert {r["status"] for r in got} <= {"exact", "upper_bound"}
            sports = next(r for r in got if r["label"] == "Sports")
            assert sports["logprob"] == pytest.approx(-0.01)
        else:
            assert {r["status"] for r in got} == {"error"}
            expected = "HTTP 400 (Invalid" if kind == "400" else "batch_expired (This request"
            assert expected in got[0]["error"]
    cache = ResponseCache(cache_dir)
    assert len(cache) == N - n_failed  # every successful line is in the response cache
    assert KEY not in (cache_dir / "responses.sqlite").read_bytes().decode("latin-1")

    # the same jobs scored synchronously from that cache: no request, identical rows
    with get_backend("openai:gpt-4.1-mini", base_url=standin.url, api_key=KEY, cache=cache) as b:
        ok = [j for j in jobs if failing[j.prompt] is None]
        sync = score_jobs(b, ok, concurrency=2)
        assert b.request_count == 0
    batch_ok = [r for r in rows if r["status"] != "error"]
    assert [r.as_dict() for r in sync] == batch_ok

    # a rerun resubmits exactly the failed lines, in a new batch
    again = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert again.stdout.strip() == "synchronous requests 0"
    assert standin.calls["create"] == 2
    assert len(standin.batches["batch_2"]["lines"]) == n_failed


def test_backends_without_a_batch_api_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza" + "x" * 35)
    cache = ResponseCache(tmp_path)
    with get_backend("gemini:gemini-2.0-flash", cache=cache) as b:
        with pytest.raises(ConfigError, match=r"gemini:gemini-2\.0-flash has no batch API"):
            score_jobs_batch(b, _jobs(2), cache=cache)
    with get_backend("openai:gpt-4.1-mini", api_key=KEY) as b:
        with pytest.raises(ConfigError, match="the backend's own response cache"):
            score_jobs_batch(b, _jobs(2), cache=cache)


def test_cli_score_and_stability_with_batch(standin, tmp_path, monkeypatch, capsys):
    import pandas as pd

    from logprob_eval.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    spec = f"openai:gpt-4.1-mini@{standin.url}"
    common = ["--sample", "12", "--cache-dir", str(tmp_path / "c"), "--poll-interval", "0.01"]
    rc = main(
        [
            "score",
            "--model",
            spec,
            "--batch",
            *common,
            "--out",
            str(tmp_path / "s.csv"),
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    df = pd.read_csv(tmp_path / "s.csv", keep_default_na=False, na_values=[""])
    assert len(df) == 12 * 10 and standin.calls["create"] == 1
    lines = standin.batches["batch_1"]["lines"]
    n_failed = sum(failure(x["custom_id"]) is not None for x in lines)
    assert (df["status"] == "error").sum() == 10 * n_failed
    assert lines[0]["url"] == "/v1/chat/completions"
    # stability: the same texts again (cached, only the new ones go out) plus content-free
    rc = main(
        [
            "stability",
            "--model",
            spec,
            "--batch",
            *common,
            "--out",
            str(tmp_path / "r"),
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "r" / "latest" / "report.html").is_file()
    resent = standin.batches["batch_2"]["lines"]
    assert len(resent) == n_failed + 3  # the failed lines again + 3 content-free inputs
    assert KEY not in capsys.readouterr().out
