"""Stored baselines, and the gate that tells a code change from a data change.

A baseline (``evals/baselines/<case>.json``) holds the case's headline metrics, its per-text
outcomes (every label's score, the true labels, reciprocal rank, top-1 / top-k hit, AUC) and
a digest of the recordings it was computed from (:func:`recordings_digest`).

The gate (:func:`gate`):

* **same recordings** (equal digests): the numbers are a deterministic function of the
  recordings, so any difference, in either direction, in a metric or a text's outcome is a
  change in the code that computes them. Fails with the metric, both values and the
  command that accepts the change;
* **new recordings** (the prompt, the model or the data changed and the case was
  re-recorded): a paired test over the shared texts (:mod:`..experiments.paired`); fails
  only on a drop larger than ``min_effect`` whose ``1 - alpha`` interval lies below zero.
  The interval and the p-value in the message come from that one test (a paired bootstrap;
  McNemar's exact test for top-1), so the interval excludes zero exactly when
  ``p < alpha``.

Pytest-free: :func:`check_baseline` in :mod:`.checks` raises the ``AssertionError``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from ..errors import ConfigError
from ..experiments.paired import GATED_METRICS, MetricComparison, TextOutcomes, compare_outcomes
from .config import suite_arg

__all__ = [
    "FORMAT",
    "Baseline",
    "GateResult",
    "gate",
    "load_baseline",
    "recordings_digest",
    "update_command",
    "write_baseline",
]

FORMAT = 2
_PIN_TOL = 1e-9  # float noise only: the same recordings give the same numbers
_PER_TEXT_FIELDS = ("best_true_rank", "top1", "topk", "rr", "auc", "top_label", "scores")


def update_command(case: str, baseline_dir: Path | None = None) -> str:
    """The command that rebuilds ``case``'s baseline (the suite is the folder holding
    ``baseline_dir``; default ``evals``)."""
    suite = suite_arg(baseline_dir.parent) if baseline_dir is not None else "evals"
    return f"pytest {suite} -k {case} --update-baselines"


def recordings_digest(paths: Iterable[Path]) -> str | None:
    """sha256 over the recorded interactions of these cassettes (canonical JSON, so a
    re-indented file keeps its digest); None when none exists."""
    h = hashlib.sha256()
    found = False
    for p in sorted(paths):
        if not p.is_file():
            continue
        found = True
        h.update(p.name.encode())
        with p.open(encoding="utf-8") as fh:
            _hash_interactions(h, fh)
    return f"sha256:{h.hexdigest()}" if found else None


def _hash_interactions(h: Any, fh: TextIO) -> None:
    """Feed ``json.dumps(interactions, sort_keys=True)`` to ``h``, one interaction at a time
    (the text of a list is its items' texts joined by ``", "`` in brackets): a large
    cassette is never held parsed as a whole."""
    from .cassette_reader import read_interactions

    h.update(b"[")
    for i, it in enumerate(read_interactions(fh)):
        h.update(b", " if i else b"")
        h.update(json.dumps(it, sort_keys=True).encode())
    h.update(b"]")


def _enc(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no inf/NaN: -inf scores and undefined AUCs are null
    if isinstance(v, list):
        return [_enc(x) for x in v]
    return v


@dataclass(frozen=True)
class Baseline:
    """One case's metrics, per-text outcomes and recordings digest."""

    case: str
    digest: str | None
    k: int
    metrics: dict[str, float]
    labels: list[str]
    per_text: dict[str, dict[str, Any]] = field(repr=False)

    def outcomes(self) -> TextOutcomes:
        return TextOutcomes.from_per_text(self.labels, self.per_text, self.k)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "case": self.case,
            "recordings": self.digest,
            "k": self.k,
            "metrics": {m: _enc(float(v)) for m, v in sorted(self.metrics.items())},
            "labels": self.labels,
            "per_text": {
                e: {f: _enc(o[f]) for f in (*_PER_TEXT_FIELDS, "true") if f in o}
                for e, o in sorted(self.per_text.items())
            },
        }


def write_baseline(path: Path, baseline: Baseline) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    data = baseline.as_json()
    per_text = data.pop("per_text")
    head = json.dumps(data, indent=1)[:-2]  # one key per line; each text's outcome on one line
    texts = ",\n".join(f"  {json.dumps(e)}: {json.dumps(o)}" for e, o in per_text.items())
    tmp.write_text(f'{head},\n "per_text": {{\n{texts}\n }}\n}}\n')
    tmp.replace(path)


def load_baseline(path: Path) -> Baseline:
    """Read a baseline; an older format is a ``ConfigError`` saying how to rebuild it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"baseline {path} cannot be read ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(
            f"baseline {path.name} is in an older format without per-text outcomes; "
            f"rebuild it with `{update_command(path.stem, path.parent)}`"
        )
    metrics = {m: math.nan if v is None else float(v) for m, v in data["metrics"].items()}
    return Baseline(
        data["case"], data["recordings"], int(data["k"]), metrics, data["labels"], data["per_text"]
    )


@dataclass
class GateResult:
    mode: Literal["same recordings", "new recordings"]
    failures: list[str]
    lines: list[str]  # what was compared, one line per metric
    comparisons: dict[str, MetricComparison] = field(default_factory=dict)
    only_baseline: list[str] = field(default_factory=list)
    only_now: list[str] = field(default_factory=list)
    # what the run's report shows of the failures: {"metric", "value", "bound", "kind"}
    structured: list[dict[str, Any]] = field(default_factory=list)
    alpha: float = 0.05
    min_effect: float = 0.02

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        """What the report shows of the comparison (texts in one run only as counts: at
        10,000 texts their ids would outweigh the rest)."""
        return {
            "mode": self.mode,
            "passed": self.passed,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "metrics": {m: c.as_dict() for m, c in self.comparisons.items()},
            "only_baseline": len(self.only_baseline),
            "only_now": len(self.only_now),
        }


def _differs(a: Any, b: Any) -> bool:
    """Whether two stored values differ beyond float noise (NaN equals NaN)."""
    if isinstance(a, list) or isinstance(b, list):
        if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
            return True
        return any(_differs(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) != math.isnan(fb)
        return fa != fb and abs(fa - fb) > _PIN_TOL
    return bool(a != b)


def _failure(metric: str, value: Any, bound: Any) -> dict[str, Any]:
    return {"metric": metric, "value": value, "bound": bound, "kind": "baseline"}


def _pin(now: Baseline, base: Baseline) -> GateResult:
    failures, lines = [], []
    structured = []
    for m in sorted(set(base.metrics) | set(now.metrics)):
        a, b = base.metrics.get(m, math.nan), now.metrics.get(m, math.nan)
        if _differs(a, b):
            failures.append(f"  {m}: {b:.6f} now, {a:.6f} in the baseline ({b - a:+.6f})")
            structured.append(_failure(m, b, a))
        lines.append(f"  {m}: {b:.6f} (baseline {a:.6f})")
    texts = []
    for e in sorted(set(base.per_text) | set(now.per_text)):
        old, new = base.per_text.get(e), now.per_text.get(e)
        if old is None or new is None:
            texts.append(f"    {e}: {'only now' if old is None else 'only in the baseline'}")
            continue
        fields = [f for f in _PER_TEXT_FIELDS if _differs(_enc(old.get(f)), _enc(new.get(f)))]
        if fields:
            shown = ", ".join(f"{f} {old.get(f)!r} -> {new.get(f)!r}" for f in fields[:2])
            texts.append(f"    {e}: {shown}"[:200])
    if texts:
        failures.append(
            f"  per-text outcomes differ on {len(texts)} text(s):\n" + "\n".join(texts[:5])
        )
        structured.append(_failure("per-text outcomes", f"{len(texts)} text(s) differ", None))
    return GateResult("same recordings", failures, lines, structured=structured)


def gate(
    now: Baseline, base: Baseline, *, alpha: float = 0.05, min_effect: float = 0.02, seed: int = 0
) -> GateResult:
    """Compare this run of a case with its baseline (module doc)."""
    if now.digest is not None and now.digest == base.digest:
        return _pin(now, base)
    comps, shared, only_a, only_b = compare_outcomes(
        base.outcomes(),
        now.outcomes(),
        alpha=alpha,
        min_effect=min_effect,
        seed=seed,
        metrics=[m for m in GATED_METRICS if m in base.metrics],
    )
    failures, lines = [], []
    structured = []
    level = f"{(1 - alpha) * 100:g}%"
    for m, c in comps.items():
        r = c.result
        flips = f"; {c.mcnemar[0]} lost, {c.mcnemar[1]} gained" if c.mcnemar else ""
        line = (
            f"  {m}: {r.b:.3f} now, {r.a:.3f} in the baseline, diff {r.diff:+.3f} "
            f"[{r.low:+.3f}, {r.high:+.3f}] ({level} {r.test}, p={r.p_value:.3g}{flips})"
        )
        lines.append(line)
        if c.regression:
            failures.append(line + f": a significant drop larger than {min_effect}")
            structured.append(_failure(m, r.b, r.a))
    result = GateResult(
        "new recordings", failures, lines, comps, only_a, only_b, structured, alpha, min_effect
    )
    if not shared:
        result.failures.append("  no text in common with the baseline: nothing can be compared")
        result.structured.append(_failure("shared texts", 0, None))
    return result
