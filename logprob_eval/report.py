"""Write a run's report: ``reports/<run-id>/`` with scores.csv, metrics.json, PNG plots and
report.html, and point ``reports/latest`` at it."""

from __future__ import annotations

import html
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .experiments.metrics import agreement_matrix
from .experiments.thresholds import ThresholdSweep
from .experiments.transforms import split_content_free
from .redact import redact

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


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(config: str) -> str:
    return config.replace("openai-compatible:", "").replace("local:", "")


def plot_true_distributions(df: pd.DataFrame, by: str, path: Path) -> Path | None:
    true = df[df["is_true"] & (df["status"] != "error") & np.isfinite(df["logprob"])]
    if true.empty:
        return None
    plt = _plt()
    groups = sorted(true[by].unique())
    data = [true.loc[true[by] == g, "logprob"].to_numpy() for g in groups]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(groups) + 2), 4.5))
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
    plt.close(fig)
    return path


def plot_template_agreement(df: pd.DataFrame, path: Path) -> Path | None:
    configs = df.drop_duplicates("config")
    groups = [
        (key, grp)
        for key, grp in configs.groupby(["model", "method", "label_set"])
        if grp["template"].nunique() > 1
    ][:6]
    if not groups:
        return None
    plt = _plt()
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.0 * cols, 5.6 * rows), squeeze=False, layout="constrained"
    )
    im = None
    for ax, ((model, method, ls), grp) in zip(axes.flat, groups, strict=False):
        grp = grp.sort_values("template")
        mat = agreement_matrix(df, list(grp["config"]))
        names = list(grp["template"])
        im = ax.imshow(mat.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        size = 8 if len(names) <= 5 else 6.5
        for i in range(len(names)):
            for j in range(len(names)):
                v = mat.iat[i, j]
                # n/a: every text tied all labels in one of the two configs
                color = "grey" if math.isnan(v) else ("white" if abs(v) > 0.6 else "black")
                label = "n/a" if math.isnan(v) else f"{v:.2f}"
                ax.text(j, i, label, ha="center", va="center", fontsize=size, color=color)
        ax.set_title(f"{_short(model)} / {method} / {ls}", fontsize=9)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, label="mean per-text Kendall tau", shrink=0.8)
    fig.suptitle("Rank agreement across prompt templates")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_thresholds(sweeps: Sequence[ThresholdSweep], path: Path) -> Path | None:
    sweeps = [s for s in sweeps if s.thresholds][:_MAX_PANELS]
    if not sweeps:
        return None
    plt = _plt()
    n = len(sweeps)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
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
    plt.close(fig)
    return path


def plot_pr_curves(sweeps: Sequence[ThresholdSweep], path: Path) -> Path | None:
    sweeps = [s for s in sweeps if s.pr_recall][:_MAX_PANELS]
    if not sweeps:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5))
    for s in sweeps:
        ax.plot(
            s.pr_recall, s.pr_precision, label=f"{_short(s.config)} (AP {s.average_precision:.2f})"
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
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    return html.escape(str(v))


def _with_ci(value: Any, ci: Any) -> str:
    """``0.850 [0.760, 0.930]``: a metric with its bootstrap interval."""
    if not isinstance(value, float | int) or math.isnan(float(value)):
        return "n/a"
    if not ci or any(c is None or math.isnan(float(c)) for c in ci):
        return f"{value:.3f}"
    return f"{value:.3f} [{float(ci[0]):.3f}, {float(ci[1]):.3f}]"


def outcomes_table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per config x text: the per-text values the headline metrics average."""
    rows = []
    for cfg, m in summary.get("configs", {}).items():
        labels = m.get("labels", [])
        for ex, o in m.get("per_text", {}).items():
            rows.append(
                {
                    "config": cfg,
                    "example_id": ex,
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


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(title: str, summary: dict[str, Any], images: list[Path]) -> str:
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{summary.get('n_texts', '?')} texts; generated {time.strftime('%Y-%m-%d %H:%M')}</p>",
    ]
    if summary.get("interrupted"):
        parts.insert(
            1,
            '<p class="interrupted" style="background:#fdd;padding:8px;font-weight:bold">'
            "INTERRUPTED: this run stopped before it finished; the numbers below cover only "
            "what it scored. reports/latest still points at the last complete run.</p>",
        )
    rows = []
    thr = summary.get("thresholds", {})
    for cfg, m in summary.get("configs", {}).items():
        t = thr.get(cfg, {})
        ci = {**m.get("ci", {}), **t.get("ci", {})}
        rows.append(
            [
                _short(cfg),
                m["n_examples"],
                _with_ci(m["top1_acc"], ci.get("top1_acc")),
                _with_ci(m["topk_acc"], ci.get("topk_acc")),
                _with_ci(m["mrr"], ci.get("mrr")),
                _with_ci(m["auc"], ci.get("auc")),
                m["coverage"],
                _with_ci(t.get("best_f1", math.nan), ci.get("best_f1")),
                _with_ci(t.get("average_precision", math.nan), ci.get("average_precision")),
                t.get("best_threshold", math.nan),
                t.get("transfer", {}).get("kept", math.nan),
            ]
        )
    parts.append(
        "<h2>Ranking and thresholds per config</h2><p>Each metric with its 95% bootstrap "
        "interval over texts (seeded; texts resampled as clusters). Per-text outcomes: "
        "<code>outcomes.csv</code> and <code>metrics.json</code>.</p>"
    )
    parts.append(
        _table(
            [
                "config",
                "texts",
                "top-1",
                "top-k",
                "MRR",
                "AUC",
                "exact share",
                "best F1",
                "AP",
                "best threshold",
                "F1 kept dev->test",
            ],
            rows,
        )
    )
    groups = summary.get("tau_groups", {})
    if groups:
        parts.append(
            "<h2>Rank agreement per group</h2><p>Mean per-text Kendall tau over the config "
            "pairs of a group, with its 95% bootstrap interval over texts.</p>"
        )
        parts.append(
            _table(
                ["group", "pairs", "mean Kendall tau"],
                [
                    [_short(g), v["n_pairs"], _with_ci(v["mean_kendall_tau"], v["ci"])]
                    for g, v in groups.items()
                ],
            )
        )
    tr = summary.get("transforms", {})
    if tr:
        parts.append(
            "<h2>Score transforms</h2><p>Spread: mean over (text, true label) of the"
            " std of its score across configs (lower is more stable). Tau: mean "
            "per-text Kendall tau over all config pairs.</p>"
        )
        parts.append(
            _table(
                ["transform", "true-label spread", "mean Kendall tau", "note"],
                [
                    [k, v["true_label_spread"], v["mean_kendall_tau"], v["note"]]
                    for k, v in tr.items()
                ],
            )
        )
    ag = summary.get("agreement", {})
    for factor, pairs in ag.items():
        if not pairs:
            continue
        parts.append(f"<h2>Agreement across {html.escape(factor.replace('_', ' '))}s</h2>")
        parts.append(
            _table(
                [
                    "A",
                    "B",
                    "texts",
                    "Kendall tau",
                    "top-1 agreement",
                    "median shift",
                    "Wasserstein",
                ],
                [
                    [
                        _short(p["a"]),
                        _short(p["b"]),
                        p["n_examples"],
                        p["kendall_tau"],
                        p["top1_agreement"],
                        p["median_shift"],
                        p["wasserstein"],
                    ]
                    for p in pairs[:40]
                ],
            )
        )
    notes = [
        f"{_short(c)}: {n}"
        for c, m in summary.get("configs", {}).items()
        for n in m.get("notes", [])
    ]
    if notes:
        parts.append(
            "<h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in notes[:50])
            + "</ul>"
        )
    parts.append("<h2>Plots</h2>")
    parts += [
        f'<p><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}"></p>' for p in images
    ]
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )


def write_report(
    out_dir: str | Path,
    df: pd.DataFrame,
    summary: dict[str, Any],
    sweeps: Sequence[ThresholdSweep] = (),
    *,
    run_id: str | None = None,
    title: str = "logprob-eval report",
    interrupted: bool = False,
) -> Path:
    """Write the run directory and update ``<out_dir>/latest``; returns the run directory.

    An ``interrupted`` run (stopped by SIGINT, or failing at session level) is marked so
    in ``metrics.json`` and on the page, and ``latest`` keeps pointing at the last
    complete run.
    """
    if interrupted:
        summary = {**summary, "interrupted": True}
    root = Path(out_dir)
    run = root / (run_id or new_run_id())
    run.mkdir(parents=True, exist_ok=True)
    df.to_csv(run / "scores.csv", index=False)
    outcomes_table(summary).to_csv(run / "outcomes.csv", index=False)
    (run / "metrics.json").write_text(redact(json.dumps(_jsonable(summary), indent=2)))
    real, _ = split_content_free(df)
    images = [
        p
        for p in (
            plot_true_distributions(real, "model", run / "true_scores_by_model.png"),
            plot_true_distributions(real, "template", run / "true_scores_by_template.png"),
            plot_true_distributions(real, "label_set", run / "true_scores_by_label_set.png"),
            plot_template_agreement(real, run / "rank_agreement_templates.png"),
            plot_thresholds(sweeps, run / "thresholds.png"),
            plot_pr_curves(sweeps, run / "pr_curves.png"),
        )
        if p is not None
    ]
    (run / "report.html").write_text(redact(_html(title, summary, images)), encoding="utf-8")
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
    return run
