"""Provider-neutral log-prob records.

A :class:`Position` is one generated token with its top-k alternatives, as OpenAI chat,
Ollama and OpenAI-compatible servers all return them. A :class:`LabelScore` is what the
matcher or a teacher-forced scorer says about one label: a natural-log probability, how
far it can be trusted (``status``), which method produced it and the token path behind it.

This module is the one place that turns log-probs into probabilities (:func:`logsumexp`,
:func:`to_prob`) and that bounds the log-prob of a token a position does not list
(:meth:`Position.unlisted_bound`).

The bound rule. An unlisted token's probability at a position is at most

1. the smallest probability *in the top-k list*: every unlisted token ranks below the
   top-k. A sampled token that ranks below the top-k is listed by some servers (vLLM
   appends it to ``top_logprobs``; OpenAI gives it only as the position's token) and is
   no bound: it is the sampled token when it is absent from ``top_logprobs``, or when it
   is listed strictly below every other entry (then it may be such an extra; leaving it
   out only loosens the bound, never invalidates it);
2. the mass the listed distinct tokens leave over: 1 - the sum of their probabilities,
   the sampled token included.

The tighter of the two is the bound; with an empty top-k list only the leftover mass
bounds it. Listed probabilities known only to float precision make a leftover below
:data:`MASS_TOLERANCE` unreliable, so the leftover is never taken below it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MASS_TOLERANCE",
    "SENTINEL_LOGPROB",
    "STATUSES",
    "Alternative",
    "LabelScore",
    "Method",
    "PathStep",
    "Position",
    "Status",
    "logsumexp",
    "to_prob",
]

Status = Literal["exact", "upper_bound", "missing"]
"""How a score may be used.

``exact``: the log-probability of the token path(s) recorded in ``path`` (and the surface
variants combined with it). ``upper_bound``: the true value is at most ``logprob``; it can
never pass a threshold above it. ``missing``: nothing could be observed (no positions);
``logprob`` is ``-inf``, the log of zero observed mass, and consumers filter on status.
"""

_SAME_TOKEN_TOL = 1e-3

SENTINEL_LOGPROB = -9999.0
"""Log-probs at or below this are provider sentinels for "no mass" (vLLM and OpenAI clamp
``-inf`` to -9999.0, sglang pads lists with float32's lowest, -3.4e38): read as ``-inf``."""

MASS_TOLERANCE = 1e-5
"""Probability mass below this, left over by the listed tokens, is within float noise."""

TRUNCATION_TOLERANCE = 1e-3
"""Listed probabilities summing above 1 + this come from a truncated distribution
(``top_p < 1``), not from float noise."""

STATUSES: tuple[Status, ...] = ("exact", "upper_bound", "missing")

Method = Literal["generation", "exact"]
"""``generation``: read off the top-k alternatives of generated tokens.
``exact``: teacher-forced log P(label | prompt) from echoed prompt log-probs."""


@dataclass(frozen=True, slots=True)
class Alternative:
    """One candidate token at a position with its natural-log probability."""

    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """One generated position: the sampled token and the listed top-k alternatives.

    ``top_logprobs`` is what the API listed (it may or may not contain the sampled token);
    :attr:`alternatives` is that list with the sampled token guaranteed in it, duplicates
    (same token, same log-prob) listed once.
    """

    token: str
    logprob: float
    top_logprobs: tuple[Alternative, ...] = ()
    bytes: tuple[int, ...] | None = None

    @property
    def alternatives(self) -> tuple[Alternative, ...]:
        """The sampled token first, then the listed ones that are not it.

        A listed entry with the sampled token's text and (within 1e-3) its log-prob is the
        sampled token listed again; the same text with another log-prob is a distinct token
        id that decodes alike, and is kept. Exact repeats are listed once.
        """
        seen: set[tuple[str, float]] = {(self.token, self.logprob)}
        out: list[Alternative] = [Alternative(self.token, self.logprob, self.bytes)]
        for alt in self.top_logprobs:
            key = (alt.token, alt.logprob)
            if key in seen or (
                alt.token == self.token and abs(alt.logprob - self.logprob) <= _SAME_TOKEN_TOL
            ):
                continue
            seen.add(key)
            out.append(alt)
        return tuple(out)

    @property
    def top_k(self) -> tuple[Alternative, ...]:
        """The listed entries that are certainly among the top-k: ``top_logprobs`` without
        a sampled token that may have been appended below it (see the module docstring)."""
        listed = self.top_logprobs
        others = [a for a in listed if not self._is_sampled(a)]
        if len(others) == len(listed):
            return listed  # the sampled token is not listed: it is the extra one, if any
        if others and all(self.logprob < a.logprob for a in others):
            return tuple(others)  # listed last and below all: possibly an appended extra
        return listed

    def _is_sampled(self, alt: Alternative) -> bool:
        return alt.token == self.token and abs(alt.logprob - self.logprob) <= _SAME_TOKEN_TOL

    @property
    def listed_mass(self) -> float:
        """The summed probability of the listed distinct tokens, the sampled one included."""
        return math.fsum([math.exp(a.logprob) for a in self.alternatives])

    @property
    def truncated(self) -> bool:
        """The listed probabilities look like those of a truncated distribution
        (``top_p < 1``): they sum above 1, or one entry is listed, at log-prob 0."""
        return self._truncated(self.listed_mass)

    def _truncated(self, mass: float) -> bool:
        if len(self.top_logprobs) == 1 and self.top_logprobs[0].logprob == 0.0:
            return True
        return mass > 1.0 + TRUNCATION_TOLERANCE

    def bound_and_truncated(self) -> tuple[float, bool]:
        """:meth:`unlisted_bound` and :attr:`truncated`, summing the listed mass once."""
        mass = self.listed_mass
        return self._unlisted_bound(mass), self._truncated(mass)

    def unlisted_bound(self) -> float:
        """An upper bound on the log-prob of any token not listed here (the module's rule)."""
        return self._unlisted_bound(self.listed_mass)

    def _unlisted_bound(self, mass: float) -> float:
        leftover = math.log(max(1.0 - mass, MASS_TOLERANCE))
        top_k = self.top_k
        if not top_k:
            return leftover
        return min(leftover, min(a.logprob for a in top_k))


@dataclass(frozen=True, slots=True)
class PathStep:
    """One token of the path that produced a score."""

    position: int
    token: str
    logprob: float
    sampled: bool


@dataclass(frozen=True, slots=True)
class LabelScore:
    """The score of one label for one response.

    ``path`` is the dominant token path (the largest of the combined contributions);
    ``variants`` lists the surface forms whose mass was combined (log-sum-exp) and
    ``variant_tokens`` the token path of each combined contribution.
    ``start`` is the position where the label starts; a score with ``start > 0`` is
    conditional on the tokens generated before it (``conditional`` says so).

    A score is an interval: the label's log-prob lies in ``[lower, logprob]``. ``lower``
    sums the exact contributions alone (``-inf`` when there are none); for ``exact``
    scores ``lower == logprob``. Left out, it is derived from the status.
    """

    label: str
    logprob: float
    status: Status
    method: Method = "generation"
    path: tuple[PathStep, ...] = ()
    start: int | None = None
    variants: tuple[str, ...] = ()
    note: str = ""
    variant_tokens: tuple[tuple[str, ...], ...] = ()
    lower: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.lower):
            object.__setattr__(self, "lower", self.logprob if self.status == "exact" else -math.inf)
        elif self.status == "exact" and self.lower != self.logprob:
            raise ValueError(f"label {self.label!r}: an exact score has lower == logprob")
        elif self.lower > self.logprob:
            raise ValueError(
                f"label {self.label!r}: lower={self.lower!r} above logprob={self.logprob!r}"
            )

    @property
    def conditional(self) -> bool:
        return bool(self.start)

    @property
    def n_tokens(self) -> int:
        return len(self.path)

    @property
    def prob(self) -> float:
        return to_prob(self.logprob)


def logsumexp(values: Iterable[float]) -> float:
    """log(sum(exp(v))) computed stably; ``-inf`` for no values."""
    vals = values if isinstance(values, list) else list(values)
    if not vals:
        return -math.inf
    top = max(vals)
    if top == -math.inf or top == math.inf:
        return top
    if len(vals) == 2:  # the common case, without the generic sum (same result: 1 + x)
        a, b = vals
        return top + math.log(1.0 + math.exp((b if a == top else a) - top))
    return top + math.log(math.fsum([math.exp(v - top) for v in vals]))


def to_prob(logprob: float) -> float:
    """Natural-log probability to probability."""
    return math.exp(logprob)
