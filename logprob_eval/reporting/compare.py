"""Compare two runs: ``logprob-eval compare A B`` and ``pytest evals --llm-compare-to DIR``.

A and B are report folders (``reports/<run-id>/`` or ``reports/latest``) or scores tables.
Per config both runs scored: every headline metric's difference B - A with a paired
interval over the shared texts and its p-value, both from one test (a paired bootstrap;
McNemar's exact test for top-1), the regression verdict of :mod:`.experiments.paired` (a
drop larger than ``min_effect`` whose interval lies below zero), and the **flipped texts**:
those whose top label changed, or whose true label left or entered the top k, each with
its words (shortened) and both rankings. Only the texts both runs scored are compared;
configs and texts present in only one run are counted and named. ``k`` is the suite's
(``[expectations.ranking] k``) and every output says which it is ("top-2").
Writes ``comparison.md`` and ``comparison.json``, both or neither.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ..experiments.metrics import ranking_metrics
from ..experiments.paired import TextOutcomes, compare_outcomes, flipped_texts
from ..experiments.table import read_scores
from ..experiments.transforms import split_content_free
from ..redact import redact

__all__ = [
    "compare_runs",
    "comparison",
    "metric_name",
    "recorded_k",
    "report_flips",
    "run_texts",
    "scores_path",
    "shorten",
    "write_comparison",
]

_NAMES = {
    "top1_acc": "top-1",
    "mrr": "MRR",
    "auc": "AUC",
    "best_f1": "best F1",
    "average_precision": "AP",
}
_LISTED = 10  # texts named per "only in" line (comparison.json lists them all)


def metric_name(metric: str, k: int) -> str:
    """A metric as the comparison names it: ``topk_acc`` is ``top-2`` for ``k = 2``."""
    return f"top-{k}" if metric == "topk_acc" else _NAMES.get(metric, metric)


def shorten(text: str, width: int = 60) -> str:
    """``text`` on one line, cut at a word boundary to at most ``width`` characters."""
    flat = " ".join(str(text).split())
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    if flat[width - 1] != " " and " " in cut[width // 2 :]:  # a word is cut: drop it
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.") + "…"


def scores_path(path: Path) -> Path:
    """The scores table of a report folder (or the table itself)."""
    if path.is_dir():
        table = path / "scores.csv"
        if not table.is_file():
            raise ConfigError(
                f"{path} holds no scores.csv; pass a report folder (reports/<run-id>/ or "
                "reports/latest) or a scores table"
            )
        return table
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; pass a report folder or a scores table")
    return path


def run_texts(path: Path) -> dict[str, str]:
    """The texts a report folder names (its ``outcomes.csv``'s ``text`` column), by id;
    empty for a scores table or a folder written without them."""
    table = path / "outcomes.csv" if path.is_dir() else None
    if table is None or not table.is_file():
        return {}
    try:
        rows = pd.read_csv(table, dtype=str, keep_default_na=False)
    except (OSError, ValueError):
        return {}
    if "text" not in rows or "example_id" not in rows:
        return {}
    return dict(zip(rows["example_id"], rows["text"], strict=True))


def recorded_k(path: Path) -> set[int]:
    """The ``k`` a report folder's ``metrics.json`` was computed with (empty if unknown)."""
    metrics = path / "metrics.json" if path.is_dir() else None
    if metrics is None or not metrics.is_file():
        return set()
    try:
        configs = json.loads(metrics.read_text(encoding="utf-8")).get("configs", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return {int(c["k"]) for c in configs.values() if isinstance(c, dict) and "k" in c}


def _outcomes(df: Any, k: int) -> dict[str, TextOutcomes]:
    real, _ = split_content_free(df)
    out = {}
    for cfg in sorted(real["config"].unique()):
        m = ranking_metrics(real, cfg, k=k, intervals=False)
        if m.per_text:
            out[cfg] = TextOutcomes.from_per_text(m.labels, m.per_text, k)
    return out


def comparison(
    a: Path | pd.DataFrame,
    b: Path | pd.DataFrame,
    *,
    k: int = 3,
    k_from: str = "",
    alpha: float = 0.05,
    min_effect: float = 0.02,
    seed: int = 0,
    texts: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The comparison of run ``b`` against run ``a`` as plain data (a run: its report
    folder, its scores table, or the table already read, named "this run"). ``k``: the
    suite's top-k (``k_from`` says where it came from); ``texts``: the words of the texts
    by id, shown beside the flipped ones (a report folder's own are added)."""
    words: dict[str, str] = {}
    for run in (a, b):
        if not isinstance(run, pd.DataFrame):
            words.update(run_texts(Path(run)))
    words.update(texts or {})
    runs = [
        _outcomes(p if isinstance(p, pd.DataFrame) else read_scores(scores_path(p)), k)
        for p in (a, b)
    ]
    configs: dict[str, Any] = {}
    for cfg in sorted(set(runs[0]) & set(runs[1])):
        oa, ob = runs[0][cfg], runs[1][cfg]
        comps, shared, only_a, only_b = compare_outcomes(
            oa, ob, alpha=alpha, min_effect=min_effect, seed=seed
        )
        if not shared:  # nothing to compare: no numbers, not NaNs
            comps = {}
        configs[cfg] = {
            "n_shared": len(shared),
            "metrics": {m: c.as_dict() for m, c in comps.items()},
            "regressions": [m for m, c in comps.items() if c.regression],
            "flipped": [
                {**f, "text": words.get(str(f["example_id"]))} for f in flipped_texts(oa, ob)
            ],
            "only_a": only_a,
            "only_b": only_b,
        }
    return {
        "a": "this run" if isinstance(a, pd.DataFrame) else str(a),
        "b": "this run" if isinstance(b, pd.DataFrame) else str(b),
        "k": k,
        "k_from": k_from,
        "alpha": alpha,
        "min_effect": min_effect,
        "seed": seed,
        "configs": configs,
        "configs_only_a": sorted(set(runs[0]) - set(runs[1])),
        "configs_only_b": sorted(set(runs[1]) - set(runs[0])),
    }


def _fmt_ranking(ranking: list[tuple[str, float]], n: int = 3) -> str:
    return ", ".join(f"{lb} {s:.2f}" if math.isfinite(s) else f"{lb} -inf" for lb, s in ranking[:n])


def _named(ids: list[str]) -> str:
    shown = ", ".join(f"`{e}`" for e in ids[:_LISTED])
    more = f", ... ({len(ids) - _LISTED} more in comparison.json)" if len(ids) > _LISTED else ""
    return shown + more


def _flip_line(f: dict[str, Any]) -> str:
    words = f' "{shorten(f["text"])}"' if f.get("text") else ""
    return (
        f"- `{f['example_id']}`{words} (true: {', '.join(f['true'])}): {f['why']}  \n"
        f"  A: {_fmt_ranking(f['ranking_a'])}  \n  B: {_fmt_ranking(f['ranking_b'])}"
    )


def to_markdown(result: dict[str, Any], *, max_flipped: int = 15) -> str:
    a, b, k = result["a"], result["b"], result["k"]
    level = f"{(1 - result['alpha']) * 100:g}%"
    k_from = f": {result['k_from']}" if result.get("k_from") else ""
    lines = [
        "# Run comparison",
        "",
        f"A: `{a}`  ",
        f"B: `{b}`",
        "",
        f"Differences are B - A over the texts both runs scored, each with its {level} "
        "interval and p-value from one test, so the interval excludes 0 exactly when p < "
        f"{result['alpha']}: a paired bootstrap (the same resampled texts in both runs), and "
        "for top-1 McNemar's exact test on the texts that flipped. A **regression** is a "
        f"drop larger than {result['min_effect']} whose interval lies below 0. "
        f"top-{k} counts a true label among the {k} best labels (k = {k}{k_from}).",
        "",
    ]
    for cfg, c in result["configs"].items():
        only = [
            f"{len(c[f'only_{side}'])} only in {side.upper()}"
            for side in ("a", "b")
            if c[f"only_{side}"]
        ]
        counted = f"{c['n_shared']} shared texts" + (f" ({', '.join(only)})" if only else "")
        if not c["n_shared"]:
            lines += [f"## {cfg}", "", f"{counted}: no text to compare", ""]
        else:
            verdict = ", ".join(metric_name(m, k) for m in c["regressions"]) or "none"
            lines += [f"## {cfg}", "", f"{counted}; regressions: {verdict}", ""]
            lines += ["| metric | A | B | B - A [interval] | p (test) |", "|---|---|---|---|---|"]
            for m, r in c["metrics"].items():
                extra = (
                    f"; {r['mcnemar']['lost']} lost, {r['mcnemar']['gained']} gained"
                    if "mcnemar" in r
                    else ""
                )
                flag = " **regression**" if r["regression"] else ""
                lines.append(
                    f"| {metric_name(m, k)} | {r['a']:.3f} | {r['b']:.3f} | {r['diff']:+.3f} "
                    f"[{r['low']:+.3f}, {r['high']:+.3f}]{flag} | {r['p_value']:.3g} "
                    f"({r['test']}{extra}) |"
                )
            flipped = c["flipped"]
            lines += ["", f"Flipped texts: {len(flipped)}", ""]
            lines += [_flip_line(f) for f in flipped[:max_flipped]]
            if len(flipped) > max_flipped:
                lines.append(f"- ... {len(flipped) - max_flipped} more in comparison.json")
        for side in ("a", "b"):
            ids = c[f"only_{side}"]
            if ids:
                lines.append(
                    f"\nTexts only in {side.upper()} ({len(ids)}, not compared): {_named(ids)}"
                )
        lines.append("")
    for side in ("a", "b"):
        only = result[f"configs_only_{side}"]
        if only:
            lines += [f"Configs only in {side.upper()}: " + ", ".join(f"`{x}`" for x in only), ""]
    return "\n".join(lines)


def write_comparison(result: dict[str, Any], out: Path) -> Path:
    """Write ``comparison.md`` and ``comparison.json`` into ``out``; returns the .md. Both
    are rendered before either is written: a failure leaves neither."""
    out = Path(out)
    data = redact(json.dumps(result, indent=1, default=str))
    page = redact(to_markdown(result))
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(data, encoding="utf-8")
    md = out / "comparison.md"
    md.write_text(page, encoding="utf-8")
    return md


def compare_runs(a: Path, b: Path, *, out: Path, **options: Any) -> Path:
    """Compare, write ``comparison.md`` and ``comparison.json`` into ``out``; returns the .md."""
    return write_comparison(comparison(Path(a), Path(b), **options), out)


def report_flips(
    flipped: list[dict[str, Any]],
    case: str,
    against: str,
    n: int = 3,
    texts: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Flipped texts (:func:`~.experiments.paired.flipped_texts`) as the report's flips
    section lists them: the text's words (shortened; from ``texts`` by id, else the flip's
    own), both rankings' first ``n`` labels."""
    return [
        {
            "case": case,
            "example_id": f["example_id"],
            "text": shorten(words)
            if (words := (texts or {}).get(str(f["example_id"])) or f.get("text"))
            else "",
            "why": f["why"],
            "before": _fmt_ranking(f["ranking_a"], n),
            "after": _fmt_ranking(f["ranking_b"], n),
            "against": against,
        }
        for f in flipped
    ]
