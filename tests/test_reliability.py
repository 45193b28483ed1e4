"""Reliability under faults, against servers started on loopback (bounded, self-stopping).

The fault server answers in OpenAI's documented chat shape (hand-written body, see
api_bodies.py) and injects, by a fixed schedule, 429 with Retry-After, 500/503 bursts,
dropped connections, truncated and malformed JSON and answers slower than the client's
timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from logprob_eval.backends import get_backend
from logprob_eval.backends.jobs import RetryPolicy, make_jobs, score_jobs
from logprob_eval.cache import ResponseCache
from logprob_eval.data.datasets import Example
from logprob_eval.data.prompts import LABEL_SETS, TEMPLATES

from .api_bodies import OPENAI_CHAT

TRANSIENT = ["429", "500", "503", "drop", "truncated", "slow"]
PERMANENT = ["400", "no-logprobs"]
TIMEOUT = 1.0  # generous: a loaded CI machine must not turn a normal answer into a fault


def fault_plan(prompt: str) -> list[str]:
    """The faults a prompt meets before it succeeds (permanent ones never succeed)."""
    h = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    if h % 100 < 5:
        return [PERMANENT[h % 2]] * 100
    if h % 100 < 22:  # ~17% of prompts meet 1-2 transient faults: ~20% of all calls fail
        return [TRANSIENT[(h >> (8 + 3 * k)) % len(TRANSIENT)] for k in range(1 + (h >> 4) % 2)]
    return []


class FaultServer:
    def __init__(self, *, delay: float = 0.0, faults: bool = True) -> None:
        self.attempts: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.delay = delay
        self.faults = faults
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][0]["content"]
                with outer.lock:
                    n = outer.attempts[prompt]
                    outer.attempts[prompt] += 1
                plan = fault_plan(prompt) if outer.faults else []
                fault = plan[n] if n < len(plan) else None
                if outer.delay:
                    time.sleep(outer.delay)
                if fault == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault == "slow":
                    time.sleep(TIMEOUT * 2.5)
                status, extra, data = 200, {}, json.dumps(OPENAI_CHAT)
                if fault in ("429", "500", "503", "400"):
                    status = int(fault)
                    data = json.dumps({"error": {"message": f"injected {fault}", "code": None}})
                    if fault == "429":
                        extra = {"Retry-After": "0.01"}
                elif fault == "truncated":
                    data = data[: len(data) // 2]
                elif fault == "no-logprobs":
                    d = json.loads(data)
                    d["choices"][0]["logprobs"] = None
                    data = json.dumps(d)
                elif fault is None:
                    with outer.lock:
                        outer.served[prompt] += 1
                raw = data.encode()
                try:
                    self.send_response(status)
                    for k, v in {"Content-Type": "application/json", **extra}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _jobs(n: int) -> list:
    examples = [
        Example(f"x{i:03d}", f"Synthetic text number {i} about a match.", ("Sports",))
        for i in range(n)
    ]
    return make_jobs(examples, [TEMPLATES["simple"]], [LABEL_SETS["normal"]])


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


def test_a_live_run_survives_injected_faults(fault_server):
    jobs = _jobs(200)
    plans = {j.prompt: fault_plan(j.prompt) for j in jobs}
    faulty = sum(1 if p[:1] and p[0] in PERMANENT else len(p) for p in plans.values())
    clean = sum(1 for p in plans.values() if not p or p[0] not in PERMANENT)
    assert 0.12 < faulty / (faulty + clean) < 0.3  # about 20% of all calls meet a fault
    with get_backend(
        "openai:gpt-4.1-mini",
        base_url=fault_server.url,
        api_key="sk-fake-" + "0" * 20,
        timeout=TIMEOUT,
    ) as backend:
        finished: dict[int, list] = {}
        rows = score_jobs(
            backend,
            jobs,
            concurrency=4,
            retry=RetryPolicy(attempts=6, base=0.01, cap=0.05),
            on_result=lambda i, r: finished.__setitem__(i, r),
        )
    assert len(rows) == len(jobs) * 10
    assert sorted(finished) == list(range(len(jobs)))  # every job handed over as it finished
    by_prompt = {j.prompt: rows[i * 10 : (i + 1) * 10] for i, j in enumerate(jobs)}
    kinds = Counter()
    for prompt, plan in plans.items():
        got = by_prompt[prompt]
        if plan and plan[0] in PERMANENT:
            kinds["permanent"] += 1
            assert {r.status for r in got} == {"error"}
            assert (
                ("HTTP 400" in got[0].error) if plan[0] == "400" else ("logprobs" in got[0].error)
            )
            assert fault_server.attempts[prompt] == 1  # not retried
        else:
            kinds["transient" if plan else "clean"] += 1
            assert {r.status for r in got} <= {"exact", "upper_bound"}, got[0].error
            assert fault_server.served[prompt] == 1
            assert fault_server.attempts[prompt] == len(plan) + 1
    assert kinds["permanent"] and kinds["transient"] > 30


CRASH_SCRIPT = """
import sys
from logprob_eval.backends import get_backend
from logprob_eval.cache import ResponseCache
from logprob_eval.data.datasets import Example
from logprob_eval.data.prompts import LABEL_SETS, TEMPLATES
from logprob_eval.backends.jobs import make_jobs, score_jobs
url, cache_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
examples = [Example(f"x{i:03d}", f"Clean text number {i} about a recipe.", ("Food",))
            for i in range(n)]
jobs = make_jobs(examples, [TEMPLATES["simple"]], [LABEL_SETS["normal"]])
with get_backend("openai:gpt-4.1-mini", base_url=url, api_key="sk-fake-" + "1" * 20,
                 cache=ResponseCache(cache_dir)) as b:
    score_jobs(b, jobs, concurrency=2)
    print("requests", b.request_count, flush=True)
"""


def test_a_killed_run_resumes_from_its_cache(tmp_path):
    n = 80
    script = tmp_path / "run.py"
    script.write_text(CRASH_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with FaultServer(delay=0.03, faults=False) as srv:
        proc = subprocess.Popen(
            [sys.executable, str(script), srv.url, str(tmp_path / "c"), str(n)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while sum(srv.served.values()) < n // 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # halfway, mid-request
        proc.wait(10)
        cached = len(ResponseCache(tmp_path / "c"))
        assert 0 < cached < n
        before = sum(srv.attempts.values())
        out = subprocess.run(
            [sys.executable, str(script), srv.url, str(tmp_path / "c"), str(n)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        resumed = sum(srv.attempts.values()) - before
    assert resumed == n - cached  # only the missing requests were made
    assert out.stdout.strip() == f"requests {resumed}"
    assert len(ResponseCache(tmp_path / "c")) == n
