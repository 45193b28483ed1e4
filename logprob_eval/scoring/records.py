"""Provider-neutral log-prob records.

A :class:`Position` is one generated token with its top-k alternatives, as OpenAI chat,
Ollama and OpenAI-compatible servers all return them. A :class:`LabelScore` is what the
matcher or a teacher-forced scorer says about one label: a natural-log probability, how
far it can be trusted (``status``), which method produced it and the token path behind it.

This module is the one place that turns log-probs into probabilities (:func:`logsumexp`,
:func:`to_prob`) and that bounds the log-prob of a token a position does not list
(:meth:`Position.unlisted`).

The bound rule. Provider sentinels in a top-k list (-9999, float32's lowest and other
fillers at or below -9999, ``-inf``) are padding, not listed tokens: they carry no mass and
bound nothing. Of the real entries, an unlisted token's probability at a position is at most

1. the smallest probability *in the top-k list* (the *floor*): every unlisted token ranks
   below the top-k. A sampled token that ranks below the top-k is listed by some servers
   (vLLM appends it to ``top_logprobs``; OpenAI gives it only as the position's token) and
   is no bound: it is the sampled token when it is absent from ``top_logprobs``, or when it
   is listed strictly below every other entry (then it may be such an extra; leaving it
   out only loosens the bound, never invalidates it);
2. the mass the listed distinct tokens leave over: 1 - the sum of their probabilities,
   the sampled token included, but only while it is more than float noise
   (:data:`MASS_TOLERANCE`). A list whose probabilities sum to 1 or more (or to within that
   noise of 1) is no evidence of any mass left over: it may have been truncated and
   renormalised (``top_p < 1``: TGI's single entry at 0.0, sums well above 1) or rounded
   (LM Studio's multiples of 0.25). On such a list an unlisted token may have any
   probability up to the floor, so the floor alone bounds it (0.0 with no real entry).

The tighter of the two is the bound; with an empty top-k list only the leftover mass
bounds it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = [
    "MASS_TOLERANCE",
    "SENTINEL_LOGPROB",
    "STATUSES",
    "TRUNCATION_TOLERANCE",
    "Alternative",
    "LabelScore",
    "Method",
    "PathStep",
    "Position",
    "Status",
    "UnlistedBound",
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
``-inf`` to -9999.0, sglang pads lists with float32's lowest, -3.4e38): read as ``-inf``.
In a top-k list such an entry is padding (a *filler*), not a listed token."""

MASS_TOLERANCE = 1e-5
"""Probability mass up to this, left over by the listed tokens, is within float noise: no
evidence that any mass is left over (the module's rule 2)."""

TRUNCATION_TOLERANCE = 1e-3
"""Listed probabilities summing above 1 + this come from a truncated distribution
(``top_p < 1``), not from rounding or float noise. Either way a sum of 1 or more leaves no
mass over to bound an unlisted token (the module's rule 2)."""

STATUSES: tuple[Status, ...] = ("exact", "upper_bound", "missing")

Method = Literal["generation", "exact", "forced"]
"""``generation``: read off the top-k alternatives of generated tokens.
``exact``: teacher-forced log P(label | prompt) from echoed prompt log-probs.
``forced``: the same sum, each token's log-prob read from the top log-probs of a one-token
completion of the prompt plus the label's preceding tokens (:mod:`logprob_eval.scoring.forced`)."""


# Not frozen: the parsers make one per listed token (400 a response at top-20), and a frozen
# dataclass's __init__ (object.__setattr__ per field) takes about twice a plain one's time.
@dataclass(slots=True)
class Alternative:
    """One candidate token at a position with its natural-log probability. Nothing changes
    one once it is made (a :class:`Position` and the matcher read it as listed)."""

    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None


class UnlistedBound(NamedTuple):
    """What a position says about the tokens it does not list (the module's bound rule).

    ``logprob`` is the bound. ``floor`` is the smallest real top-k entry (0.0: none);
    ``mass`` the summed probability of the listed distinct tokens. ``no_leftover``: that sum
    leaves no more than :data:`MASS_TOLERANCE` over, so only the floor bounds (rule 2 does
    not apply); ``truncated``: the list
    looks truncated (``top_p < 1``); ``fillers``: sentinel entries left out as padding.
    """

    logprob: float
    floor: float
    mass: float
    no_leftover: bool
    truncated: bool
    fillers: int


@dataclass(frozen=True, slots=True)
class Position:
    """One generated position: the sampled token and the listed top-k alternatives.

    ``top_logprobs`` is what the API listed (it may or may not contain the sampled token;
    it may be padded with sentinel fillers, read as ``-inf``); :attr:`alternatives` is that
    list without the fillers and with the sampled token guaranteed in it, duplicates (same
    token, same log-prob) listed once.
    """

    token: str
    logprob: float
    top_logprobs: tuple[Alternative, ...] = ()
    bytes: tuple[int, ...] | None = None

    @property
    def alternatives(self) -> tuple[Alternative, ...]:
        """The sampled token first, then the real listed ones that are not it.

        A listed entry with the sampled token's text (and bytes, where both are given) and
        (within 1e-3) its log-prob is the sampled token listed again; the same text with
        other bytes or another log-prob is a distinct token id that decodes alike, and is
        kept. Exact repeats are listed once; fillers (sentinels, ``-inf``) not at all.
        """
        out: list[Alternative] = [Alternative(self.token, self.logprob, self.bytes)]
        texts = {self.token}  # of the tokens in ``out``: a new text is neither case below
        for alt in self.top_logprobs:
            if alt.logprob == -math.inf:
                continue  # a filler (see real_entries)
            if alt.token in texts and (self._is_sampled(alt) or alt in out):
                continue  # the sampled token listed again, or an exact repeat
            texts.add(alt.token)
            out.append(alt)
        return tuple(out)

    @property
    def real_entries(self) -> tuple[Alternative, ...]:
        """``top_logprobs`` without its fillers: entries read as ``-inf`` (provider
        sentinels, see :data:`SENTINEL_LOGPROB`) pad a list; they are not listed tokens."""
        return tuple([a for a in self.top_logprobs if a.logprob != -math.inf])

    @property
    def top_k(self) -> tuple[Alternative, ...]:
        """The real entries that are certainly among the top-k: :attr:`real_entries`
        without a sampled token that may have been appended below them (see the module
        docstring)."""
        return self._top_k(self.real_entries)

    def _top_k(self, listed: tuple[Alternative, ...]) -> tuple[Alternative, ...]:
        others = [a for a in listed if a.token != self.token or not self._is_sampled(a)]
        if len(others) == len(listed):
            return listed  # the sampled token is not listed: it is the extra one, if any
        if others and all(self.logprob < a.logprob for a in others):
            return tuple(others)  # listed last and below all: possibly an appended extra
        return listed

    def _is_sampled(self, alt: Alternative) -> bool:
        """``alt`` is the sampled token: same text, same bytes where both are given (tokens
        printed lossily, as ``\ufffd``, differ only there), log-prob within 1e-3."""
        if alt.token != self.token or abs(alt.logprob - self.logprob) > _SAME_TOKEN_TOL:
            return False
        return alt.bytes is None or self.bytes is None or alt.bytes == self.bytes

    @property
    def listed_mass(self) -> float:
        """The summed probability of the listed distinct tokens, the sampled one included."""
        return math.fsum([math.exp(a.logprob) for a in self.alternatives])

    @property
    def truncated(self) -> bool:
        """The listed probabilities look like those of a truncated distribution
        (``top_p < 1``): they sum above 1 + :data:`TRUNCATION_TOLERANCE`, or one real entry
        is listed, at log-prob 0."""
        return self.unlisted().truncated

    def unlisted(self, *, alternatives: tuple[Alternative, ...] | None = None) -> UnlistedBound:
        """The bound on any token not listed here, with the facts behind it (module rule).

        ``alternatives``: this position's :attr:`alternatives`, where the caller has read
        them already (the matcher does, once per position); else they are read here.
        """
        if alternatives is None:
            alternatives = self.alternatives
        mass = math.fsum([math.exp(a.logprob) for a in alternatives])  # as listed_mass
        real = self.real_entries
        top_k = self._top_k(real)
        floor = min([a.logprob for a in top_k]) if top_k else 0.0
        leftover = 1.0 - mass
        no_leftover = leftover <= MASS_TOLERANCE
        # rule 2 only where some mass is known to be left over (not truncated, rounded or
        # within float noise of none): else the floor alone
        bound = floor if no_leftover else min(math.log(leftover), floor)
        truncated = mass > 1.0 + TRUNCATION_TOLERANCE or (len(real) == 1 and real[0].logprob == 0.0)
        fillers = len(self.top_logprobs) - len(real)
        return UnlistedBound(bound, floor, mass, no_leftover, truncated, fillers)

    def unlisted_bound(self) -> float:
        """An upper bound on the log-prob of any token not listed here (the module's rule)."""
        return self.unlisted().logprob


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
