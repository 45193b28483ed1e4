"""The straightforward implementation of the matcher's semantics, kept as an oracle.

logprob_eval.matcher is an indexed rewrite of this code (for speed);
test_matcher_reference.py checks with hypothesis that both give the same scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from logprob_eval.matcher import _QUOTES, _TAIL, SEPARATOR_PATTERN
from logprob_eval.parsing import parse_positions
from logprob_eval.records import LabelScore, PathStep, Position, Status, logsumexp


@dataclass(frozen=True, slots=True)
class _Alt:
    raw: str
    first: str  # normalised as the first token of a label (whitespace/quotes stripped)
    inner: str  # normalised as a later token (case only)
    logprob: float
    sampled: bool


@dataclass(frozen=True, slots=True)
class _Contribution:
    logprob: float
    status: Status
    path: tuple[PathStep, ...]


class _Prepared:
    """Positions normalised once, shared by every label."""

    __slots__ = ("alts", "min_listed", "n", "starts")

    def __init__(
        self,
        positions: Sequence[Position],
        *,
        strip_whitespace: bool,
        casefold: bool,
        strip_quotes: bool,
        multi_label: bool,
    ) -> None:
        def inner(tok: str) -> str:
            return tok.casefold() if casefold else tok

        def first(tok: str) -> str:
            tok = inner(tok)
            if strip_whitespace:
                tok = tok.lstrip()
            if strip_quotes:
                tok = tok.lstrip(_QUOTES)
                if strip_whitespace:
                    tok = tok.lstrip()
            return tok

        self.n = len(positions)
        self.alts: list[tuple[_Alt, ...]] = []
        self.min_listed: list[float] = []
        for pos in positions:
            alts = pos.alternatives
            self.alts.append(
                tuple(
                    _Alt(a.token, first(a.token), inner(a.token), a.logprob, j == 0)
                    for j, a in enumerate(alts)
                )
            )
            self.min_listed.append(min(a.logprob for a in alts))
        self.starts: list[int] = []
        tail = ""
        for i, pos in enumerate(positions):
            # a start right after a blank (whitespace- or quote-only) start token is
            # covered by walking through that token from the earlier start
            after_blank_start = (
                bool(self.starts) and self.starts[-1] == i - 1 and (self.alts[i - 1][0].first == "")
            )
            if (i == 0 or (multi_label and SEPARATOR_PATTERN.search(tail))) and not (
                after_blank_start
            ):
                self.starts.append(i)
            tail = (tail + pos.token)[-_TAIL:]


def _classify(tok: str, remaining: str) -> str | None:
    """``complete``, ``prefix`` or None for a normalised token against the rest of a label."""
    if not tok:
        return None
    if tok.startswith(remaining):
        extra = tok[len(remaining) :]
        if not any(c.isalnum() for c in extra):
            return "complete"
        return None
    if remaining.startswith(tok):
        return "prefix"
    return None


def _walk(prep: _Prepared, start: int, target: str) -> list[_Contribution]:
    """All disjoint contributions for ``target`` starting at ``start`` (empty: no match)."""
    out: list[_Contribution] = []
    acc = 0.0
    path: tuple[PathStep, ...] = ()
    remaining = target
    i = start
    first = True  # the next token begins the label: leading blanks are normalised away
    while i < prep.n:
        follow: _Alt | None = None
        matched_here = False
        for alt in prep.alts[i]:
            kind = _classify(alt.first if first else alt.inner, remaining)
            if kind is None:
                continue
            matched_here = True
            step = (PathStep(i, alt.raw, alt.logprob, alt.sampled),)
            if kind == "complete":
                out.append(_Contribution(acc + alt.logprob, "exact", path + step))
            elif alt.sampled:
                follow = alt
            else:
                out.append(_Contribution(acc + alt.logprob, "upper_bound", path + step))
        sampled = prep.alts[i][0]
        if follow is None and first and sampled.first == "":
            follow = sampled  # a blank sampled token before the label: walk through it
        elif follow is None:
            if not matched_here and remaining != target:
                # diverged inside the label and its next token is not listed here
                out.append(_Contribution(acc + prep.min_listed[i], "upper_bound", path))
            return out
        else:
            remaining = remaining[len(follow.first if first else follow.inner) :]
            first = False
        acc += follow.logprob
        path = (*path, PathStep(i, follow.raw, follow.logprob, True))
        i += 1
    if remaining != target:
        # the answer ended with the label still incomplete: the path so far bounds it
        out.append(_Contribution(acc, "upper_bound", path))
    return out


def _combine(label: str, start: int, parts: list[_Contribution]) -> LabelScore:
    value = min(0.0, logsumexp(c.logprob for c in parts))
    status: Status = "exact" if all(c.status == "exact" for c in parts) else "upper_bound"
    best = max(parts, key=lambda c: c.logprob)
    variants = tuple(dict.fromkeys("".join(s.token for s in c.path) for c in parts))
    note = "" if start == 0 else f"conditional on the {start} token(s) generated before it"
    return LabelScore(label, value, status, "generation", best.path, start, variants, note)


def _score(prep: _Prepared, label: str, target: str) -> LabelScore:
    if prep.n == 0:
        return LabelScore(label, -math.inf, "missing", "generation", note="no generated positions")
    best: LabelScore | None = None
    for start in prep.starts:
        parts = _walk(prep, start, target)
        if not parts:
            continue
        cand = _combine(label, start, parts)
        if (
            best is None
            or cand.logprob > best.logprob
            or (cand.logprob == best.logprob and cand.status == "exact" != best.status)
        ):
            best = cand
    if best is not None:
        return best
    first = prep.starts[0]
    return LabelScore(
        label,
        prep.min_listed[first],
        "upper_bound",
        "generation",
        start=first,
        note=f"not among the {len(prep.alts[first])} listed tokens at position {first}",
    )


def reference_match(
    labels: Sequence[str],
    positions: Any,
    *,
    strip_whitespace: bool = True,
    casefold: bool = False,
    strip_quotes: bool = False,
    multi_label: bool = True,
) -> dict[str, LabelScore]:
    prep = _Prepared(
        parse_positions(positions),
        strip_whitespace=strip_whitespace,
        casefold=casefold,
        strip_quotes=strip_quotes,
        multi_label=multi_label,
    )
    out = {}
    for label in labels:
        target = label.strip().casefold() if casefold else label.strip()
        out[label] = _score(prep, label, target)
    return out
