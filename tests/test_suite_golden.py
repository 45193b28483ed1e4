"""The committed suite's results do not move: `pytest evals --block-network`, serially and
on two workers, gives the same metrics.json, scores.csv, outcomes.csv, report.html and
terminal summary as the run the golden file was made from.

``tests/golden/committed-suite.json`` was first written from a run of the code before the
scale work of issue 24 and the plugin's rework of issue 25 (main at commit 179bfea), which
both reproduced it; then rewritten when issue 22 added the forced cases (commit f394ac9:
every entry already there unchanged), before the package moves of issue 25; and when the
report gained its "Against the baseline" section (each outcome's ``gate`` added, the
report's hash changed, every other entry unchanged), and when its tables' words were
aligned left (the report's hash only), and when the terminal summary gained its
"baselines:" line. The command is
at the bottom of this module. It holds every number of metrics.json except the
per-text outcomes (``evals/baselines/`` pins those, and this test compares them with the
baselines too); the sha256 of scores.csv and outcomes.csv (the replayed scores must be the
same bit for bit) and of report.html without its "generated" time; and the terminal
summary's lines without the report's path and time. Numbers are compared within 1e-9: the
bootstrap's jackknife and the sweep's per-sample F1 are computed differently now, which
moves some intervals by ~1e-16.

A change that is meant to move the suite's results (a new metric, a re-recording, a new
column in the report) rewrites the golden file: run the suite, keeping its output, then
``python -m tests.test_suite_golden reports/latest OUTPUT_FILE``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from logprob_eval.evalsuite.config import load_eval_config

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "committed-suite.json"
TOL = 1e-9


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def summary(stdout: str) -> list[str]:
    """The run's section of the terminal summary, without the report's path and time."""
    section = stdout.split("= logprob-eval =", 1)[1].splitlines()[1:]
    return [
        line
        for line in section
        if line.strip()
        and not line.startswith("report: ")
        and not re.match(r"=* ?\d+ (passed|failed)", line)  # pytest's own last line
    ]


def snapshot(run: Path, stdout: str) -> dict[str, Any]:
    """What the golden file holds of a run: its report folder and its terminal output."""
    metrics = json.loads((run / "metrics.json").read_text())
    for config in metrics.get("configs", {}).values():
        config.pop("per_text", None)
    page = re.sub(
        rb"generated \d{4}-\d\d-\d\d \d\d:\d\d", b"generated", (run / "report.html").read_bytes()
    )
    return {
        "metrics": metrics,
        "scores.csv": _digest((run / "scores.csv").read_bytes()),
        "outcomes.csv": _digest((run / "outcomes.csv").read_bytes()),
        "report.html": _digest(page),
        "summary": summary(stdout),
    }


def differences(want: Any, got: Any, where: str = "") -> list[str]:
    """Where ``got`` differs from ``want`` (numbers within TOL, relative or absolute)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{where}.{k}: missing" for k in want if k not in got]
        out += [f"{where}.{k}: unexpected" for k in got if k not in want]
        for k in want:
            if k in got:
                out += differences(want[k], got[k], f"{where}.{k}")
        return out
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{where}: {len(got)} items, want {len(want)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(want, got, strict=True))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    numbers = (int, float)
    if isinstance(want, numbers) and isinstance(got, numbers) and not isinstance(want, bool):
        if math.isnan(want) and math.isnan(got):
            return []
        if math.isclose(want, got, rel_tol=TOL, abs_tol=TOL):
            return []
    elif want == got:
        return []
    return [f"{where}: {got!r}, want {want!r}"]


def test_summary_keeps_the_section_without_the_report_s_path_and_time():
    stdout = (
        "....s\n===== logprob-eval =====\ncase  top-1\nlocal:m exact  0.50 [0.20, 0.80]\n"
        "report: /tmp/r/run-1/report.html (written in 0.4 s)\nskipped 1 tests: x\n\n"
        "4 passed, 1 skipped in 3.21s\n"
    )
    assert summary(stdout) == [
        "case  top-1",
        "local:m exact  0.50 [0.20, 0.80]",
        "skipped 1 tests: x",
    ]


def test_differences_finds_a_moved_number_and_tolerates_float_noise():
    want = {"a": [1.0, {"b": 0.5}], "c": "x", "d": float("nan")}
    assert differences(want, {"a": [1.0 + 1e-15, {"b": 0.5}], "c": "x", "d": float("nan")}) == []
    assert differences(want, {"a": [1.0, {"b": 0.501}], "c": "x", "d": float("nan")}) == [
        ".a[1].b: 0.501, want 0.5"
    ]
    assert differences(want, {"a": [1.0], "c": "y"}) == [
        ".d: missing",
        ".a: 1 items, want 2",
        ".c: 'y', want 'x'",
    ]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "two-workers"])
def test_committed_suite_results_are_unchanged(tmp_path, workers):
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing; see this module's docstring")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "evals",
            "--block-network",
            "-q",
            "-p",
            "no:cacheprovider",
            "--llm-report-dir",
            str(tmp_path / "reports"),
            *workers,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    got = snapshot(tmp_path / "reports" / "latest", proc.stdout)
    want = json.loads(GOLDEN.read_text())
    diff = differences(want, got)
    assert not diff, (
        f"{len(diff)} difference(s) from {GOLDEN.name} (first 20):\n  "
        + "\n  ".join(diff[:20])
        + "\nif the change is meant, rewrite it (see this module's docstring)"
    )
    # the per-text outcomes, against the committed baselines they were made from
    metrics = json.loads((tmp_path / "reports" / "latest" / "metrics.json").read_text())
    suite = load_eval_config(ROOT / "evals" / "evals.toml")
    config_of = {case.id: case.config for case in suite.cases()}
    compared = 0
    for path in sorted((ROOT / "evals" / "baselines").glob("*.json")):
        base = json.loads(path.read_text())
        config = metrics["configs"][config_of[base["case"]]]
        for text, outcome in base["per_text"].items():
            now = config["per_text"][text]
            assert not differences(outcome, {k: now[k] for k in outcome}, f"{base['case']}/{text}")
            compared += 1
    assert compared >= 45 * 60  # every baselined case, every text


if __name__ == "__main__":  # python -m tests.test_suite_golden REPORT_DIR OUTPUT_FILE
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    taken = snapshot(Path(sys.argv[1]), Path(sys.argv[2]).read_text())
    GOLDEN.write_text(json.dumps(taken, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
