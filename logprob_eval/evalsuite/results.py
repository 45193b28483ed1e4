"""A run's results: gathered from every process, written as the report, summed up in the
terminal.

How a worker's results reach the report (``pytest evals -n N``):

1. The controller gives each worker one temporary folder (:func:`share_dir`), where a
   worker that scored a case leaves its frame for the others (``SuiteRunner.share_dir``),
   so a case is replayed once per run, not once per worker.
2. When its tests are done, a worker hands over what it computed (:func:`hand_over`,
   through xdist's ``workeroutput``): the tidy frame of each case it scored, pickled, and
   as JSON the per-case analyses, method-pair and server agreements its tests computed.
3. As each worker goes down the controller keeps them (:func:`receive`).
4. At the end of the session the controller (or a serial run, which is its own only
   process) merges its own results with the workers' and writes the report
   (:func:`write_report`); every process's results go through the same JSON, so a serial
   run and ``-n N`` give the same report. Test outcomes travel separately, on the test
   reports (:mod:`.outcomes`).
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from .matrix import method_pairs, pair_id
from .session import Session

__all__ = ["hand_over", "receive", "share_dir", "terminal_summary", "write_report"]

_FRAMES = "logprob_eval_frames"
_COMPUTED = "logprob_eval_computed"
_SHARE = "logprob_eval_share_dir"


def share_dir(session: Session, node: Any) -> None:
    """Give an xdist worker the run's shared folder (made once, removed at the end)."""
    if session.share_dir is None:
        session.share_dir = Path(tempfile.mkdtemp(prefix="logprob-eval-run-"))
    node.workerinput[_SHARE] = str(session.share_dir)


def worker_share_dir(config: pytest.Config) -> str | None:
    """In a worker, the folder :func:`share_dir` gave it (None in a serial run)."""
    return getattr(config, "workerinput", {}).get(_SHARE)


def _frames(session: Session) -> dict[str, Any]:
    return session.runner.all_frames() if session.runner is not None else {}


def _computed(session: Session) -> dict[str, Any]:
    """What this process's tests computed that the report shows: per-case analyses and
    pair agreements."""
    runner = session.runner
    if runner is None:
        return {"analyses": {}, "pairs": [], "servers": []}
    return {
        "analyses": {c: a.as_json() for c, a in runner.all_analyses().items()},
        "pairs": [p.as_json() for p in runner.all_pairs().values()],
        "servers": list(runner.server_pairs.values()),
    }


def hand_over(session: Session, workeroutput: dict[str, Any]) -> None:
    """In a worker at its session's end: its frames and computed results, for the controller."""
    workeroutput[_FRAMES] = pickle.dumps(_frames(session))  # read back by this run's code
    workeroutput[_COMPUTED] = json.dumps(_computed(session))


def receive(session: Session, workeroutput: dict[str, Any]) -> None:
    """In the controller as a worker goes down: keep what it handed over."""
    if workeroutput.get(_FRAMES):
        for case_id, frame in pickle.loads(workeroutput[_FRAMES]).items():
            session.worker_frames.setdefault(case_id, frame)  # two workers: the same frame
    if workeroutput.get(_COMPUTED):
        session.worker_computed.append(json.loads(workeroutput[_COMPUTED]))


def write_report(session: Session, exitstatus: int) -> None:
    """Merge every process's results and write the run's report (unless there is nothing
    to report or ``--llm-no-report``)."""
    config = session.config
    if session.share_dir is not None:
        shutil.rmtree(session.share_dir, ignore_errors=True)
    frames = {**session.worker_frames, **_frames(session)}
    if not frames or config.getoption("--llm-no-report"):
        return
    from .reporting import write_run_report
    from .runner import analysis_options

    session.freeze()  # the frames and modules the report reads
    started = time.perf_counter()
    session.interrupted = exitstatus in (
        pytest.ExitCode.INTERRUPTED,
        pytest.ExitCode.INTERNAL_ERROR,
    )
    # this process's results through the same JSON as the workers': serial equals -n N
    computed = [json.loads(json.dumps(_computed(session))), *session.worker_computed]
    suite = session.suite
    other = config.getoption("--llm-compare-to")
    session.report = write_run_report(
        frames,
        session.report_dir,
        interrupted=session.interrupted,
        analyses=[c["analyses"] for c in computed],
        pairs=[p for c in computed for p in c["pairs"]],
        options=analysis_options(suite),
        outcomes=session.outcomes.sorted(),
        texts={ex.id: ex.text for ex in suite.load_dataset(config.rootpath)},
        keep=config.getoption("--llm-keep-reports"),
        baselines=suite.baseline_dir,
        case_configs={c.id: c.config for c in suite.cases()},
        compare_to=Path(other) if other else None,
        servers=[s for c in computed for s in c["servers"]],
    )
    session.report_seconds = time.perf_counter() - started
    if other:
        session.comparison = session.report.run_dir / "comparison.md"


def terminal_summary(tr: Any, session: Session) -> None:
    """The run's section of the terminal summary: the metrics table, the report's path,
    the baseline gates, the skipped and not-checked tests, and the stale cassettes with one
    command."""
    report, outcomes = session.report, session.outcomes.sorted()
    if not report and not outcomes:
        return
    tr.section("logprob-eval")
    if report:
        from .reporting import summary_lines

        suite = session.suite
        floors = {
            k: suite.expect("stability", f"{k.rstrip('s')}_tau")
            for k in ("templates", "label_sets")
        }
        for line in summary_lines(report.table, report.tau_groups, floors):
            tr.write_line(line)
        page = report.run_dir / "report.html"
        tr.write_line(f"report: {page} (written in {session.report_seconds:.1f} s)")
        if session.interrupted:
            tr.write_line(
                "the run was interrupted: the report is marked so; reports/latest not moved"
            )
        for case in report.failing:
            tr.write_line(f"  failed: {page}#case-{case}")
        if session.comparison is not None:
            tr.write_line(f"comparison: {session.comparison}")
    from .outcomes import gate_line, not_checked_line, skips_line

    lines = (gate_line(outcomes), skips_line(outcomes), not_checked_line(outcomes))
    for line in (*lines, _stale_line(session, outcomes)):
        if line:
            tr.write_line(line)


def _stale_line(session: Session, outcomes: list[dict[str, Any]]) -> str:
    """Every stale case in one line, with one command that re-records them all."""
    found = dict(sorted(tuple(o["stale"]) for o in outcomes if o.get("stale")))
    if not found:
        return ""
    from .runner import record_all_command

    cases = session.suite.cases()
    by_id = {c.id: c for c in cases}
    stale = {name: by_id[case] for name, case in found.items() if case in by_id}
    for pair in method_pairs(cases):  # its cassette's prompts are the cases'
        if any(c.id in stale for c in pair):
            stale.setdefault(pair_id(pair), pair[0])
    command = record_all_command(stale, suite=session.suite_arg)
    return (
        f"stale cassettes ({len(found)}): {', '.join(found)}; re-record them all with `{command}`"
    )
