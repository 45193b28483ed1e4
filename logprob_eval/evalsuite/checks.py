"""Assertions of the eval suite, pytest-free: they raise AssertionError with a message that
names the case, the metric, the floor, the value and the worst examples."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import CheckFailed, ConfigError
from .baselines import Baseline, GateResult, gate, load_baseline, update_command, write_baseline

__all__ = ["CheckFailed", "check_at_chance", "check_baseline", "check_floors", "format_worst"]


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
    case: str,
    values: Mapping[str, float],
    floors: Mapping[str, float],
    *,
    worst: str = "",
    ci: Mapping[str, Sequence[float]] | None = None,
) -> None:
    """Every ``values[metric] >= floors[metric]``; NaN fails too (it cannot be checked).
    A metric's interval (``ci``) is shown in the message; a floor on ``METRIC_ci_low`` holds
    the interval's lower end (the metric is significantly above the floor)."""
    failed = []
    structured = []
    for metric, floor in floors.items():
        if metric.endswith("_ci_low"):
            low = (ci or {}).get(metric.removesuffix("_ci_low"), [math.nan])[0]
            value = math.nan if low is None else float(low)
        else:
            value = values.get(metric, math.nan)
        if math.isnan(value) or value < floor:
            interval = (ci or {}).get(metric)
            shown = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
            failed.append(f"  {metric} = {value:.3f}{shown} is below the floor {floor:.3f}")
            structured.append({"metric": metric, "value": value, "bound": floor, "kind": "floor"})
    if failed:
        msg = f"case {case}:\n" + "\n".join(failed)
        if worst:
            msg += f"\n  worst examples:\n{worst}"
        raise CheckFailed(msg, structured)


def check_at_chance(
    case: str,
    *,
    coverage: float,
    auc: float,
    auc_ci: Sequence[float],
    max_coverage: float,
    why: str = "",
) -> None:
    """A case declared at chance: almost no label is scored exactly (``coverage``) and the
    AUC's interval contains 0.5. Fails when the model starts doing the task there."""
    lo, hi = (float(auc_ci[0]), float(auc_ci[1])) if len(auc_ci) == 2 else (math.nan, math.nan)
    failed = []
    structured: list[dict[str, Any]] = []
    if math.isnan(coverage) or coverage > max_coverage:
        failed.append(
            f"  coverage = {coverage:.3f} is above {max_coverage:.3f}: the labels are now among "
            "the model's answers"
        )
        structured.append(
            {"metric": "coverage", "value": coverage, "bound": max_coverage, "kind": "chance"}
        )
    if math.isnan(lo) or not lo <= 0.5 <= hi:
        failed.append(f"  AUC = {auc:.3f} [{lo:.3f}, {hi:.3f}]: the interval excludes 0.5")
        structured.append({"metric": "auc", "value": auc, "bound": 0.5, "kind": "chance"})
    if failed:
        reason = f"\n  declared at chance because: {' '.join(why.split())}" if why else ""
        raise CheckFailed(
            f"case {case} is declared at chance but is not:\n"
            + "\n".join(failed)
            + reason
            + "\n  the model does the task here now: remove the case from the at-chance "
            "override in evals/evals.toml and give it floors (raise them to what it reaches)",
            structured,
        )


def check_baseline(
    now: Baseline,
    path: Path,
    *,
    alpha: float,
    min_effect: float,
    update: bool,
    seed: int = 0,
    on_result: Callable[[GateResult], None] | None = None,
) -> GateResult | None:
    """This run against the stored baseline (:mod:`.baselines`); with ``update`` the baseline
    is rewritten (returns None). A missing or outdated baseline fails. ``on_result`` sees the
    comparison before it passes or fails (the suite keeps it for the report)."""
    cmd = update_command(now.case, path.parent)
    if update:
        write_baseline(path, now)
        return None
    if not path.is_file():
        raise CheckFailed(
            f"case {now.case}: no baseline {path.name}; create it with `{cmd}`",
            [{"metric": "baseline", "value": None, "bound": None, "kind": "baseline"}],
        )
    try:
        base = load_baseline(path)
    except ConfigError as exc:
        raise AssertionError(f"case {now.case}: {exc}") from None
    result = gate(now, base, alpha=alpha, min_effect=min_effect, seed=seed)
    if on_result is not None:
        on_result(result)
    if result.passed:
        return result
    if result.mode == "same recordings":
        head = (
            f"case {now.case} changed against {path.name} with the same recordings: the numbers "
            "are a deterministic function of the recordings, so the code that computes them "
            "changed"
        )
    else:
        shared = next(iter(result.comparisons.values())).result.n if result.comparisons else 0
        head = (
            f"case {now.case} regressed against {path.name} (new recordings; paired test over "
            f"{shared} shared texts, alpha {alpha}, min_effect {min_effect})"
        )
    raise CheckFailed(
        head + ":\n" + "\n".join(result.failures) + f"\n  (if the change is intended: `{cmd}`)",
        result.structured,
    )
