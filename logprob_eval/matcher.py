"""Token-path label matching over generated positions (the generation method).

For each label and each place the label may start (position 0, or after a separator such
as ``,`` ``;`` ``and`` or a newline when ``multi_label`` is on) the matcher walks the
*sampled* path while each sampled token is a prefix of what remains of the label:

* at every position on that walk, an alternative that *completes* the label is an exact
  contribution (its path is conditioned only on tokens that spell the label);
* an alternative that is only a *prefix* of the rest is an upper-bound contribution: later
  positions are conditioned on the sampled token, not on it, so they cannot be used;
* at the first position where the sampled token leaves the label, only that position's
  alternatives are used and the walk stops; if none of them matches, the label's next token
  is unlisted and bounded by the smallest listed log-prob there;
* if the answer ends while the label is still incomplete, the path so far bounds it.

Contributions are disjoint events (different tokens at the same position, or different
depths of the same path) and add: log-sum-exp. Surface variants at the start (leading
whitespace, and case or leading quotes when asked) are such distinct tokens. A score is
``exact`` only if every contribution is; among starts the highest score wins (exact before
bound on a tie). A label with no match at any start gets an ``upper_bound`` equal to the
smallest log-prob listed at the first position; with no positions at all it is ``missing``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import ConfigError
from .parsing import parse_positions
from .records import _SAME_TOKEN_TOL, LabelScore, PathStep, Position, logsumexp

__all__ = ["SEPARATOR_PATTERN", "match_label", "match_labels"]

SEPARATOR_PATTERN = re.compile(
    r"(?:[,;:/|\[\](){}\"'`*•\-.\n\t]|(?<![^\W\d_])(?:and|or|&))\s*$", re.IGNORECASE
)
"""Generated text ending like this lets a further label start at the next position."""

_QUOTES = "\"'`“”‘’«»"
_TAIL = 16  # characters of generated text kept to test SEPARATOR_PATTERN


class _Slow(Exception):
    """The fast reader met something it does not handle: use the validating parser."""


_NOT_SEEN = object()


def _read_fast(positions: Any) -> list[tuple[str, float, Any]]:
    """(token, logprob, [(alt token, alt logprob)]) per position, type-checked."""
    if not isinstance(positions, list | tuple):
        raise _Slow
    out = []
    for e in positions:
        if e.__class__ is not dict:
            raise _Slow
        tok = e["token"]
        lp = e["logprob"]
        if tok.__class__ is not str or lp.__class__ not in (float, int) or not lp <= 0.0:
            raise _Slow
        b = e.get("bytes")
        if b is not None and b.__class__ not in (list, tuple):
            raise _Slow
        top = e.get("top_logprobs")
        if top is None:
            top = ()
        elif top.__class__ not in (list, tuple):
            raise _Slow
        out.append((tok, float(lp), _alt_pairs(top)))
    return out


def _read(positions: Any) -> list[tuple[str, float, Any]]:
    try:
        return _read_fast(positions)
    except (_Slow, KeyError, TypeError, AttributeError):
        parsed = parse_positions(positions)  # raises the precise, field-naming error
        return [
            (p.token, p.logprob, [(a.token, a.logprob) for a in p.top_logprobs]) for p in parsed
        ]


_STR = frozenset({str})
_NUM = frozenset({float, int})
_ZERO = 0.0


def _alt_pairs(top: Any) -> list[tuple[str, float]]:
    """Validate one position's listed alternatives into (token, logprob) pairs (C loops)."""
    if not top:
        return []
    toks = [a["token"] for a in top]
    lps = [a["logprob"] for a in top]
    if not (
        set(map(type, toks)) <= _STR and set(map(type, lps)) <= _NUM and all(map(_ZERO.__ge__, lps))
    ):
        raise _Slow
    return list(zip(toks, lps, strict=True))


class _Prepared:
    """Positions read once and indexed lazily, shared by every label.

    For a position ``i`` used by some walk, ``alts(i)`` is the sampled token followed by
    the listed alternatives that are not it (see :attr:`Position.alternatives`);
    ``by_char(i, first)`` groups their normalised texts by first character, as a label
    start (``first``: leading blanks stripped) or inside a label.
    """

    def __init__(
        self,
        raw: list[tuple[str, float, Any]],
        *,
        strip_whitespace: bool,
        casefold: bool,
        strip_quotes: bool,
        multi_label: bool,
    ) -> None:
        self.raw = raw
        self.n = len(raw)
        self.casefold = casefold
        self.strip_whitespace = strip_whitespace
        self.strip_quotes = strip_quotes
        self._alts: dict[int, list[tuple[str, float, bool]]] = {}
        self._by_char: dict[tuple[int, bool], dict[str, list[tuple[int, str]]]] = {}
        self._norms: dict[tuple[int, bool], list[str]] = {}
        self.blank: dict[int, bool] = {}
        self.starts: list[int] = []
        tail = ""
        prev_blank_start = False
        for i, (tok, _, _) in enumerate(raw):
            is_start = i == 0 or (multi_label and bool(SEPARATOR_PATTERN.search(tail)))
            # a start right after a blank (whitespace- or quote-only) start token is
            # covered by walking through that token from the earlier start
            if is_start and not prev_blank_start:
                self.starts.append(i)
                prev_blank_start = self.first_norm(tok) == ""
                self.blank[i] = prev_blank_start
            else:
                prev_blank_start = False
            tail = (tail + tok)[-_TAIL:]
        # per start, built once: what the walks of every label look at first
        self.start_index = [(i, self.blank[i], self.by_char(i, True)) for i in self.starts]

    def inner_norm(self, tok: str) -> str:
        return tok.casefold() if self.casefold else tok

    def first_norm(self, tok: str) -> str:
        if self.casefold:
            tok = tok.casefold()
        if self.strip_whitespace:
            tok = tok.lstrip()
        if self.strip_quotes:
            tok = tok.lstrip(_QUOTES)
            if self.strip_whitespace:
                tok = tok.lstrip()
        return tok

    def alts(self, i: int) -> list[tuple[str, float, bool]]:
        got = self._alts.get(i)
        if got is not None:
            return got
        tok, lp, pairs = self.raw[i]
        out = [(tok, lp, True)]
        seen = {(tok, lp)}
        for t, v in pairs:
            if (t, v) in seen or (t == tok and abs(v - lp) <= _SAME_TOKEN_TOL):
                continue
            seen.add((t, v))
            out.append((t, v, False))
        self._alts[i] = out
        return out

    def min_listed(self, i: int) -> float:
        return min(v for _, v, _ in self.alts(i))

    def norms(self, i: int, first: bool) -> list[str]:
        """The normalised text of each alternative at ``i``, as a label start or inside."""
        key = (i, first)
        got = self._norms.get(key)
        if got is None:
            norm = self.first_norm if first else self.inner_norm
            got = [norm(t) for t, _, _ in self.alts(i)]
            self._norms[key] = got
        return got

    def by_char(self, i: int, first: bool) -> dict[str, list[tuple[int, str]]]:
        """First character -> (alternative number, normalised text) at position ``i``."""
        key = (i, first)
        got = self._by_char.get(key)
        if got is None:
            got = {}
            for j, nt in enumerate(self.norms(i, first)):
                if nt:
                    got.setdefault(nt[0], []).append((j, nt))
            self._by_char[key] = got
        return got


def _walk(
    prep: _Prepared, start: int, target: str, first_chars: dict[str, list[tuple[int, str]]]
) -> list[tuple[float, bool, tuple[tuple[int, str, float, bool], ...]]]:
    """All disjoint contributions (logprob, exact?, path) for ``target`` from ``start``."""
    out: list[tuple[float, bool, tuple[tuple[int, str, float, bool], ...]]] = []
    acc = 0.0
    path: tuple[tuple[int, str, float, bool], ...] = ()
    remaining = target
    i = start
    first = True  # the next token begins the label: leading blanks are normalised away
    while i < prep.n:
        alts = prep.alts(i)
        follow = -1
        matched_here = False
        # only alternatives that share the first character can complete or begin the rest
        chars = first_chars if i == start else prep.by_char(i, first)
        for j, nt in chars.get(remaining[0], ()):
            if nt.startswith(remaining):
                if any(c.isalnum() for c in nt[len(remaining) :]):
                    continue  # a longer word, not this label
                t, v, sampled = alts[j]
                out.append((acc + v, True, (*path, (i, t, v, sampled))))
                matched_here = True
            elif remaining.startswith(nt):
                matched_here = True
                t, v, sampled = alts[j]
                if sampled:
                    follow = j
                else:
                    out.append((acc + v, False, (*path, (i, t, v, False))))
        t0, v0, _ = alts[0]
        n0 = prep.norms(i, first)[0]
        if follow < 0 and first and n0 == "":
            follow = 0  # a blank sampled token before the label: walk through it
        elif follow < 0:
            if not matched_here and remaining != target:
                # diverged inside the label and its next token is not listed here
                out.append((acc + prep.min_listed(i), False, path))
            return out
        else:
            remaining = remaining[len(n0) :]
            first = False
        acc += v0
        path = (*path, (i, t0, v0, True))
        i += 1
    if remaining != target:
        # the answer ended with the label still incomplete: the path so far bounds it
        out.append((acc, False, path))
    return out


def _score(prep: _Prepared, label: str, target: str) -> LabelScore:
    if prep.n == 0:
        return LabelScore(label, -math.inf, "missing", "generation", note="no generated positions")
    best: tuple[float, bool, int, list[Any]] | None = None
    head = target[0]
    for start, blank, chars in prep.start_index:
        if not blank and head not in chars:
            continue  # nothing listed at this start can begin the label
        parts = _walk(prep, start, target, chars)
        if not parts:
            continue
        value = min(0.0, parts[0][0] if len(parts) == 1 else logsumexp(p[0] for p in parts))
        exact = all(p[1] for p in parts)
        if best is None or value > best[0] or (value == best[0] and exact and not best[1]):
            best = (value, exact, start, parts)
    if best is None:
        first = prep.starts[0]
        return LabelScore(
            label,
            prep.min_listed(first),
            "upper_bound",
            "generation",
            start=first,
            note=f"not among the {len(prep.alts(first))} listed tokens at position {first}",
        )
    value, exact, start, parts = best
    dominant = max(parts, key=lambda p: p[0])[2]
    tokens = tuple(tuple(step[1] for step in p[2]) for p in parts)
    return LabelScore(
        label,
        value,
        "exact" if exact else "upper_bound",
        "generation",
        tuple(PathStep(*step) for step in dominant),
        start,
        tuple(dict.fromkeys("".join(t) for t in tokens)),
        "" if start == 0 else f"conditional on the {start} token(s) generated before it",
        tokens,
    )


def _normalise_labels(labels: Iterable[str], casefold: bool) -> list[tuple[str, str]]:
    if isinstance(labels, str | bytes | Mapping) or not isinstance(labels, Iterable):
        raise ConfigError(
            f"labels={labels!r:.60} must be a list of label strings, e.g. ['Sports', 'Art']"
        )
    out: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"label {label!r} must be a non-empty string; remove or rename it")
        target = label.strip().casefold() if casefold else label.strip()
        if target in seen:
            raise ConfigError(
                f"labels {seen[target]!r} and {label!r} are the same label after normalisation; "
                "give each label a distinct spelling"
            )
        seen[target] = label
        out.append((label, target))
    return out


def match_labels(
    labels: Iterable[str],
    positions: Sequence[Position | Mapping[str, Any]],
    *,
    strip_whitespace: bool = True,
    casefold: bool = False,
    strip_quotes: bool = False,
    multi_label: bool = True,
) -> dict[str, LabelScore]:
    """Score every label against generated positions.

    ``positions`` holds :class:`Position` records or plain dicts in the OpenAI/Ollama shape
    ``{"token", "logprob", "top_logprobs": [{"token", "logprob"}, ...]}``. Returns a dict
    label -> :class:`LabelScore` in the order of ``labels``. Raises only
    :class:`~logprob_eval.errors.LogprobEvalError` subclasses.
    """
    pairs = _normalise_labels(labels, casefold)
    prep = _Prepared(
        _read(positions),
        strip_whitespace=strip_whitespace,
        casefold=casefold,
        strip_quotes=strip_quotes,
        multi_label=multi_label,
    )
    return {label: _score(prep, label, target) for label, target in pairs}


def match_label(
    label: str, positions: Sequence[Position | Mapping[str, Any]], **options: Any
) -> LabelScore:
    """Score one label; the options are those of :func:`match_labels`."""
    return match_labels([label], positions, **options)[label]
