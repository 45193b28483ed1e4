"""The report a ``pytest evals`` run leaves: the same as the CLI's, for what the run scored."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from ..experiments.analysis import ConfigAnalysis, analyze
from ..experiments.stability import PairAgreement
from ..reporting.report import write_report
from ..reporting.retention import DEFAULT_KEEP

__all__ = ["RunReport", "baseline_flips", "summary_lines", "write_run_report"]

_ROW_ORDER = ["model", "method", "template", "label_set"]  # then text id and label
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


def _without_url(model: str) -> str:
    """``openai-compatible:m@http://host:port/v1`` -> ``openai-compatible:m``; a server
    the suite starts (``...@llama-server``) stays named."""
    base, _, tail = model.partition("@")
    return base if "://" in tail else model


def _group_shown(name: str) -> str:
    """A tau group's key, ``{model}/{method}/{fixed} across {factor}s``, for the terminal:
    the model without its URL, the parts by spaces (the URL's own slashes stay out of it)."""
    head, across, factor = name.partition(" across ")
    parts = head.rsplit("/", 2)
    parts[0] = _without_url(parts[0])
    return " ".join(parts) + across + factor


def summary_lines(
    table: Sequence[tuple[str, dict[str, Any]]],
    groups: dict[str, Any] | None = None,
    tau_floors: dict[str, float | None] | None = None,
) -> list[str]:
    """The terminal summary: every headline metric with its 95% bootstrap interval, then
    the mean Kendall tau of each group of configs with its floor (``tau_floors`` by what
    the group varies, ``templates`` or ``label_sets``; None: "no floor")."""
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
        shown = _group_shown(name)
        line = f"{shown:<{width}} tau {_cell(g['mean_kendall_tau'], g['ci'])}"
        if tau_floors is not None:
            floor = tau_floors.get(name.rsplit("across", 1)[-1].strip(" -_"))
            line += "  no floor" if floor is None else f"  floor {floor:.2f}"
        lines.append(line)
    return lines


class RunReport(NamedTuple):
    run_dir: Path
    table: list[tuple[str, dict[str, Any]]]  # the summary's rows: name, metrics with "ci"
    failing: list[str]  # failing case ids (their anchors in report.html)
    tau_groups: dict[str, Any]


def baseline_flips(
    ranking: Mapping[str, Mapping[str, Any]],
    case_configs: Mapping[str, str],
    baselines: Path,
    texts: Mapping[str, str] | None = None,
) -> list[dict[str, Any]] | None:
    """The texts that flipped against each case's stored baseline; ``ranking``: the
    summary's ``configs`` (per config: ``labels``, ``per_text``, ``k``); ``texts``: their
    words by id. None when no case of the run has a readable baseline: nothing was
    compared."""
    from ..errors import ConfigError
    from ..experiments.paired import TextOutcomes, flipped_texts
    from ..reporting.compare import report_flips
    from .baselines import load_baseline

    flips: list[dict[str, Any]] | None = None
    for case, config in sorted(case_configs.items()):
        path = baselines / f"{case}.json"
        r = ranking.get(config)
        if r is None or not r.get("per_text") or not path.is_file():
            continue
        try:
            base = load_baseline(path)
        except ConfigError:  # an outdated baseline: its test says so
            continue
        now = TextOutcomes.from_per_text(r["labels"], r["per_text"], int(r["k"]))
        flipped = flipped_texts(base.outcomes(), now)
        flips = (flips or []) + report_flips(flipped, case, "baseline", texts=texts)
    return flips


def write_run_report(
    frames: Mapping[str, pd.DataFrame],
    out_dir: str | Path,
    *,
    interrupted: bool = False,
    analyses: Sequence[Mapping[str, Any]] = (),
    pairs: Sequence[Mapping[str, Any]] = (),
    options: Mapping[str, Any] | None = None,
    outcomes: Sequence[Mapping[str, Any]] = (),
    texts: Mapping[str, str] | None = None,
    keep: int = DEFAULT_KEEP,
    baselines: Path | None = None,
    case_configs: Mapping[str, str] | None = None,
    compare_to: Path | None = None,
    servers: Sequence[Mapping[str, Any]] = (),
) -> RunReport:
    """Merge the cases' tidy frames (by case id, from every xdist worker), analyse, write
    the run's folder.

    ``analyses``: per-case analyses already computed by the processes that ran the tests
    (JSON from :meth:`ConfigAnalysis.as_json`, one mapping per process); only the configs
    none of them analysed are computed here; ``pairs``: the pair agreements they computed
    (JSON from :meth:`PairAgreement.as_json`). ``options``: the suite's analysis options.
    ``baselines`` (the folder of ``<case>.json``) and ``case_configs`` (case id -> config):
    the report lists the texts that flipped against each case's baseline. ``compare_to``:
    an earlier run (report folder or scores table) compared with this one
    (:mod:`logprob_eval.reporting.compare`): its flips are listed too, and
    ``comparison.md``/``.json`` go into the run's folder. ``servers``: the cross-server
    agreements the tests measured (one mapping per pair of cases, see
    ``SuiteRunner.server_agreement``). An ``interrupted`` run is marked so and does not
    move ``latest``."""
    # one order whatever the workers' order: the same run gives the same report bit for bit
    df = pd.concat([frames[c] for c in sorted(frames)], ignore_index=True)
    df["_id"] = df["example_id"].astype(str)
    df = df.sort_values([*_ROW_ORDER, "_id", "label"], kind="stable", ignore_index=True)
    df = df.drop(columns="_id")
    computed: dict[str, ConfigAnalysis] = {}
    for found in analyses:
        for config, data in sorted(found.items()):
            computed.setdefault(config, ConfigAnalysis.from_json(data))
    known: dict[tuple[str, str], PairAgreement] = {}
    for data in pairs:
        pair = PairAgreement.from_json(data)
        known.setdefault((pair.agreement.a, pair.agreement.b), pair)
    summary, sweeps = analyze(df, computed=computed, pairs=known, **dict(options or {}))
    flips = (
        baseline_flips(summary["configs"], case_configs or {}, baselines, texts)
        if baselines is not None
        else None
    )
    compared = None
    if compare_to is not None:
        from ..reporting.compare import comparison, report_flips

        k = int(dict(options or {}).get("k", 3))
        compared = comparison(
            Path(compare_to), df, k=k, k_from="the suite's [expectations.ranking] k", texts=texts
        )
        by_config = {v: c for c, v in (case_configs or {}).items()}
        flips = (flips or []) + [
            f
            for cfg, c in compared["configs"].items()
            for f in report_flips(c["flipped"], by_config.get(cfg, cfg), str(compare_to))
        ]
    summary["flips"] = flips
    unique = {(str(s["a"]), str(s["b"])): dict(s) for s in servers}
    summary["servers"] = [unique[k] for k in sorted(unique)]
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
    if compared is not None:
        from ..reporting.compare import write_comparison

        write_comparison(compared, run)
    table = []
    configs = df.drop_duplicates("config").set_index("config")
    for cfg, m in sorted(summary["configs"].items()):
        t = summary["thresholds"].get(cfg, {})
        row = configs.loc[cfg]
        model = _without_url(str(row["model"]))
        name = f"{model} {row['method']} {row['template']} {row['label_set']}"
        table.append((name, {**m, **t, "ci": {**m.get("ci", {}), **t.get("ci", {})}}))
    return RunReport(run, table, failing, summary.get("tau_groups", {}))
