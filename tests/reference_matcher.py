"""A second, independent implementation of the matcher's semantics, kept as an oracle.

It decodes nothing lazily, walks recursively and keeps every token as bytes from the start,
and it computes the unlisted-token bound itself (:func:`rule_bound`, the rule as the README
states it) rather than asking :mod:`logprob_eval.scoring.records`; test_matcher_reference.py checks
with hypothesis that it and logprob_eval.scoring.matcher give the same scores (value, lower end,
status, start, path and variants).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from logprob_eval.scoring.matcher import _QUOTES, _TAIL, SEPARATOR_PATTERN
from logprob_eval.scoring.parsing import parse_positions
from logprob_eval.scoring.records import (
    Alternative,
    LabelScore,
    PathStep,
    Position,
    Status,
    logsumexp,
)
from logprob_eval.scoring.token_bytes import token_bytes


@dataclass(frozen=True, slots=True)
class _Alt:
    raw: str
    first: bytes  # normalised as the first token of a label (whitespace/quotes stripped)
    inner: bytes  # normalised as a later token (case only)
    logprob: float
    sampled: bool


@dataclass(frozen=True, slots=True)
class _Contribution:
    logprob: float
    status: Status
    path: tuple[PathStep, ...]


class _Prepared:
    """Positions normalised once, shared by every label."""

    __slots__ = ("alts", "bound", "n", "starts")

    def __init__(
        self,
        positions: Sequence[Position],
        *,
        strip_whitespace: bool,
        casefold: bool,
        strip_quotes: bool,
        multi_label: bool,
    ) -> None:
        def text(raw: bytes) -> str:
            return raw.decode("utf-8", "surrogateescape")

        def inner(raw: bytes) -> bytes:
            tok = text(raw).casefold() if casefold else text(raw)
            return tok.encode("utf-8", "surrogateescape")

        def first(raw: bytes) -> bytes:
            tok = text(inner(raw))
            if strip_whitespace:
                tok = tok.lstrip()
            if strip_quotes:
                tok = tok.lstrip(_QUOTES)
                if strip_whitespace:
                    tok = tok.lstrip()
            return tok.encode("utf-8", "surrogateescape")

        self.n = len(positions)
        self.alts: list[tuple[_Alt, ...]] = []
        self.bound: list[float] = []
        for pos in positions:
            listed = _listed(pos)
            raws = [token_bytes(a.token, a.bytes) for a in listed]
            self.alts.append(
                tuple(
                    _Alt(a.token, first(r), inner(r), a.logprob, j == 0)
                    for j, (a, r) in enumerate(zip(listed, raws, strict=True))
                )
            )
            self.bound.append(rule_bound(pos))
        self.starts: list[int] = []
        tail = ""
        for i, pos in enumerate(positions):
            # a start right after a blank (whitespace- or quote-only) start token is
            # covered by walking through that token from the earlier start
            after_blank_start = (
                bool(self.starts)
                and self.starts[-1] == i - 1
                and (self.alts[i - 1][0].first == b"")
            )
            if (i == 0 or (multi_label and SEPARATOR_PATTERN.search(tail))) and not (
                after_blank_start
            ):
                self.starts.append(i)
            tail = (tail + token_bytes(pos.token, pos.bytes).decode("utf-8", "replace"))[-_TAIL:]


def _is_sampled(pos: Position, a: Alternative) -> bool:
    """A listed entry that is the sampled token again: same text, same bytes where both
    are given, log-prob within 1e-3."""
    same_bytes = a.bytes is None or pos.bytes is None or a.bytes == pos.bytes
    return a.token == pos.token and abs(a.logprob - pos.logprob) <= 1e-3 and same_bytes


def _listed(pos: Position) -> list[Alternative]:
    """The sampled token, then every real listed entry that is not it, each token once
    (entries at -inf are sentinel padding, no listed tokens)."""
    out = [Alternative(pos.token, pos.logprob, pos.bytes)]
    for a in pos.top_logprobs:
        if a.logprob == -math.inf or _is_sampled(pos, a):
            continue
        if all((a.token, a.logprob, a.bytes) != (b.token, b.logprob, b.bytes) for b in out):
            out.append(a)
    return out


def rule_bound(pos: Position) -> float:
    """The unlisted-token bound, written again from the rule (README, Scoring semantics).

    Entries at -inf (sentinels: -9999 or lower) pad the list and are left out. The floor is
    the smallest real entry, without a sampled token listed strictly below all the others
    (it may be an appended extra). The listed mass (distinct tokens, the sampled one
    included) leaves 1 - mass over; 1e-5 or less (float noise), or a mass of 1 or more,
    leaves nothing known, and the floor alone bounds (0.0 with no real entry).
    """
    real = [a for a in pos.top_logprobs if a.logprob > -math.inf]
    others = [a for a in real if not _is_sampled(pos, a)]
    appended = len(others) < len(real) and others and all(pos.logprob < a.logprob for a in others)
    top_k = [a.logprob for a in (others if appended or len(others) == len(real) else real)]
    mass = math.fsum(math.exp(a.logprob) for a in _listed(pos))
    floor = min(top_k, default=0.0)
    if 1.0 - mass <= 1e-5:
        return floor
    return min(math.log(1.0 - mass), floor)


def _classify(tok: bytes, remaining: bytes) -> str | None:
    """``complete``, ``prefix``, ``open`` (the rest of the label, then bytes that are no
    whole character) or None for a normalised token against the rest of a label."""
    if not tok:
        return None
    if tok.startswith(remaining):
        try:
            extra = tok[len(remaining) :].decode("utf-8")
        except UnicodeDecodeError:
            return "open"
        return None if any(c.isalnum() for c in extra) else "complete"
    if remaining.startswith(tok):
        return "prefix"
    return None


def _from(
    prep: _Prepared,
    i: int,
    target: bytes,
    remaining: bytes,
    first: bool,
    acc: float,
    path: tuple[PathStep, ...],
) -> list[_Contribution]:
    """The contributions of the walk at position ``i`` on, ``remaining`` still to spell."""
    if i == prep.n:  # the answer ended: an incomplete label is bounded by its path so far
        return [] if remaining == target else [_Contribution(acc, "upper_bound", path)]
    out: list[_Contribution] = []
    follow: _Alt | None = None
    for alt in prep.alts[i]:
        kind = _classify(alt.first if first else alt.inner, remaining)
        step = (*path, PathStep(i, alt.raw, alt.logprob, alt.sampled))
        if kind == "complete":
            out.append(_Contribution(acc + alt.logprob, "exact", step))
        elif kind == "prefix" and alt.sampled:
            follow = alt
        elif kind in ("prefix", "open"):  # off the sampled path, or maybe no label at all
            out.append(_Contribution(acc + alt.logprob, "upper_bound", step))
    sampled = prep.alts[i][0]
    step = (*path, PathStep(i, sampled.raw, sampled.logprob, True))
    if follow is not None:
        rest = remaining[len(follow.first if first else follow.inner) :]
        return out + _from(prep, i + 1, target, rest, False, acc + follow.logprob, step)
    if first and sampled.first == b"":  # a blank sampled token before the label
        return out + _from(prep, i + 1, target, remaining, True, acc + sampled.logprob, step)
    if not out and remaining != target:  # diverged inside the label, next token unlisted
        out.append(_Contribution(acc + prep.bound[i], "upper_bound", path))
    return out


def _walk(prep: _Prepared, start: int, target: bytes) -> list[_Contribution]:
    """All disjoint contributions for ``target`` starting at ``start`` (empty: no match)."""
    return _from(prep, start, target, target, True, 0.0, ())


def _combine(label: str, start: int, parts: list[_Contribution]) -> LabelScore:
    value = min(0.0, logsumexp(c.logprob for c in parts))
    status: Status = "exact" if all(c.status == "exact" for c in parts) else "upper_bound"
    exact_parts = [c.logprob for c in parts if c.status == "exact"]
    lower = value if status == "exact" else min(value, logsumexp(exact_parts))
    best = max(parts, key=lambda c: c.logprob)
    variants = tuple(dict.fromkeys("".join(s.token for s in c.path) for c in parts))
    note = "" if start == 0 else f"conditional on the {start} token(s) generated before it"
    return LabelScore(
        label, value, status, "generation", best.path, start, variants, note, lower=lower
    )


def _score(prep: _Prepared, label: str, target: bytes) -> LabelScore:
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
        prep.bound[first],
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
        out[label] = _score(prep, label, target.encode("utf-8"))
    return out
