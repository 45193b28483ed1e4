"""Provider-neutral log-prob records.

A :class:`Position` is one generated token with its top-k alternatives, as OpenAI chat,
Ollama and OpenAI-compatible servers all return them. A :class:`LabelScore` is what the
matcher or a teacher-forced scorer says about one label: a natural-log probability, how
far it can be trusted (``status``), which method produced it and the token path behind it.

This module is the one place that turns log-probs into probabilities (:func:`logsumexp`,
:func:`to_prob`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
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
    def min_listed_logprob(self) -> float:
        """The smallest log-prob listed here: a bound for any token not listed."""
        return min(alt.logprob for alt in self.alternatives)


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
