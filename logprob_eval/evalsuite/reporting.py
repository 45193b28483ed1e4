"""The report a ``pytest evals`` run leaves: the same as the CLI's, for what the run scored."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..experiments.analysis import analyze
from ..experiments.table import to_frame
from ..report import write_report

__all__ = ["summary_lines", "write_run_report"]

_COLUMNS = (
    ("top1_acc", "top-1"),
    ("topk_acc", "top-k"),
    ("mrr", "MRR"),
    ("auc", "AUC"),
    ("best_f1", "best F1"),
    ("average_precision", "AP"),
)


def _cell(value: Any, ci: Any) -> str:
    """``0.85 [0.76, 0.93]`` (two decimals: the intervals are wider than that)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if not ci or any(c is None or math.isnan(float(c)) for c in ci):
        return f"{value:.2f}"
    return f"{value:.2f} [{float(ci[0]):.2f}, {float(ci[1]):.2f}]"


def summary_lines(
    table: Sequence[tuple[str, dict[str, Any]]], groups: dict[str, Any] | None = None
) -> list[str]:
    """The terminal summary: every headline metric with its 95% bootstrap interval, then
    the mean Kendall tau of each group of configs."""
    width = max([len(name) for name, _ in table] + [4])
    lines = [
        f"{'case':<{width}} " + " ".join(f"{h:<17}" for _, h in _COLUMNS).rstrip(),
        f"{'':<{width}} (95% bootstrap intervals over texts)",
    ]
    for name, m in table:
        ci = m.get("ci", {})
        cells = [f"{_cell(m.get(k, math.nan), ci.get(k)):<17}" for k, _ in _COLUMNS]
        lines.append(f"{name:<{width}} " + " ".join(cells).rstrip())
    for name, g in (groups or {}).items():
        shown = name.split("@")[0].replace("/", " ")
        lines.append(f"{shown:<{width}} tau {_cell(g['mean_kendall_tau'], g['ci'])}")
    return lines


def write_run_report(
    rows: Sequence[dict[str, Any]], out_dir: str | Path, *, interrupted: bool = False
) -> tuple[Path, list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """Merge rows (from every xdist worker), analyse, write; returns (run dir, summary rows,
    Kendall tau groups). An ``interrupted`` run is marked so and does not move ``latest``."""
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for r in rows:
        key = (r["model"], r["method"], r["template"], r["label_set"], r["example_id"], r["label"])
        if key not in seen:
            seen.add(key)
            unique.append(r)
    # one order whatever the workers' order: the same run gives the same report bit for bit
    unique.sort(
        key=lambda r: (
            r["model"],
            r["method"],
            r["template"],
            r["label_set"],
            str(r["example_id"]),
            r["label"],
        )
    )
    df = to_frame(unique)
    summary, sweeps = analyze(df)
    run = write_report(
        out_dir, df, summary, sweeps, run_id=None, title="pytest evals", interrupted=interrupted
    )
    table = []
    configs = df.drop_duplicates("config").set_index("config")
    for cfg, m in sorted(summary["configs"].items()):
        t = summary["thresholds"].get(cfg, {})
        row = configs.loc[cfg]
        model = str(row["model"]).split("@")[0]
        name = f"{model} {row['method']} {row['template']} {row['label_set']}"
        table.append((name, {**m, **t, "ci": {**m.get("ci", {}), **t.get("ci", {})}}))
    return run, table, summary.get("tau_groups", {})
