"""The pytest plugin driven end to end through ``pytester``, against a loopback stand-in
server (``helpers.fake_echo_completions``: hand-written, deterministic, not a model)."""

from __future__ import annotations

import json
import re
import time

import pandas as pd  # here, not in a test: pytester unloads what a test imports, numpy loads once
import pytest
from werkzeug import Request, Response

from logprob_eval.data.prompts import TOPICS

from .helpers import fake_echo_completions

pytest_plugins = ["pytester"]

EVAL_TEST = """
from logprob_eval.experiments import ranking_metrics, split_content_free

def test_ranking(llm_case, llm_scores):
    df, _ = split_content_free(llm_scores(llm_case))
    m = ranking_metrics(df, llm_case.config)
    assert m.n_examples == 8
    assert m.n_errors == 0
"""

CONFIG = """
[dataset]
path = "topics"
sample = 8
seed = 3

[[models]]
spec = "openai-compatible:fake@{url}"
methods = ["exact"]

[[models]]
spec = "openai:gpt-4.1-mini"
methods = ["generation"]
templates = ["simple"]
label_sets = ["normal"]

[grid]
templates = ["simple", "mine"]
label_sets = ["normal", "verbose"]

[templates]
mine = "{template}"
"""


@pytest.fixture
def fake_url(httpserver):
    def handler(request: Request) -> Response:
        return Response(
            json.dumps(fake_echo_completions(json.loads(request.get_data()))),
            content_type="application/json",
        )

    httpserver.expect_request("/v1/completions").respond_with_handler(handler)
    return httpserver.url_for("/v1")


@pytest.fixture
def suite(pytester, fake_url, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)

    def write(template: str = "Text: {text}\\nLabel:") -> None:
        pytester.makefile(".toml", evals=CONFIG.format(url=fake_url, template=template))

    write()
    pytester.makeini(
        "[pytest]\nllm_config = evals.toml\nllm_cassette_dir = cassettes\n"
        "llm_builtin_checks = false\n"
    )
    pytester.makepyfile(test_evals=EVAL_TEST)
    pytester.write = write  # type: ignore[attr-defined]
    return pytester


def test_help_lists_the_options(pytester):
    out = pytester.runpytest_subprocess("--help").stdout.str()
    for opt in (
        "--llm-config",
        "--llm-model",
        "--llm-method",
        "--update-baselines",
        "--llm-report-dir",
        "--record-mode",
        "--block-network",
    ):
        assert opt in out


def test_markers_are_registered(pytester):
    out = pytester.runpytest_subprocess("--markers").stdout.str()
    for m in ("live:", "local:", "openai:", "ollama:"):
        assert f"@pytest.mark.{m}" in out


def test_floors_a_chance_scorer_clears_are_listed_at_collection(suite):
    with open(suite.path / "evals.toml", "a") as f:
        f.write("\n[expectations.ranking.floors.exact]\nauc = 0.55\n")
    expected = [
        "logprob-eval: 4 floor(s) a scorer at chance clears more than 1 time in 20:",
        "  openai-compatible-fake-exact-simple-normal: ranking floor auc = 0.550 is cleared*",
    ]
    suite.runpytest_subprocess("--collect-only", "-q").stdout.fnmatch_lines(expected)
    # under xdist the workers collect silently: the controller lists them
    par = suite.runpytest_subprocess("-n", "2", "-p", "xdist", "-m", "not openai")
    par.stdout.fnmatch_lines(expected)
    assert par.stdout.str().count("floor(s) a scorer at chance clears") == 1


def test_an_eval_run_freezes_what_collection_left_alive(suite):
    # gc.freeze after collection: later garbage collections skip the imports' objects
    suite.makepyfile(
        test_frozen="import gc\n\ndef test_f():\n    assert gc.get_freeze_count() > 0\n"
    )
    suite.runpytest_subprocess("test_frozen.py").assert_outcomes(passed=1)
    # ... and it is the plugin that froze them
    off = suite.runpytest_subprocess("test_frozen.py", "-p", "no:logprob_eval")
    off.assert_outcomes(failed=1)


def test_readable_ids_and_skips_without_cassettes(suite):
    result = suite.runpytest_subprocess("--collect-only", "-q")
    ids = result.stdout.str()
    assert "test_ranking[openai-compatible-fake-exact-simple-normal]" in ids
    assert "test_ranking[openai-gpt-4.1-mini-generation-simple-normal]" in ids
    quiet = suite.runpytest_subprocess()  # the default: skips summed up in one line
    quiet.stdout.fnmatch_lines(
        ["skipped 5 tests: openai-compatible:fake (4 cases), openai:gpt-4.1-mini (1 case);*"]
    )
    assert "no cassette for" not in quiet.stdout.str()
    result = suite.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=5)
    result.stdout.fnmatch_lines(
        [
            "*no cassette for openai-gpt-4.1-mini-generation-simple-normal*record with "
            "`OPENAI_API_KEY=... pytest . -m openai*--record-mode=once`*",
        ]
    )


def test_record_replay_stale_and_rerecord(suite, httpserver):
    rec = suite.runpytest_subprocess("--record-mode=once", "-m", "not openai")
    rec.assert_outcomes(passed=4, deselected=1)
    cassettes = sorted((suite.path / "cassettes").glob("*.json"))
    assert [c.stem for c in cassettes] == [
        "openai-compatible-fake-exact-mine-normal",
        "openai-compatible-fake-exact-mine-verbose",
        "openai-compatible-fake-exact-simple-normal",
        "openai-compatible-fake-exact-simple-verbose",
    ]
    text = cassettes[0].read_text()
    assert "authorization" not in text.lower() and "Bearer" not in text
    assert '"json": {' in text  # bodies stored decoded
    sent = len(httpserver.log)

    replay = suite.runpytest_subprocess("-m", "not openai", "--block-network")
    replay.assert_outcomes(passed=4, deselected=1)
    assert len(httpserver.log) == sent  # replay sends nothing

    suite.write("Text: {text}\\nCategory:")  # reword one template
    stale = suite.runpytest_subprocess("-m", "not openai")
    stale.assert_outcomes(passed=2, failed=2, deselected=1)
    out = stale.stdout.str()
    assert "case openai-compatible-fake-exact-mine-normal: a request has no recording" in out
    assert "Category:" in out and "Label:" in out  # what differs
    assert "--record-mode=once" in out
    assert "simple-normal" not in out.split("short test summary")[1]  # others unaffected

    again = suite.runpytest_subprocess("-m", "not openai", "--record-mode=once")
    again.assert_outcomes(passed=4, deselected=1)
    suite.runpytest_subprocess("-m", "not openai").assert_outcomes(passed=4, deselected=1)


def test_report_and_summary(suite):
    suite.runpytest_subprocess("--record-mode=once", "-m", "not openai")
    (suite.path / "reports" / "mine").mkdir()  # not the tool's: retention leaves it alone
    result = suite.runpytest_subprocess(
        "-m", "not openai", "--junitxml=junit.xml", "--llm-keep-reports", "1"
    )
    result.stdout.fnmatch_lines(
        [
            "*logprob-eval*",
            "*openai-compatible:fake*exact simple normal*",
            "report: *report.html (written in *s)",
        ]
    )
    result.stdout.re_match_lines([r".*exact simple normal +\d\.\d\d \[\d\.\d\d, \d\.\d\d\].*"])
    latest = suite.path / "reports" / "latest"
    kept = sorted(p.name for p in (suite.path / "reports").iterdir() if not p.is_symlink())
    assert kept == sorted(["mine", latest.resolve().name])  # the first run was pruned
    metrics = json.loads((latest / "metrics.json").read_text())
    assert len(metrics["configs"]) == 4
    cfg = next(iter(metrics["configs"].values()))
    assert len(cfg["per_text"]) == 8 and set(cfg["ci"]) == {"top1_acc", "topk_acc", "mrr", "auc"}
    assert all(len(v) == 2 for v in cfg["ci"].values())
    thr = next(iter(metrics["thresholds"].values()))
    assert set(thr["ci"]) == {"best_f1", "average_precision"}
    assert (latest / "outcomes.csv").read_text().count("\n") == 4 * 8 + 1
    page = (latest / "report.html").read_text()
    assert re.search(r"<br><small>\[\d\.\d{3}, \d\.\d{3}\]</small>", page)  # intervals
    assert "no per-text baseline" in page  # this suite keeps no baselines
    assert (suite.path / "junit.xml").read_text().count("<testcase") == 4

    earlier = latest.resolve()
    again = suite.runpytest_subprocess("-m", "not openai", f"--llm-compare-to={earlier}")
    again.stdout.fnmatch_lines(["comparison: *comparison.md"])
    md = (suite.path / "reports" / "latest" / "comparison.md").read_text()
    assert "Flipped texts: 0" in md and "regressions: none" in md
    assert "No text flipped." in (suite.path / "reports" / "latest" / "report.html").read_text()


def test_parallel_run_matches_serial(suite):
    suite.runpytest_subprocess("--record-mode=once", "-m", "not openai")
    serial = json.loads((suite.path / "reports" / "latest" / "metrics.json").read_text())
    serial_scores = (suite.path / "reports" / "latest" / "scores.csv").read_bytes()
    par = suite.runpytest_subprocess("-m", "not openai", "-n", "2", "-p", "xdist")
    par.assert_outcomes(passed=4)
    parallel = json.loads((suite.path / "reports" / "latest" / "metrics.json").read_text())
    assert parallel == serial  # the whole report's metrics, bit for bit
    # every score row once, in one order, whichever worker scored (or read back) its case
    assert (suite.path / "reports" / "latest" / "scores.csv").read_bytes() == serial_scores
    pages = []
    for _ in range(2):  # a serial replay, then the -n 2 one again: the pages are the same
        html = (suite.path / "reports" / "latest" / "report.html").read_text()
        pages.append(re.sub(r"generated [0-9: -]+\.", "", html))
        suite.runpytest_subprocess("-m", "not openai").assert_outcomes(passed=4, deselected=1)
    assert pages[0] == pages[1]
    assert "PASS" in pages[0]


def test_broken_config_fails_collection_with_a_clear_message(pytester):
    pytester.makefile(".toml", evals='[[models]]\nspec = "local:x"\nmethods = ["telepathy"]\n')
    pytester.makeini("[pytest]\nllm_config = evals.toml\nllm_builtin_checks = false\n")
    pytester.makepyfile(test_x="def test_a(llm_case):\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: logprob-eval: *evals.toml: invalid configuration:",
            "  models[[]0[]].methods[[]0[]] = 'telepathy': Input should be 'exact', "
            "'generation' or 'forced'",
        ]
    )


def test_a_key_reaches_no_cassette_report_or_output(suite, monkeypatch, httpserver):
    key = "sk-proj-" + "Zx9" * 12
    monkeypatch.setenv("OPENAI_API_KEY", key)
    rec = suite.runpytest_subprocess("--record-mode=once", "-m", "not openai")
    rec.assert_outcomes(passed=4, deselected=1)
    # the key really went out (the server saw it) ...
    assert any(key in r.headers.get("Authorization", "") for r, _ in httpserver.log)
    # ... and is nowhere the run left anything
    assert key not in rec.stdout.str() + rec.stderr.str()
    for path in suite.path.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".html", ".csv", ".log", ".xml"}:
            assert key not in path.read_text(errors="replace"), path


def test_recording_under_two_workers_writes_complete_cassettes(suite):
    rec = suite.runpytest_subprocess(
        "--record-mode=once", "-m", "not openai", "-n", "2", "-p", "xdist"
    )
    rec.assert_outcomes(passed=4)
    files = sorted((suite.path / "cassettes").glob("*.json"))
    assert len(files) == 4
    assert not list((suite.path / "cassettes").glob(".*.tmp"))  # no torn temporaries left
    for f in files:
        data = json.loads(f.read_text())  # valid JSON, not interleaved
        posts = [i for i in data["interactions"] if i["request"]["method"] == "POST"]
        assert len(posts) == 8 + 3  # the sample plus the content-free inputs
        # and at most the exact method's one question to GET /v1/models (the extension)
        assert len(data["interactions"]) - len(posts) <= 1
    suite.runpytest_subprocess("-m", "not openai").assert_outcomes(passed=4, deselected=1)


NOTEBOOK_TEXTS = ["A goal in extra time.", 'Votes, "ballots" and a vaccine', "Old ruins"]
NOTEBOOK_TOPICS = [["Sports"], ["Politics", "Health"], ["History"]]
DATASET_TEST = f"""
def test_ranking(llm_case, llm_scores, llm_dataset):
    assert [ex.text for ex in llm_dataset] == {NOTEBOOK_TEXTS!r}
    assert [list(ex.labels) for ex in llm_dataset] == {NOTEBOOK_TOPICS!r}
    df = llm_scores(llm_case)
    assert set(df["example_id"]) >= {{ex.id for ex in llm_dataset}}
"""


@pytest.mark.parametrize("layout", ["notebook", "own-columns"])
def test_dataset_path_reads_files_as_users_have_them(pytester, fake_url, layout):

    if layout == "notebook":  # the notebook's synthetic_dataset.csv, written by pandas
        frame = pd.DataFrame({"text": NOTEBOOK_TEXTS, "topics": NOTEBOOK_TOPICS})
        frame.to_csv(pytester.path / "data.csv")
        keys = ""
    else:
        frame = pd.DataFrame(
            {"key": ["a", "b", "c"], "sentence": NOTEBOOK_TEXTS, "y": NOTEBOOK_TOPICS, "z": 1}
        )
        frame.to_csv(pytester.path / "data.csv", index=False)
        keys = 'text_column = "sentence"\nlabels_column = "y"\nid_column = "key"\n'
    topics = ", ".join(f'"{t}"' for t in TOPICS)  # the notebook's ten, not only these texts'
    pytester.makefile(
        ".toml",
        evals=f'[dataset]\npath = "data.csv"\nlabels = [{topics}]\n{keys}\n[[models]]\n'
        f'spec = "openai-compatible:fake@{fake_url}"\nmethods = ["exact"]\n',
    )
    pytester.makeini(
        "[pytest]\nllm_config = evals.toml\nllm_cassette_dir = cassettes\n"
        "llm_builtin_checks = false\n"
    )
    pytester.makepyfile(test_evals=DATASET_TEST)
    pytester.runpytest_subprocess("--record-mode=once").assert_outcomes(passed=1)


def test_recording_with_the_network_blocked_fails_fast_with_the_fix(suite):
    start = time.monotonic()
    result = suite.runpytest_subprocess("--record-mode=once", "--block-network", "-m", "not openai")
    assert time.monotonic() - start < 30  # at once, not a timeout per case
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--block-network blocks every connection" in err
    assert "openai-compatible:fake@http://localhost:" in err  # the server it cannot reach
    assert "Drop --block-network to record (pytest . --record-mode=once)" in err
    assert not list((suite.path / "cassettes").glob("*.json"))  # nothing half-recorded
    # the fix works as written: allowing the host records every case
    host = suite.runpytest_subprocess(
        "--record-mode=once",
        "--block-network",
        "--allowed-hosts=127.0.0.1,localhost",
        "-m",
        "not openai",
    )
    host.assert_outcomes(passed=4, deselected=1)


def test_compare_to_and_cli_compare_agree_use_the_suites_k_and_show_words(suite, capsys):
    """The suite declares k = 2. A run after rewording a template, compared with the run
    before through --llm-compare-to, and the same two report folders through `logprob-eval
    compare`: one k ("top-2" in both), the same numbers, and every flipped text shown with
    its words from the dataset."""
    from logprob_eval.cli import main
    from logprob_eval.data.datasets import load_dataset

    def declare_k() -> None:
        with open(suite.path / "evals.toml", "a") as f:
            f.write("\n[expectations.ranking]\nk = 2\n")

    declare_k()
    suite.runpytest_subprocess("--record-mode=once", "-m", "not openai")
    earlier = (suite.path / "reports" / "latest").resolve()
    suite.write("Text: {text}\\nCategory:")  # reword one template and re-record its cases
    declare_k()
    suite.runpytest_subprocess(
        "--record-mode=once", "-m", "not openai", f"--llm-compare-to={earlier}"
    )
    later = (suite.path / "reports" / "latest").resolve()
    assert later != earlier
    md = (later / "comparison.md").read_text()
    assert "(k = 2: the suite's [expectations.ranking] k)" in md
    assert "| top-2 |" in md and "top-k" not in md and "| top-3 |" not in md
    plugin_json = json.loads((later / "comparison.json").read_text())
    words = {ex.id: ex.text for ex in load_dataset("topics")}
    flipped = [f for c in plugin_json["configs"].values() for f in c["flipped"]]
    assert flipped, "rewording the template flipped no text: the test needs flips"
    for f in flipped:
        assert f["text"] == words[f["example_id"]]
        assert f'`{f["example_id"]}` "{words[f["example_id"]][:20]}' in md
    page = (later / "report.html").read_text()
    flips_html = page[page.index("id='flips'") :]
    assert words[flipped[0]["example_id"]][:20] in flips_html

    assert main(["compare", str(earlier), str(later), "--out", str(suite.path / "cli")]) == 0
    capsys.readouterr()
    cli_json = json.loads((suite.path / "cli" / "comparison.json").read_text())
    assert cli_json["k"] == plugin_json["k"] == 2
    for cfg, c in plugin_json["configs"].items():
        assert cli_json["configs"][cfg]["metrics"] == c["metrics"]
        assert cli_json["configs"][cfg]["flipped"] == c["flipped"]
