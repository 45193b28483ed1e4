"""Every suite test's outcome, as the run's report and terminal summary show it.

The plugin tags each test report with its case (``llm_case``: case id, config, model,
test name) and, on failure, the structured failures of :class:`~.checks.CheckFailed`
(``llm_failures``) and the message (``llm_message``); plain report attributes, so that
pytest-xdist carries them from the workers to the controller, where :class:`OutcomeLog`
(registered as a plugin object) collects them. The baseline gate's comparison, passed or
failed, travels as the test's ``llm_gate`` property (JSON, :meth:`~.baselines.GateResult.as_dict`).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["OutcomeLog", "gate_line", "not_checked_line", "skips_line"]

_NOT_CHECKED = ("no floor", "nothing to compare")
"""Skip reasons that are the config's choice, not a missing recording."""


def _not_checked(outcome: dict[str, Any]) -> str | None:
    if outcome["outcome"] != "skipped":
        return None
    return next((why for why in _NOT_CHECKED if why in outcome["message"]), None)


class OutcomeLog:
    """One outcome per suite test: failed wins over any other phase's outcome."""

    def __init__(self) -> None:
        self.by_node: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        tag = getattr(report, "llm_case", None)
        if tag is None or (report.when != "call" and report.passed):
            return
        outcome = {**tag, "outcome": report.outcome, "failures": None, "message": ""}
        gate = dict(getattr(report, "user_properties", ())).get("llm_gate")
        if gate is not None:  # the baseline comparison, passed or failed (suite/regression)
            outcome["gate"] = json.loads(gate)
        if report.failed:
            outcome["stale"] = getattr(report, "llm_stale", None)  # a stale cassette's case
            outcome["failures"] = getattr(report, "llm_failures", None)
            outcome["message"] = getattr(report, "llm_message", "") or report.longreprtext
        elif report.skipped and isinstance(report.longrepr, tuple):
            outcome["message"] = str(report.longrepr[2])
        if self.by_node.get(report.nodeid, {}).get("outcome") != "failed":
            self.by_node[report.nodeid] = outcome

    def sorted(self) -> list[dict[str, Any]]:
        """The outcomes in node-id order (the same whatever the workers' order)."""
        return [self.by_node[k] for k in sorted(self.by_node)]


def skips_line(outcomes: list[dict[str, Any]]) -> str:
    """One line for every skipped suite test, by model (not one line per reason)."""
    skipped = [o for o in outcomes if o["outcome"] == "skipped" and not _not_checked(o)]
    if not skipped:
        return ""
    by_model: dict[str, set[str]] = {}
    for o in skipped:
        by_model.setdefault(o["model"] or "?", set()).add(o["case"])
    models = ", ".join(
        f"{m} ({len(c)} case{'' if len(c) == 1 else 's'})" for m, c in sorted(by_model.items())
    )
    return (
        f"skipped {len(skipped)} tests: {models}; `pytest -rs` shows each reason "
        "(for a missing recording: the command that records it)"
    )


def not_checked_line(outcomes: list[dict[str, Any]]) -> str:
    """One line for the checks the config leaves out: an absent floor ("no floor") or a
    comparison with nothing to compare."""
    by_reason: dict[str, dict[str, int]] = {}
    for o in outcomes:
        why = _not_checked(o)
        if why is not None:
            tests = by_reason.setdefault(why, {})
            tests[o["test"]] = tests.get(o["test"], 0) + 1
    if not by_reason:
        return ""
    parts = [
        f"{why}: " + ", ".join(f"{test} ({n})" for test, n in sorted(tests.items()))
        for why, tests in by_reason.items()
    ]
    return f"not checked, {'; '.join(parts)}; `pytest -rs` shows each reason"


def gate_line(outcomes: list[dict[str, Any]]) -> str:
    """One line for the baseline gates: how many cases were pinned on the same recordings
    and how many compared on new ones; of those, how many failed (their failures say how),
    or, when none did, the drop that came closest (the smallest p of a drop)."""
    gates = [(o["case"], o["gate"]) for o in outcomes if o.get("gate")]
    if not gates:
        return ""
    pinned = [g for _, g in gates if g["mode"] == "same recordings"]
    new = [(case, g) for case, g in gates if g["mode"] != "same recordings"]
    parts = []
    if pinned:
        changed = sum(not g["passed"] for g in pinned)
        parts.append(
            f"{len(pinned)} on the same recordings, "
            + (f"{changed} changed" if changed else "every number as pinned")
        )
    if new:
        failed = sum(not g["passed"] for _, g in new)
        part = f"{len(new)} on new recordings, {failed} failed"
        drops = [
            (float(m["p_value"]), case, metric, m)
            for case, g in new
            for metric, m in g["metrics"].items()
            if float(m["diff"]) < 0
        ]
        if drops and not failed:
            _, case, metric, m = min(drops, key=lambda d: d[0])
            part += (
                f"; closest: {metric} {float(m['diff']):+.3f} [{float(m['low']):+.3f}, "
                f"{float(m['high']):+.3f}] p={float(m['p_value']):.3g} in {case}"
            )
        parts.append(part)
    return "baselines: " + "; ".join(parts) + " (report.html#gate)"
