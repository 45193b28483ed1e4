"""The committed suite's numbers do not move: `pytest evals --block-network` gives the same
metrics.json, scores.csv and outcomes.csv as the run the golden file was made from.

``tests/golden/committed-suite.json`` was written from a run of the code before the
scale work of issue 24 (main at commit 179bfea), with the command at the bottom of this
module.
It holds every number of metrics.json except the per-text outcomes (``evals/baselines/``
pins those, and this test compares them with the baselines too), and the sha256 of
scores.csv and outcomes.csv (the replayed scores must be the same bit for bit). Numbers
are compared within 1e-9: the bootstrap's jackknife and the sweep's per-sample F1 are
computed differently now, which moves some intervals by ~1e-16.

A change that is meant to move the suite's numbers (a new metric, a re-recording)
rewrites the golden file: run the suite, then
``python -m tests.test_suite_golden reports/latest``.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from logprob_eval.evalsuite.config import load_eval_config

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "committed-suite.json"
TOL = 1e-9


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(run: Path) -> dict[str, Any]:
    """What the golden file holds of a run's report folder."""
    metrics = json.loads((run / "metrics.json").read_text())
    for config in metrics.get("configs", {}).values():
        config.pop("per_text", None)
    return {
        "metrics": metrics,
        "scores.csv": _digest(run / "scores.csv"),
        "outcomes.csv": _digest(run / "outcomes.csv"),
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


def test_committed_suite_numbers_are_unchanged(tmp_path):
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
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    got = snapshot(tmp_path / "reports" / "latest")
    want = json.loads(GOLDEN.read_text())
    diff = differences(want, got)
    assert not diff, (
        f"{len(diff)} difference(s) from {GOLDEN.name} (first 20):\n  "
        + "\n  ".join(diff[:20])
        + "\nif the change is meant, rewrite it: python -m tests.test_suite_golden reports/latest"
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


if __name__ == "__main__":  # python -m tests.test_suite_golden REPORT_DIR
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(snapshot(Path(sys.argv[1])), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
