"""``report.html``, ordered for a person who has just seen a red CI run.

1. the verdict table: every case, pass or fail, the failing metric with its value (and its
   interval where the summary has one), the floor or baseline it missed; each case's row
   is its anchor (``#case-<id>``);
2. a config x metric heatmap;
3. for each failing or changed case, its worst texts with their full label rankings;
4. the texts that flipped against the baseline (where the run carries them);
5. then the rank agreement across templates (HTML matrices: no figure to draw), the plots
   and the detailed tables.

Self-contained: inline CSS, no script, images by relative path, nothing from the network,
so the page works from ``file://``. Pure rendering: every number comes from its inputs.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["HEATMAP_METRICS", "case_anchor", "render_report"]

HEATMAP_METRICS: tuple[tuple[str, str, str], ...] = (
    # (heading, section of the summary, key)
    ("top-1", "configs", "top1_acc"),
    ("top-k", "configs", "topk_acc"),
    ("MRR", "configs", "mrr"),
    ("AUC", "configs", "auc"),
    ("exact share", "configs", "coverage"),
    ("best F1", "thresholds", "best_f1"),
    ("AP", "thresholds", "average_precision"),
    ("F1 kept dev->test", "transfer", "kept"),
)
_STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:13px;margin-bottom:1em}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}"
    "td:first-child,th:first-child,td.s{text-align:left}img{max-width:100%}"
    ".fail{color:#b00020;font-weight:bold}.pass{color:#0a7d28}.skip{color:#777}"
    "tr:target{outline:3px solid #f0a000}.rank td,.verdict td{text-align:left}"
    ".true{font-weight:bold}.verdict>tbody>tr>td:first-child{white-space:nowrap}"
    "details{margin:1em 0}summary{cursor:pointer;font-weight:bold}"
)


def case_anchor(case: str) -> str:
    """The id of a case's row in the verdict table (``report.html#case-<id>``)."""
    return f"case-{case}"


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _num(v: Any) -> str:
    if isinstance(v, float | int) and not isinstance(v, bool):
        return "n/a" if math.isnan(float(v)) else f"{float(v):.3f}"
    return "n/a" if v is None else _esc(v)


def _td(v: Any) -> str:
    """A cell: numbers align right, words left (class ``s``: text with a letter in it)."""
    if isinstance(v, str) and any(ch.isalpha() for ch in v):
        return f"<td class='s'>{_esc(v)}</td>"
    return f"<td>{_num(v)}</td>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td(c) for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ci(summary: Mapping[str, Any], config: str | None, metric: str) -> Any:
    """The 95% bootstrap interval of a config's metric (ranking metrics under
    ``configs[config]["ci"]``, threshold metrics under ``thresholds[config]["ci"]``)."""
    for section in ("configs", "thresholds"):
        ci = ((summary.get(section, {}).get(config or "", {}) or {}).get("ci") or {}).get(metric)
        if ci:
            return ci
    return None


def _interval(summary: Mapping[str, Any], config: str | None, metric: str) -> str:
    """`` [lo, hi]`` where the summary holds the metric's interval (else empty)."""
    ci = _ci(summary, config, metric)
    if not ci or any(x is None or math.isnan(float(x)) for x in ci[:2]):
        return ""
    return f" [{float(ci[0]):.3f}, {float(ci[1]):.3f}]"


def _verdicts(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Outcomes grouped by case, failing cases first, then by case id."""
    by_case: dict[str, list[Mapping[str, Any]]] = {}
    for o in outcomes:
        by_case.setdefault(str(o["case"]), []).append(o)
    rank = {"failed": 0, "passed": 1, "skipped": 2}
    return dict(
        sorted(
            by_case.items(),
            key=lambda kv: (min(rank.get(o["outcome"], 1) for o in kv[1]), kv[0]),
        )
    )


def _verdict_section(outcomes: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    groups = _verdicts(outcomes)
    if not groups:
        return "<h2>Verdict</h2><p>No test outcome was recorded for this report.</p>"
    failed = [c for c, os_ in groups.items() if any(o["outcome"] == "failed" for o in os_)]
    skipped = [c for c, os_ in groups.items() if all(o["outcome"] == "skipped" for o in os_)]
    head = (
        f"<p><b>{len(groups)} cases: <span class='fail'>{len(failed)} failed</span>, "
        f"<span class='pass'>{len(groups) - len(failed) - len(skipped)} passed</span>, "
        f"<span class='skip'>{len(skipped)} skipped</span>.</b></p>"
    )
    rows = []
    for case, os_ in groups.items():
        verdict = "fail" if case in failed else ("skip" if case in skipped else "pass")
        config = next((o.get("config") for o in os_ if o.get("config")), None)
        lines = []
        for o in os_:
            if o["outcome"] != "failed":
                continue
            test = _esc(o["test"])
            failures = o.get("failures") or []
            for f in failures:
                bound_kind = f.get("kind") or "floor"  # floor, baseline or chance
                lines.append(
                    f"<tr><td>{test}</td><td>{_esc(f['metric'])}</td>"
                    f"<td>{_num(f.get('value'))}{_interval(summary, config, f['metric'])}</td>"
                    f"<td>{bound_kind} {_num(f.get('bound'))}</td></tr>"
                )
            if not failures:
                first = _esc(str(o.get("message", "")).strip().splitlines()[0:1] or [""])
                lines.append(f"<tr><td>{test}</td><td colspan='3'>{first}</td></tr>")
        detail = (
            "<table>" + "".join(lines) + "</table>"
            if lines
            else ", ".join(sorted({_esc(o["test"]) for o in os_}))
        )
        if verdict == "skip":
            first_line = (str(os_[0].get("message", "")).strip().splitlines() or [""])[0]
            detail = _esc(first_line.removeprefix("Skipped: "))
        link = f" (<a href='#texts-{_esc(case)}'>worst texts</a>)" if verdict == "fail" else ""
        rows.append(
            f"<tr id='{_esc(case_anchor(case))}'><td><a href='#{_esc(case_anchor(case))}'>"
            f"{_esc(case)}</a>{link}</td><td class='{verdict}'>{verdict.upper()}</td>"
            f"<td>{detail}</td></tr>"
        )
    return (
        "<h2 id='verdict'>Verdict</h2>"
        + head
        + "<table class='verdict'><thead><tr><th>case</th><th>verdict</th>"
        "<th>failing test: metric, value [interval], missed floor or baseline</th></tr>"
        "</thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _heat(v: Any) -> str:
    """A background from red (0) through yellow to green (1); grey when undefined."""
    if not isinstance(v, float | int) or math.isnan(float(v)):
        return "background:#eee"
    x = min(max(float(v), 0.0), 1.0)
    return f"background:hsl({round(120 * x)},70%,78%)"


def _heatmap_section(summary: Mapping[str, Any], short: Any) -> str:
    configs = summary.get("configs", {})
    thresholds = summary.get("thresholds", {})
    head = "".join(f"<th>{_esc(h)}</th>" for h, _, _ in HEATMAP_METRICS)
    rows = []
    for cfg in sorted(configs):
        cells = []
        for _, section, key in HEATMAP_METRICS:
            if section == "configs":
                v = configs[cfg].get(key)
            elif section == "thresholds":
                v = thresholds.get(cfg, {}).get(key)
            else:
                v = thresholds.get(cfg, {}).get("transfer", {}).get(key)
            v = math.nan if v is None else v
            shown = _interval(summary, cfg, key) if section != "transfer" else ""
            small = f"<br><small>{shown.strip()}</small>" if shown else ""
            cells.append(f"<td style='{_heat(v)}'>{_num(v)}{small}</td>")
        rows.append(f"<tr><td>{_esc(short(cfg))}</td>{''.join(cells)}</tr>")
    return (
        "<h2 id='heatmap'>Configs x metrics</h2><p>Colour from red (0) to green (1); under "
        "each value its 95% bootstrap interval over texts (seeded; texts resampled as "
        "clusters). Per-text outcomes: <code>outcomes.csv</code> and "
        "<code>metrics.json</code>.</p>"
        f"<table class='heatmap'><thead><tr><th>config</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _tau_color(v: Any) -> str:
    """Blue for agreeing rankings (tau 1), white at 0, red for reversed ones (-1)."""
    if not isinstance(v, float | int) or math.isnan(float(v)):
        return "background:#eee"
    x = min(max(float(v), -1.0), 1.0)
    hue = 215 if x >= 0 else 0
    return f"background:hsl({hue},70%,{round(97 - 30 * abs(x))}%)"


def _agreement_section(summary: Mapping[str, Any], short: Any) -> str:
    """Mean per-text Kendall tau between the templates of each (model, method, label set):
    one matrix per group, from the pairs in ``summary["agreement"]["template"]``."""
    groups: dict[tuple[str, ...], dict[tuple[str, str], float]] = {}
    for p in summary.get("agreement", {}).get("template", []):
        a, b = str(p["a"]).rsplit("/", 2), str(p["b"]).rsplit("/", 2)
        key = (a[0], a[2])  # model/method, label set
        tau = math.nan if p["kendall_tau"] is None else float(p["kendall_tau"])
        groups.setdefault(key, {})[(a[1], b[1])] = tau
    if not groups:
        return ""
    parts = [
        "<h2 id='agreement'>Rank agreement across templates</h2><p>Mean per-text Kendall "
        "tau of the label rankings between two templates (1: same order; n/a: every text "
        "tied all labels in one of them).</p>"
    ]
    for (model_method, label_set), taus in sorted(groups.items()):
        names = sorted({t for pair in taus for t in pair})
        head = "".join(f"<th>{_esc(n)}</th>" for n in names)
        rows = []
        for x in names:
            cells = []
            for y in names:
                v = 1.0 if x == y else taus.get((x, y), taus.get((y, x), math.nan))
                cells.append(f"<td style='{_tau_color(v)}'>{_num(v)}</td>")
            rows.append(f"<tr><td>{_esc(x)}</td>{''.join(cells)}</tr>")
        parts.append(
            f"<h3>{_esc(short(model_method))} / {_esc(label_set)}</h3>"
            f"<table class='agreement'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    return "".join(parts)


def _ranking_cell(part: pd.DataFrame) -> str:
    """A text's labels best first: label, score, status; true labels in bold."""
    items = []
    for r in part.sort_values(["rank", "label"]).itertuples():
        cls = " class='true'" if r.is_true else ""
        mark = " (true)" if r.is_true else ""
        items.append(
            f"<li{cls}>{_esc(r.label)}{mark}: {_num(float(r.logprob))} ({_esc(r.status)})</li>"
        )
    return "<ol>" + "".join(items) + "</ol>"


def _worst_section(
    failing: Sequence[tuple[str, str]],
    summary: Mapping[str, Any],
    df: pd.DataFrame,
    texts: Mapping[str, str],
) -> str:
    parts = ["<h2 id='worst'>Worst texts of the failing cases</h2>"]
    if not failing:
        parts.append("<p>No case failed.</p>")
    for case, config in failing:
        worst = summary.get("configs", {}).get(config, {}).get("worst", [])
        part = df[df["config"] == config]
        rows = []
        for w in worst:
            ex = str(w.get("example_id"))
            ranking = _ranking_cell(part[part["example_id"].astype(str) == ex])
            rows.append(
                f"<tr class='rank'><td>{_esc(ex)}</td><td>{_esc(texts.get(ex, ''))}</td>"
                f"<td>{_esc(', '.join(w.get('true', [])))}</td><td>{ranking}</td></tr>"
            )
        body = (
            "<table><thead><tr><th>text id</th><th>text</th><th>true labels</th>"
            "<th>model's ranking (log-prob, status)</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
            if rows
            else "<p>No per-text ranking for this case (its metrics are undefined).</p>"
        )
        parts.append(
            f"<h3 id='texts-{_esc(case)}'><a href='#{_esc(case_anchor(case))}'>{_esc(case)}"
            f"</a></h3>{body}"
        )
    return "".join(parts)


def _gate_word(m: Mapping[str, Any], min_effect: float) -> str:
    """What the gate made of one metric's paired difference (the rule of ``is_regression``)."""
    low, high, diff = (float(m[k]) for k in ("low", "high", "diff"))
    if m.get("regression"):
        return f"drop larger than {min_effect:g}: fails"
    if math.isnan(diff):
        return "undefined"
    if high < 0:
        return f"significant drop, within {min_effect:g}"
    if low > 0:
        return "significant gain"
    return "within noise"


def _gate_section(outcomes: Sequence[Mapping[str, Any]]) -> str:
    """Each case's comparison with its stored baseline, passed or failed (``gate``:
    :meth:`~logprob_eval.evalsuite.baselines.GateResult.as_dict`)."""
    gates = sorted((str(o["case"]), o["gate"]) for o in outcomes if o.get("gate"))
    if not gates:
        return (
            "<h2 id='gate'>Against the baseline</h2><p>No case was compared with a stored "
            "baseline in this run.</p>"
        )
    rows = []
    for case, g in gates:
        if g["mode"] == "same recordings":
            verdict = "every number as pinned" if g["passed"] else "changed: fails"
            rows.append([case, "all", "same", "", "", "", verdict])
            continue
        recordings = "new"
        if g["only_now"] or g["only_baseline"]:
            recordings += f" ({g['only_now']} text(s) only now, {g['only_baseline']} only before)"
        for metric, m in g["metrics"].items():
            diff = f"{float(m['diff']):+.3f} [{float(m['low']):+.3f}, {float(m['high']):+.3f}]"
            rows.append(
                [
                    case,
                    metric,
                    recordings,
                    m["a"],
                    m["b"],
                    f"{diff} {m['test']}, p={float(m['p_value']):.3g}",
                    _gate_word(m, float(g["min_effect"])),
                ]
            )
    head = ["case", "metric", "recordings", "baseline", "now", "difference [interval]", "gate"]
    return (
        "<h2 id='gate'>Against the baseline</h2><p>Each case against its stored baseline: on "
        "the same recordings every number is pinned; on new recordings a paired test over the "
        "shared texts fails only on a significant drop larger than min_effect (the interval "
        "is at 1 - alpha and comes from the same test as p).</p>" + _table(head, rows)
    )


def _flips_section(summary: Mapping[str, Any]) -> str:
    """``summary["flips"]``: one mapping per flipped text (``case``, ``example_id``,
    ``before``, ``after``, optional ``text`` (its words, shortened), ``why`` and
    ``against``); None when the run had nothing to compare with."""
    flips = summary.get("flips")
    parts = ["<h2 id='flips'>Texts that flipped against the baseline</h2>"]
    if flips is None:
        parts.append(
            "<p>This run carries no per-text baseline to compare with, so no flip can be "
            "listed.</p>"
        )
        return "".join(parts)
    if not flips:
        parts.append("<p>No text flipped.</p>")
        return "".join(parts)
    parts.append(
        "<p>Texts whose top label changed, or whose true label left or entered the top k "
        "(the baseline's ranking, then this run's).</p>"
    )
    rows = [
        [
            f.get("case", ""),
            f.get("example_id", ""),
            f.get("text", ""),
            f.get("why", ""),
            f.get("before", ""),
            f.get("after", ""),
            f.get("against", "baseline"),
        ]
        for f in flips
    ]
    head = ["case", "text id", "text", "what changed", "baseline", "now", "against"]
    parts.append(_table(head, rows))
    return "".join(parts)


def _tau_groups_section(summary: Mapping[str, Any], short: Any) -> str:
    groups = summary.get("tau_groups") or {}
    if not groups:
        return ""
    rows = [
        [
            short(g),
            v["n_pairs"],
            _num(v["mean_kendall_tau"])
            + _interval({"configs": {g: {"ci": {"t": v["ci"]}}}}, g, "t"),
        ]
        for g, v in groups.items()
    ]
    return (
        "<h3 id='tau-groups'>Rank agreement per group</h3>"
        "<p>Mean per-text Kendall tau over the config pairs of a group, with its 95% "
        "bootstrap interval over texts.</p>"
        + _table(["group", "pairs", "mean Kendall tau [interval]"], rows)
    )


def _small(v: Any) -> str:
    """A difference that may be tiny (1e-6) or large (0.4), to two significant digits."""
    return "n/a" if v is None else f"{float(v):.2g}"


def _servers_section(summary: Mapping[str, Any]) -> str:
    """The same weights on two servers: how far their scores of the same rows are apart."""
    pairs = summary.get("servers") or []
    if not pairs:
        return ""
    rows = [
        [
            p["a"],
            p["b"],
            p["batching"],
            str(p["rows"]),
            _small(p["max_abs_diff"]),
            _small(p["median_abs_diff"]),
            str(p["status_mismatches"]),
            f"{p['same_ranking']} of {p['texts']}",
            _num(p["mean_kendall_tau"]),
            p["verdict"],
        ]
        for p in pairs
    ]
    return (
        "<h2 id='servers'>Across servers</h2><p>The same model and config scored by two "
        "servers, row by row (text, label). llama.cpp's numbers depend on the batch a token "
        "is evaluated in: with one-token batches on both sides the scores must agree within "
        "the tolerance with identical rankings; with default batching the differences are "
        "measured, and the rankings show what moved.</p>"
        + _table(
            [
                "case A",
                "server B",
                "batching",
                "rows",
                "max |A-B|",
                "median |A-B|",
                "status differs",
                "same ranking (texts)",
                "mean Kendall tau",
                "verdict",
            ],
            rows,
        )
    )


def _details_section(summary: Mapping[str, Any], short: Any) -> str:
    parts = []
    tr = summary.get("transforms", {})
    if tr:
        parts.append(
            "<details><summary>Score transforms</summary><p>Spread: mean over (text, true "
            "label) of the std of its score across configs (lower is more stable). Tau: mean "
            "per-text Kendall tau over all config pairs.</p>"
            + _table(
                ["transform", "true-label spread", "mean Kendall tau", "note"],
                [
                    [k, v["true_label_spread"], v["mean_kendall_tau"], v["note"]]
                    for k, v in tr.items()
                ],
            )
            + "</details>"
        )
    for factor, pairs in summary.get("agreement", {}).items():
        if not pairs:
            continue
        rows = [
            [
                short(p["a"]),
                short(p["b"]),
                p["n_examples"],
                p["kendall_tau"],
                p["top1_agreement"],
                p["median_shift"],
                p["wasserstein"],
            ]
            for p in pairs
        ]
        parts.append(
            f"<details><summary>Agreement across {_esc(factor.replace('_', ' '))}s "
            f"({len(rows)} pairs)</summary>"
            + _table(
                [
                    "A",
                    "B",
                    "texts",
                    "Kendall tau",
                    "top-1 agreement",
                    "median shift",
                    "Wasserstein",
                ],
                rows,
            )
            + "</details>"
        )
    notes = [f"{short(c)}: {n}" for c, m in summary.get("configs", {}).items() for n in m["notes"]]
    if notes:
        parts.append(
            "<details><summary>Notes</summary><ul>"
            + "".join(f"<li>{_esc(n)}</li>" for n in notes)
            + "</ul></details>"
        )
    return "<h2 id='details'>Details</h2>" + "".join(parts) if parts else ""


def _interrupted_banner() -> str:
    return (
        '<p class="interrupted" style="background:#fdd;padding:8px;font-weight:bold">'
        "INTERRUPTED: this run stopped before it finished; the numbers below cover only "
        "what it scored. reports/latest still points at the last complete run.</p>"
    )


def render_report(
    title: str,
    summary: Mapping[str, Any],
    images: Sequence[Path],
    *,
    df: pd.DataFrame,
    outcomes: Sequence[Mapping[str, Any]] = (),
    texts: Mapping[str, str] | None = None,
    short: Any = str,
) -> str:
    """The page. ``outcomes``: one mapping per test (``case``, ``config`` or None,
    ``test``, ``outcome``, ``message``, ``failures``: [{metric, value, bound, kind}])."""
    failing = sorted(
        {
            (str(o["case"]), str(o["config"]))
            for o in outcomes
            if o["outcome"] == "failed" and o.get("config")
        }
    )
    parts = [
        f"<h1>{_esc(title)}</h1>",
        f"<p>{summary.get('n_texts', '?')} texts; generated "
        f"{time.strftime('%Y-%m-%d %H:%M')}. "
        "<a href='#verdict'>Verdict</a> · <a href='#heatmap'>Configs x metrics</a> · "
        "<a href='#worst'>Worst texts</a> · <a href='#gate'>Baseline</a> · "
        "<a href='#flips'>Flips</a> · "
        "<a href='#plots'>Plots</a></p>",
        _interrupted_banner() if summary.get("interrupted") else "",
        _verdict_section(outcomes, summary) if outcomes else "",
        _heatmap_section(summary, short),
        _worst_section(failing, summary, df, texts or {}),
        _gate_section(outcomes),
        _flips_section(summary),
        _agreement_section(summary, short),
        _tau_groups_section(summary, short),
        _servers_section(summary),
        "<h2 id='plots'>Plots</h2>",
        *(f"<p><img src='{_esc(p.name)}' alt='{_esc(p.stem)}'></p>" for p in images),
        _details_section(summary, short),
    ]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}"
        f"</title><style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
