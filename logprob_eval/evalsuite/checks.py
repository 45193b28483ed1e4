"""Assertions of the eval suite, pytest-free: they raise AssertionError with a message that
names the case, the metric, the floor, the value and the worst examples."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CheckFailed", "check_baseline", "check_floors", "format_worst"]


class CheckFailed(AssertionError):
    """A check failed. ``failures`` lists what the run's report shows for it: one
    ``{"metric", "value", "bound", "kind"}`` per metric (``kind``: floor or baseline)."""

    def __init__(self, message: str, failures: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.failures = failures


def format_worst(worst: Sequence[Mapping[str, Any]], texts: Mapping[str, str] | None = None) -> str:
    lines = []
    for w in worst:
        text = (texts or {}).get(str(w.get("example_id")), "")
        shown = f" {text[:70]!r}" if text else ""
        lines.append(
            f"    {w.get('example_id')}{shown}: true {w.get('true')} best true rank "
            f"{w.get('best_true_rank')}, model's top label {w.get('top_label')!r}"
        )
    return "\n".join(lines)


def check_floors(
    case: str, values: Mapping[str, float], floors: Mapping[str, float], *, worst: str = ""
) -> None:
    """Every ``values[metric] >= floors[metric]``; NaN fails too (it cannot be checked)."""
    failed = []
    structured = []
    for metric, floor in floors.items():
        value = values.get(metric, math.nan)
        if math.isnan(value) or value < floor:
            failed.append(f"  {metric} = {value:.3f} is below the floor {floor:.3f}")
            structured.append({"metric": metric, "value": value, "bound": floor, "kind": "floor"})
    if failed:
        msg = f"case {case}:\n" + "\n".join(failed)
        if worst:
            msg += f"\n  worst examples:\n{worst}"
        raise CheckFailed(msg, structured)


def check_baseline(
    case: str, values: Mapping[str, float], path: Path, tolerance: float, *, update: bool
) -> str:
    """No metric below its stored baseline by more than ``tolerance``.

    With ``update`` the baseline is rewritten from ``values``. Returns what happened.
    """
    clean = {k: (None if math.isnan(v) else round(float(v), 6)) for k, v in values.items()}
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
        return f"baseline {path.name} written"
    if not path.is_file():
        return "missing"
    stored = json.loads(path.read_text())
    failed = []
    structured = []
    for metric, base in stored.items():
        now = values.get(metric, math.nan)
        if base is None:
            continue
        if math.isnan(now) or now < base - tolerance:
            failed.append(
                f"  {metric}: {now:.3f} now, {base:.3f} in the baseline (tolerance {tolerance})"
            )
            structured.append({"metric": metric, "value": now, "bound": base, "kind": "baseline"})
    if failed:
        raise CheckFailed(
            f"case {case} regressed against {path.name}:\n"
            + "\n".join(failed)
            + "\n  (if the change is intended: pytest evals --update-baselines)",
            structured,
        )
    return "ok"
