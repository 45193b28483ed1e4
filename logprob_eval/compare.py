"""Compare two runs: ``logprob-eval compare A B`` and ``pytest evals --llm-compare-to DIR``.

A and B are report folders (``reports/<run-id>/`` or ``reports/latest``) or scores tables.
Per config both runs scored: every headline metric's difference B - A with a paired
bootstrap interval over the shared texts and a p-value (McNemar's exact test for top-1),
the regression verdict of :mod:`.experiments.paired` (a drop larger than ``min_effect``
that is significant at ``alpha``), and the **flipped texts**: those whose top label changed,
or whose true label left or entered the top k, each with both rankings. Configs and texts
present in only one run are listed. Writes ``comparison.md`` and ``comparison.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ConfigError
from .experiments.metrics import ranking_metrics
from .experiments.paired import TextOutcomes, compare_outcomes, flipped_texts
from .experiments.table import read_scores
from .experiments.transforms import split_content_free
from .redact import redact

__all__ = ["compare_runs", "comparison", "report_flips", "scores_path", "write_comparison"]

_NAMES = {
    "top1_acc": "top-1",
    "topk_acc": "top-k",
    "mrr": "MRR",
    "auc": "AUC",
    "best_f1": "best F1",
    "average_precision": "AP",
}


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
    alpha: float = 0.05,
    min_effect: float = 0.02,
    seed: int = 0,
) -> dict[str, Any]:
    """The comparison of run ``b`` against run ``a`` as plain data (a run: its report
    folder, its scores table, or the table already read, named "this run")."""
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
        configs[cfg] = {
            "n_shared": len(shared),
            "metrics": {m: c.as_dict() for m, c in comps.items()},
            "regressions": [m for m, c in comps.items() if c.regression],
            "flipped": flipped_texts(oa, ob),
            "only_a": only_a,
            "only_b": only_b,
        }
    return {
        "a": "this run" if isinstance(a, pd.DataFrame) else str(a),
        "b": "this run" if isinstance(b, pd.DataFrame) else str(b),
        "k": k,
        "alpha": alpha,
        "min_effect": min_effect,
        "seed": seed,
        "configs": configs,
        "configs_only_a": sorted(set(runs[0]) - set(runs[1])),
        "configs_only_b": sorted(set(runs[1]) - set(runs[0])),
    }


def _fmt_ranking(ranking: list[tuple[str, float]], n: int = 3) -> str:
    return ", ".join(f"{lb} {s:.2f}" if math.isfinite(s) else f"{lb} -inf" for lb, s in ranking[:n])


def to_markdown(result: dict[str, Any], *, max_flipped: int = 15) -> str:
    a, b = result["a"], result["b"]
    lines = [
        "# Run comparison",
        "",
        f"A: `{a}`  ",
        f"B: `{b}`",
        "",
        f"Differences are B - A over the texts both runs scored, with {1 - result['alpha']:.0%} "
        "paired bootstrap intervals (the same resampled texts in both runs) and p-values "
        "(top-1: McNemar's exact test on the texts that flipped). A **regression** is a drop "
        f"larger than {result['min_effect']} that is significant at {result['alpha']}.",
        "",
    ]
    for cfg, c in result["configs"].items():
        verdict = ", ".join(_NAMES[m] for m in c["regressions"]) or "none"
        lines += [f"## {cfg}", "", f"{c['n_shared']} shared texts; regressions: {verdict}", ""]
        lines += ["| metric | A | B | B - A [interval] | p |", "|---|---|---|---|---|"]
        for m, r in c["metrics"].items():
            p = r["mcnemar"]["p_value"] if "mcnemar" in r else r["p_value"]
            extra = (
                f" ({r['mcnemar']['lost']} lost, {r['mcnemar']['gained']} gained)"
                if "mcnemar" in r
                else ""
            )
            flag = " **regression**" if r["regression"] else ""
            lines.append(
                f"| {_NAMES[m]} | {r['a']:.3f} | {r['b']:.3f} | {r['diff']:+.3f} "
                f"[{r['low']:+.3f}, {r['high']:+.3f}]{flag} | {p:.3g}{extra} |"
            )
        flipped = c["flipped"]
        lines += ["", f"Flipped texts: {len(flipped)}", ""]
        for f in flipped[:max_flipped]:
            lines.append(
                f"- `{f['example_id']}` (true: {', '.join(f['true'])}): {f['why']}  \n"
                f"  A: {_fmt_ranking(f['ranking_a'])}  \n  B: {_fmt_ranking(f['ranking_b'])}"
            )
        if len(flipped) > max_flipped:
            lines.append(f"- ... {len(flipped) - max_flipped} more in comparison.json")
        for side in ("a", "b"):
            if c[f"only_{side}"]:
                lines.append(f"\nTexts only in {side.upper()}: {', '.join(c[f'only_{side}'])}")
        lines.append("")
    for side in ("a", "b"):
        only = result[f"configs_only_{side}"]
        if only:
            lines += [f"Configs only in {side.upper()}: " + ", ".join(f"`{x}`" for x in only), ""]
    return "\n".join(lines)


def write_comparison(result: dict[str, Any], out: Path) -> Path:
    """Write ``comparison.md`` and ``comparison.json`` into ``out``; returns the .md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(redact(json.dumps(result, indent=1, default=str)))
    md = out / "comparison.md"
    md.write_text(redact(to_markdown(result)), encoding="utf-8")
    return md


def compare_runs(a: Path, b: Path, *, out: Path, **options: Any) -> Path:
    """Compare, write ``comparison.md`` and ``comparison.json`` into ``out``; returns the .md."""
    return write_comparison(comparison(Path(a), Path(b), **options), out)


def report_flips(
    flipped: list[dict[str, Any]], case: str, against: str, n: int = 3
) -> list[dict[str, Any]]:
    """Flipped texts (:func:`~.experiments.paired.flipped_texts`) as the report's flips
    section lists them: both rankings' first ``n`` labels."""
    return [
        {
            "case": case,
            "example_id": f["example_id"],
            "why": f["why"],
            "before": _fmt_ranking(f["ranking_a"], n),
            "after": _fmt_ranking(f["ranking_b"], n),
            "against": against,
        }
        for f in flipped
    ]
