"""Write a run's report: ``reports/<run-id>/`` with scores.csv, metrics.json, PNG plots and
report.html, and point ``reports/latest`` at it."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..experiments.thresholds import ThresholdSweep
from ..experiments.transforms import split_content_free
from ..redact import redact
from .report_html import render_report
from .retention import DEFAULT_KEEP, mark_run, prune_runs

__all__ = ["new_run_id", "outcomes_table", "write_report"]

_MAX_PANELS = 12


def new_run_id(prefix: str = "run") -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid() % 10000:04d}"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return None if math.isnan(f) else (str(f) if math.isinf(f) else f)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _figure(figsize: tuple[float, float]) -> Any:
    """A figure of its own, drawn off-screen (matplotlib's object API, not pyplot: no global
    figure registry: nothing outlives the report, and any thread may draw)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _short(config: str) -> str:
    return config.replace("openai-compatible:", "").replace("local:", "")


def plot_true_distributions(df: pd.DataFrame, by: str, path: Path) -> Path | None:
    true = df[df["is_true"] & (df["status"] != "error") & np.isfinite(df["logprob"])]
    if true.empty:
        return None
    groups = sorted(true[by].unique())
    if len(groups) < 2:  # one box says nothing a table does not
        return None
    data = [true.loc[true[by] == g, "logprob"].to_numpy() for g in groups]
    fig = _figure((max(6, 1.1 * len(groups) + 2), 4.5))
    ax = fig.subplots()
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(
        range(1, len(groups) + 1), [_short(str(g)) for g in groups], rotation=30, ha="right"
    )
    ax.set_title(f"True-label log-prob by {by.replace('_', ' ')}")
    ax.set_xlabel(by.replace("_", " "))
    ax.set_ylabel("log P(true label)  (nats)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_thresholds(sweeps: Sequence[ThresholdSweep], path: Path) -> Path | None:
    sweeps = [s for s in sweeps if s.thresholds][:_MAX_PANELS]
    if not sweeps:
        return None
    n = len(sweeps)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = _figure((4.6 * cols, 3.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, s in zip(axes.flat, sweeps, strict=False):
        ax.plot(s.thresholds, s.precision_micro, label="precision (micro)")
        ax.plot(s.thresholds, s.recall_micro, label="recall (micro)")
        ax.plot(s.thresholds, s.f1_micro, label="F1 (micro)", linewidth=2)
        ax.plot(s.thresholds, s.f1_macro, label="F1 (macro)", linestyle="--")
        ax.axvline(s.best_threshold, color="grey", linestyle=":", label="best threshold")
        ax.set_title(_short(s.config), fontsize=8)
        ax.set_xlabel(f"threshold on {s.score}")
        ax.set_ylabel("score")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle("Precision / recall / F1 as the threshold sweeps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_pr_curves(sweeps: Sequence[ThresholdSweep], path: Path) -> Path | None:
    sweeps = [s for s in sweeps if s.pr_recall][:_MAX_PANELS]
    if not sweeps:
        return None
    fig = _figure((7, 5))
    ax = fig.subplots()
    for i, s in enumerate(sweeps):
        ax.plot(
            s.pr_recall,
            s.pr_precision,
            label=f"{_short(s.config)} (AP {s.average_precision:.2f})",
            linestyle="-" if i < 10 else "--",  # the 10 colours repeat after 10 curves
        )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall curves (micro, all text x label pairs)")
    ax.legend(fontsize=6, loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def outcomes_table(summary: dict[str, Any], texts: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per config x text: the per-text values the headline metrics average (and the
    text's words when ``texts`` has them: ``logprob-eval compare`` shows them)."""
    rows = []
    for cfg, m in summary.get("configs", {}).items():
        labels = m.get("labels", [])
        for ex, o in m.get("per_text", {}).items():
            rows.append(
                {
                    "config": cfg,
                    "example_id": ex,
                    **({"text": texts.get(str(ex), "")} if texts else {}),
                    **{f: o[f] for f in ("best_true_rank", "rr", "top1", "topk", "auc")},
                    "top_label": o["top_label"],
                    "true": ";".join(o["true"]),
                    "true_scores": json.dumps(
                        {
                            lb: s
                            for lb, s in zip(labels, o["scores"], strict=True)
                            if lb in o["true"]
                        }
                    ),
                }
            )
    return pd.DataFrame(rows)


def write_report(
    out_dir: str | Path,
    df: pd.DataFrame,
    summary: dict[str, Any],
    sweeps: Sequence[ThresholdSweep] = (),
    *,
    run_id: str | None = None,
    title: str = "logprob-eval report",
    interrupted: bool = False,
    outcomes: Sequence[Mapping[str, Any]] = (),
    texts: Mapping[str, str] | None = None,
    threshold_configs: Sequence[str] | None = None,
    keep: int = DEFAULT_KEEP,
) -> Path:
    """Write the run directory and update ``<out_dir>/latest``; returns the run directory.

    An ``interrupted`` run (stopped by SIGINT, or failing at session level) is marked so
    in ``metrics.json`` and on the page, and ``latest`` keeps pointing at the last
    complete run.

    ``outcomes`` (one per test) give the verdict table; ``texts`` (by example id) the worst
    texts' wording. ``threshold_configs``: the configs whose F1-vs-threshold panels are drawn
    (default: the first ones, up to 12; the suite passes its failing cases). Then only the
    newest ``keep`` run folders stay (0 keeps all; see :mod:`logprob_eval.reporting.retention`)."""
    if interrupted:
        summary = {**summary, "interrupted": True}
    root = Path(out_dir)
    run = root / (run_id or new_run_id())
    run.mkdir(parents=True, exist_ok=True)
    mark_run(run)
    df.to_csv(run / "scores.csv", index=False)
    outcomes_table(summary, texts).to_csv(run / "outcomes.csv", index=False)
    (run / "metrics.json").write_text(redact(json.dumps(_jsonable(summary), indent=2)))
    real, _ = split_content_free(df)
    images = [
        p
        for p in (
            plot_true_distributions(real, "model", run / "true_scores_by_model.png"),
            plot_true_distributions(real, "template", run / "true_scores_by_template.png"),
            plot_true_distributions(real, "label_set", run / "true_scores_by_label_set.png"),
            plot_thresholds(
                [s for s in sweeps if threshold_configs is None or s.config in threshold_configs],
                run / "thresholds.png",
            ),
            plot_pr_curves(sweeps, run / "pr_curves.png"),
        )
        if p is not None
    ]
    page = render_report(
        title, summary, images, df=real, outcomes=outcomes, texts=texts, short=_short
    )
    (run / "report.html").write_text(redact(page), encoding="utf-8")
    if interrupted:
        return run
    latest = root / "latest"
    tmp = root / f".latest-{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(run.name)
        tmp.replace(latest)
    except OSError:
        (root / "LATEST").write_text(run.name + "\n")
    prune_runs(root, keep, current=run)
    return run
