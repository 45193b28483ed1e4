"""A folder holding ``evals.toml`` and its data is a complete suite: ``pytest FOLDER`` runs
the built-in checks with no test module, on the user's own labels. Driven through
``pytester`` against a loopback stand-in server (``helpers.fake_echo_completions``:
hand-written, deterministic, not a model)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from werkzeug import Request, Response

from .helpers import SUPPORT_TICKETS, fake_echo_completions

pytest_plugins = ["pytester"]

TICKETS = [*SUPPORT_TICKETS, ("I was billed after cancelling.", ["billing", "refund"])]

CONFIG = """
[dataset]
path = "tickets.csv"
text_column = "message"

[[models]]
spec = "openai-compatible:fake@{url}"
methods = ["exact"]

[label_sets.plain]
refund = "refund"
billing = "billing"
bug = "bug"
account = "account"

[templates]
intent = "{template}"

[grid]
templates = ["intent"]

[expectations.ranking]
k = 2

[expectations.ranking.floors.exact]
auc = 0.05
"""

CASE = "openai-compatible-fake-exact-intent-plain"


@pytest.fixture
def folder(pytester, httpserver, monkeypatch):
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)

    def handler(request: Request) -> Response:
        body = fake_echo_completions(json.loads(request.get_data()))
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/completions").respond_with_handler(handler)
    url = httpserver.url_for("/v1")
    suite = pytester.mkdir("support")
    frame = pd.DataFrame({"message": [t for t, _ in TICKETS], "intents": [i for _, i in TICKETS]})
    frame.to_csv(suite / "tickets.csv")

    def write(template: str = "Ticket: {text}\\nIntents: {labels}\\nIntent:") -> None:
        (suite / "evals.toml").write_text(CONFIG.format(url=url, template=template))

    write()
    pytester.write = write  # type: ignore[attr-defined]
    return pytester


def test_the_config_file_is_collected_as_the_built_in_checks(folder):
    result = folder.runpytest_subprocess("support", "--collect-only", "-q")
    out = result.stdout.str()
    for check, param in [
        ("ranking::test_ranking", CASE),
        ("thresholds::test_thresholds", CASE),
        ("regression::test_no_regression", CASE),
        ("stability::test_rank_agreement_across_templates", "nothing-to-compare"),
        ("stability::test_rank_agreement_across_label_phrasings", "nothing-to-compare"),
        ("method_agreement::test_method_agreement", "nothing-to-compare"),
        ("server_agreement::test_server_agreement", "nothing-to-compare"),
    ]:
        assert f"support/evals.toml::{check}[{param}]" in out
    assert not list(folder.path.glob("support/test_*.py"))  # no test module was needed


def test_the_smallest_suite_runs_records_gates_and_speaks_the_users_labels(folder):
    rec = folder.runpytest_subprocess("support", "--record-mode=once", "-rs")
    out = rec.stdout.str()
    assert "INTERNALERROR" not in out
    # ranking passes; nothing to compare (one template, one label set, one method) and no
    # threshold floor skip with their reasons; no baseline yet fails with the command
    rec.assert_outcomes(passed=1, skipped=6, failed=1)
    assert "nothing to compare: no two cases differ only in their template" in out
    assert "nothing to compare: no case is scored by both methods" in out
    assert "nothing to compare: no forced case has an exact case of the same config" in out
    assert f"case {CASE}: no floor in [expectations.thresholds]: nothing to check" in out
    assert f"create it with `pytest support -k {CASE} --update-baselines`" in out
    assert "def check_baseline(" not in out  # a failed check is its message, not our source
    report = (folder.path / "reports" / "latest" / "report.html").read_text()
    assert "<td>test_no_regression</td><td>baseline</td>" in report  # still in the verdict
    long = folder.runpytest_subprocess("support", "-k", "regression", "--tb=long")
    assert "def check_baseline(" in long.stdout.str()  # --tb asks for the traceback
    assert (folder.path / "support" / "cassettes" / f"{CASE}.json").is_file()  # beside it
    assert (
        "not checked, nothing to compare: test_forced_agreement (1), test_method_agreement (1), "
        in out
    )
    folder.runpytest_subprocess("support", "--update-baselines").assert_outcomes(
        passed=2, skipped=6
    )
    replay = folder.runpytest_subprocess("support", "--block-network")
    replay.assert_outcomes(passed=2, skipped=6)
    scores = pd.read_csv(folder.path / "reports" / "latest" / "scores.csv")
    assert set(scores["label"]) == {"refund", "billing", "bug", "account"}
    assert set(scores.loc[scores["is_true"], "label"]) == {"refund", "billing", "bug", "account"}


def test_an_absent_floor_is_not_checked(folder):
    folder.runpytest_subprocess("support", "--record-mode=once")
    text = (folder.path / "support" / "evals.toml").read_text()
    (folder.path / "support" / "evals.toml").write_text(text.replace("auc = 0.05", "# auc = 0.05"))
    result = folder.runpytest_subprocess("support", "-rs", "-k", "ranking")
    result.assert_outcomes(skipped=1)
    out = result.stdout.str()
    assert f"case {CASE}: no floor in [expectations.ranking]: nothing to check" in out
    assert "below the floor 0.000" not in out


def test_a_stale_cassette_is_explained_once_per_case_with_one_command(folder):
    folder.runpytest_subprocess("support", "--record-mode=once")
    folder.runpytest_subprocess("support", "--update-baselines")
    folder.write("Ticket: {text}\\nIntent:")  # reworded: every request is new
    result = folder.runpytest_subprocess("support")
    result.assert_outcomes(failed=3, skipped=5)
    out = result.stdout.str()
    # the failures, before pytest's one-line summary (which repeats a message as wide as the
    # terminal allows)
    failures = out.partition("short test summary info")[0]
    assert failures.count("a request has no recording in") == 1  # the full explanation, once
    assert failures.count(f"stale cassette {CASE}.json (the first failing test of {CASE} says") == 2
    assert re.search(
        rf"stale cassettes \(1\): {CASE}; re-record them all with `pytest support -m live "
        rf"-k {CASE} --record-mode=once`",
        out,
    ), out


def test_the_report_shows_each_gate_from_every_worker(folder):
    """The gate's comparison reaches the report whether it passed or failed and whichever
    process ran it: same recordings pinned, then new recordings compared under ``-n 2``."""
    folder.runpytest_subprocess("support", "--record-mode=once")
    folder.runpytest_subprocess("support", "--update-baselines")
    replay = folder.runpytest_subprocess("support", "--block-network")
    replay.assert_outcomes(passed=2, skipped=6)
    replay.stdout.fnmatch_lines(["baselines: 1 on the same recordings, every number as pinned *"])
    report = (folder.path / "reports" / "latest" / "report.html").read_text()
    cell = "<td class='s'>{}</td>".format
    assert f"<tr>{cell(CASE)}{cell('all')}{cell('same')}" in report
    assert "every number as pinned" in report

    folder.write("Ticket: {text}\\nIntent:")  # reworded, then recorded again
    (folder.path / "support" / "cassettes" / f"{CASE}.json").unlink()
    folder.runpytest_subprocess("support", "--record-mode=once", "-k", "ranking")
    gated = folder.runpytest_subprocess("support", "--block-network", "-n", "2")
    gated.stdout.fnmatch_lines(["baselines: 1 on new recordings, * failed*(report.html#gate)"])
    report = (folder.path / "reports" / "latest" / "report.html").read_text()
    metric = cell(r"(\w+)")
    rows = re.findall(f"<tr>{cell(CASE)}{metric}{cell('new')}.*?</tr>", report)
    assert rows == ["top1_acc", "topk_acc", "mrr", "auc", "best_f1", "average_precision"]
    failed = "drop larger than 0.02: fails" in report
    assert failed == (gated.parseoutcomes().get("failed", 0) == 1), gated.stdout.str()
    flips = report[report.index("id='flips'") :]  # the texts whose top label changed ...
    assert [t for t, _ in TICKETS if t[:25] in flips], flips[:2000]  # ... shown by their words


SHORT = CASE.replace("-intent-", "-short-")


def _two_templates(folder):
    """The suite with a second template, ``short``: its config path and text."""
    path = folder.path / "support" / "evals.toml"
    text = path.read_text()
    text = text.replace('[grid]\ntemplates = ["intent"]', '[grid]\ntemplates = ["intent", "short"]')
    text = text.replace('intent = "', 'short = "Message: {text}\\nIntent:"\nintent = "')
    path.write_text(text)
    return path, text


def test_an_absent_tau_floor_is_not_checked_and_the_summary_says_so(folder):
    path, text = _two_templates(folder)
    result = folder.runpytest_subprocess(
        "support", "--record-mode=once", "-rs", "-k", "across_templates"
    )
    result.assert_outcomes(skipped=1)
    out = result.stdout.str()
    assert "no floor: mean Kendall tau across templates = " in out
    assert "set [expectations.stability] template_tau to check it" in out
    assert "below the floor" not in out
    assert re.search(r" tau -?[0-9.]+ \[.*\]  no floor$", out, re.M), out  # the summary
    path.write_text(text + "\n[expectations.stability]\ntemplate_tau = -1.0\n")
    again = folder.runpytest_subprocess("support", "-k", "across_templates")
    again.assert_outcomes(passed=1)
    assert re.search(r" tau -?[0-9.]+ \[.*\]  floor -1\.00$", again.stdout.str(), re.M)


def test_two_stale_cases_are_named_in_one_line_with_one_command(folder):
    path, text = _two_templates(folder)
    folder.runpytest_subprocess("support", "--record-mode=once")
    path.write_text(text.replace("Ticket: ", "Ticket text: ").replace("Message: ", "Msg: "))
    out = folder.runpytest_subprocess("support").stdout.str()
    assert re.search(
        rf"stale cassettes \(2\): {CASE}, {SHORT}; re-record them all with "
        rf"`pytest support -m live -k '{CASE} or {SHORT}' --record-mode=once`",
        out,
    ), out


def test_the_stale_line_re_records_the_method_pair_of_a_stale_case(tmp_path):
    """A method pair's cassette holds its cases' prompts: when one of them is stale, the
    one command re-records the pair too (its test id is its cassette's name)."""
    from types import SimpleNamespace

    from logprob_eval.evalsuite.config import load_eval_config
    from logprob_eval.evalsuite.results import _stale_line

    path = tmp_path / "support" / "evals.toml"
    path.parent.mkdir()
    config = CONFIG.format(url="http://127.0.0.1:1/v1", template="Ticket: {text}\\nIntent:")
    path.write_text(config.replace('methods = ["exact"]', 'methods = ["generation", "exact"]'))
    session = SimpleNamespace(suite=load_eval_config(path), suite_arg="support")
    pair = CASE.replace("-exact-", "-methods-")
    line = _stale_line(session, [{"stale": (CASE, CASE)}, {"stale": None}, {}])
    assert line.startswith(f"stale cassettes (1): {CASE}; re-record them all with `"), line
    assert f"-k '{CASE} or {pair}' --record-mode=once`" in line, line
