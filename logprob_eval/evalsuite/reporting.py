"""The report a ``pytest evals`` run leaves: the same as the CLI's, for what the run scored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..experiments.analysis import ConfigAnalysis, analyze
from ..experiments.table import to_frame
from ..report import write_report
from ..retention import DEFAULT_KEEP

__all__ = ["write_run_report"]


def write_run_report(
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    interrupted: bool = False,
    analyses: Sequence[Mapping[str, Any]] = (),
    options: Mapping[str, Any] | None = None,
    outcomes: Sequence[Mapping[str, Any]] = (),
    texts: Mapping[str, str] | None = None,
    keep: int = DEFAULT_KEEP,
) -> tuple[Path, list[tuple[str, dict[str, Any]]], list[str]]:
    """Merge rows (from every xdist worker), analyse, write; returns (run dir, summary rows,
    failing case ids).

    ``analyses``: per-case analyses already computed by the processes that ran the tests
    (JSON from :meth:`ConfigAnalysis.as_json`, one mapping per process); only the configs
    none of them analysed are computed here. ``options``: the suite's analysis options."""
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
    computed: dict[str, ConfigAnalysis] = {}
    for found in analyses:
        for config, data in sorted(found.items()):
            computed.setdefault(config, ConfigAnalysis.from_json(data))
    summary, sweeps = analyze(df, computed=computed, **dict(options or {}))
    # -- issue 12: verdicts, worst texts, threshold panels of the failing cases only ----------
    failing = sorted({str(o["case"]) for o in outcomes if o["outcome"] == "failed"})
    failing_configs = sorted(
        {str(o["config"]) for o in outcomes if o["outcome"] == "failed" and o.get("config")}
    )
    summary["outcomes"] = list(outcomes)
    run = write_report(
        out_dir,
        df,
        summary,
        sweeps,
        run_id=None,
        title="pytest evals",
        outcomes=outcomes,
        texts=texts,
        threshold_configs=failing_configs,
        interrupted=interrupted,
        keep=keep,
    )
    # -- end issue 12 -------------------------------------------------------------------------
    table = []
    configs = df.drop_duplicates("config").set_index("config")
    for cfg, m in sorted(summary["configs"].items()):
        t = summary["thresholds"].get(cfg, {})
        row = configs.loc[cfg]
        model = str(row["model"]).split("@")[0]
        name = f"{model} {row['method']} {row['template']} {row['label_set']}"
        table.append((name, {**m, **t}))
    return run, table, failing
