"""Token-path label matching over generated positions (the generation method).

The rule, step by step (one helper below per step):

1. **Read** the positions (:func:`~logprob_eval.scoring.parsing.parse_positions` validates them;
   provider sentinels become ``-inf``). Tokens are compared as *bytes*: the ``bytes`` a
   server lists, else the token's text (:mod:`logprob_eval.scoring.token_bytes`), so tokens that
   split a UTF-8 character still spell a label when joined.
2. **Normalise** each token: as the first token of a label, leading whitespace (and case
   or leading quotes when asked) is dropped; inside a label, only case.
3. **Find the starts**: position 0 and, with ``multi_label``, every position after
   generated text that ends with a separator (``,`` ``;`` ``and`` a newline ...; see
   :data:`SEPARATOR_PATTERN`). A start right after a blank start token is covered by
   walking through that token.
4. **Walk** the *sampled* path from a start while each sampled token is a prefix of what
   remains of the label:

   * an alternative that *completes* the label is an exact contribution (its path is
     conditioned only on tokens that spell the label);
   * an alternative that is only a *prefix* is an upper-bound contribution: later
     positions are conditioned on the sampled token, not on it;
   * a token that spells the rest of the label and then begins a character it does not
     finish (bytes that are no whole character) is *open*: what follows may make a letter
     of it, so it never completes the label; its mass may still belong to the label, so
     it is an upper-bound contribution (sampled or not), and the walk stops there;
   * at the first position where the sampled token leaves the label, only that
     position's alternatives are used and the walk stops; if none of them matches, the
     label's next token is unlisted and bounded by :meth:`Position.unlisted_bound`;
   * if the answer ends while the label is still incomplete, the path so far bounds it.
5. **Combine** a start's contributions: they are disjoint events (different tokens at the
   same position, or different depths of one path) and add (log-sum-exp). The score is
   ``exact`` only if every contribution is; ``lower`` is the log-sum-exp of the exact
   ones alone.
6. **Choose** the start with the highest score (exact before bound on a tie).
7. **Bound an unmatched label** by the unlisted bound of the first start position; with no
   positions at all it is ``missing`` (``-inf``).

The unlisted bound is decided in one place, :meth:`Position.unlisted
<logprob_eval.scoring.records.Position.unlisted>`: the smaller of the smallest real probability in
the top-k list (a sampled token listed below it is no bound; sentinel fillers are padding)
and the mass the listed tokens leave over, the latter only while they clearly sum below 1.
A score that used a bound where the listed mass was 1 or more, or where the list was
padded, says so in its note.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import ConfigError
from .parsing import parse_positions
from .records import (
    Alternative,
    LabelScore,
    PathStep,
    Position,
    Status,
    UnlistedBound,
    logsumexp,
)
from .token_bytes import token_bytes

__all__ = ["SEPARATOR_PATTERN", "match_label", "match_labels"]

SEPARATOR_PATTERN = re.compile(
    r"(?:[,;:/|\[\](){}\"'`*•\-.\n\t]|(?<![^\W\d_])(?:and|or|&))\s*$", re.IGNORECASE
)
"""Generated text ending like this lets a further label start at the next position."""

_QUOTES = "\"'`“”‘’«»"
_ASCII_SPACE = bytes(c for c in range(128) if chr(c).isspace())  # what str.lstrip() drops
_TAIL = 16  # characters of generated text kept to test SEPARATOR_PATTERN
_SENTINEL_NOTE = "a log-prob here was a provider sentinel (-9999 or lower): read as no mass"
_TRUNCATED_NOTE = (
    "position {i} lists a truncated distribution (probabilities summing above 1, or one "
    "entry at 0.0): the server sampled with top_p < 1; send top_p=1 for usable log-probs"
)
_NO_LEFTOVER_NOTE = (
    "position {i}: the listed probabilities sum to {mass:.6g}, 1 or within float noise of it "
    "(a truncated or rounded list), so no mass is known to be left over: an unlisted token "
    "there is bounded only by the smallest listed one, {floor:.6g}"
)
_PADDED_NOTE = (
    "position {i}: {n} sentinel filler(s) (-9999 or lower, -inf) pad the top-k list: they "
    "are no listed tokens, carry no mass and do not lower the bound"
)


class _Options(NamedTuple):
    """How tokens are normalised before they are compared with a label (step 2)."""

    casefold: bool
    strip_whitespace: bool
    strip_quotes: bool

    def inner(self, raw: bytes) -> bytes:
        """A token inside a label: case only."""
        if not self.casefold:
            return raw
        return raw.decode("utf-8", "surrogateescape").casefold().encode("utf-8", "surrogateescape")

    def first(self, raw: bytes) -> bytes:
        """A token as the first of a label: case, then leading whitespace and quotes."""
        if raw.isascii() and not self.casefold and not self.strip_quotes:
            return raw.lstrip(_ASCII_SPACE) if self.strip_whitespace else raw  # the same, faster
        text = raw.decode("utf-8", "surrogateescape")
        if self.casefold:
            text = text.casefold()
        if self.strip_whitespace:
            text = text.lstrip()
        if self.strip_quotes:
            text = text.lstrip(_QUOTES)
            if self.strip_whitespace:
                text = text.lstrip()
        return text.encode("utf-8", "surrogateescape")

    def target(self, label: str) -> bytes:
        """The bytes a label must be spelled with."""
        text = label.strip()
        return (text.casefold() if self.casefold else text).encode("utf-8")


_MAX_FORMS = 1 << 16  # tokens kept per set of options before the memo starts afresh


class _Forms(dict[tuple[str, tuple[int, ...] | None], tuple[bytes, bytes]]):
    """Step 2 for each token seen with one set of options: ``forms[token, bytes]`` is its
    bytes as a label's first token and inside a label. Kept across responses (the same
    tokens recur in every one), up to :data:`_MAX_FORMS` tokens, then started afresh."""

    def __init__(self, options: _Options) -> None:
        super().__init__()
        self.options = options

    def __missing__(self, key: tuple[str, tuple[int, ...] | None]) -> tuple[bytes, bytes]:
        if len(self) >= _MAX_FORMS:
            self.clear()
        raw = token_bytes(*key)
        forms = self[key] = (self.options.first(raw), self.options.inner(raw))
        return forms


@functools.cache
def _forms(options: _Options) -> _Forms:
    """The one :class:`_Forms` per set of options."""
    return _Forms(options)


@dataclass(slots=True)  # not frozen: made for many listed tokens, and never changed
class _Token:
    """One token listed at a position: as written, normalised for where it stands in a
    label (as its first token or inside it), its log-prob."""

    raw: str
    text: bytes
    logprob: float
    sampled: bool


@dataclass(frozen=True, slots=True)
class _Contribution:
    logprob: float
    exact: bool
    path: tuple[PathStep, ...]
    bound_at: int | None = None  # the position whose unlisted bound is part of the value


class _Response:
    """The positions of one response, read for a set of labels (their normalised
    ``targets``); each position's tokens are normalised once, on first use.

    ``candidates(i, first, remaining)`` are the tokens at ``i`` whose normalised text
    begins with the same byte as ``remaining``: the only ones that can complete or begin
    it (an index per position, so a label is not compared with every listed token). The
    index holds only the tokens some label can use there: as a label's first token, those
    beginning with the first byte of a target; inside a label, those beginning with a byte
    a target has after its first (what remains of a label is such a byte onwards).
    """

    def __init__(self, positions: list[Position], options: _Options, targets: list[bytes]):
        self.positions = positions
        self.forms = _forms(options)
        self._label_bytes = {
            True: {t[0] for t in targets},
            False: {b for t in targets for b in t[1:]},
        }
        # each sampled token normalised as a label's first token (blank: walked through)
        self.sampled_first = [self.forms[p.token, p.bytes][0] for p in positions]
        self._alternatives: dict[int, tuple[Alternative, ...]] = {}
        self._index: dict[tuple[int, bool], dict[int, list[_Token]]] = {}
        self._bounds: dict[int, UnlistedBound] = {}

    def __len__(self) -> int:
        return len(self.positions)

    def alternatives(self, i: int) -> tuple[Alternative, ...]:
        """:attr:`Position.alternatives` at ``i``: the sampled token first, then the listed
        ones that are not it (read once per position)."""
        got = self._alternatives.get(i)
        if got is None:
            got = self._alternatives[i] = self.positions[i].alternatives
        return got

    def candidates(self, i: int, first: bool, remaining: bytes) -> list[_Token]:
        index = self._index.get((i, first))
        if index is None:
            index = self._index[(i, first)] = {}
            usable = self._label_bytes[first]
            for k, alt in enumerate(self.alternatives(i)):
                as_first, as_inner = self.forms[alt.token, alt.bytes]
                text = as_first if first else as_inner
                if text and text[0] in usable:
                    index.setdefault(text[0], []).append(
                        _Token(alt.token, text, alt.logprob, sampled=k == 0)
                    )
        return index.get(remaining[0], [])

    def blank_start(self, i: int) -> _Token | None:
        """The sampled token at ``i`` if it is blank as a label's first token (a walk
        goes through it to the label), else None."""
        if self.sampled_first[i]:
            return None
        pos = self.positions[i]
        return _Token(pos.token, b"", pos.logprob, sampled=True)

    def may_begin(self, i: int, target: bytes) -> bool:
        """Whether a walk for ``target`` from ``i`` can find anything: a listed token
        begins with its first byte, or the sampled token is blank (walked through)."""
        return bool(self.candidates(i, True, target)) or not self.sampled_first[i]

    def unlisted(self, i: int) -> UnlistedBound:
        """The unlisted bound at ``i`` and the facts behind it (computed once per position)."""
        got = self._bounds.get(i)
        if got is None:
            got = self._bounds[i] = self.positions[i].unlisted(alternatives=self.alternatives(i))
        return got


def _starts(response: _Response, multi_label: bool) -> list[int]:
    """Step 3: the positions where a label may begin."""
    starts: list[int] = []
    tail = ""
    after_blank_start = False
    for i, pos in enumerate(response.positions):
        if (i == 0 or (multi_label and _ends_with_separator(tail))) and not after_blank_start:
            starts.append(i)
        after_blank_start = starts[-1] == i and not response.sampled_first[i]
        text = token_bytes(pos.token, pos.bytes).decode("utf-8", "replace")
        tail = (tail + text)[-_TAIL:]
    return starts


def _ends_with_separator(text: str) -> bool:
    """Whether generated ``text`` ends with a separator (:data:`SEPARATOR_PATTERN`)."""
    return SEPARATOR_PATTERN.search(text) is not None


def _classify(token: bytes, remaining: bytes) -> str | None:
    """``complete``, ``prefix``, ``open`` or None for a normalised token against the rest of
    a label.

    A token completes the label when it spells the rest and adds no letter or digit
    (``"Sports,"`` completes ``Sports``, ``"Sportsman"`` does not). Bytes after the label
    that are not whole characters could begin a letter: such a token is ``open``, never
    complete, and its mass may belong to the label (step 4).
    """
    if not token:
        return None
    if token.startswith(remaining):
        try:
            extra = token[len(remaining) :].decode("utf-8")
        except UnicodeDecodeError:
            return "open"
        return None if any(c.isalnum() for c in extra) else "complete"
    if remaining.startswith(token):
        return "prefix"
    return None


def _walk(response: _Response, start: int, target: bytes) -> tuple[list[_Contribution], int]:
    """Step 4: the contributions for ``target`` beginning at ``start`` (empty: no match),
    and the last position read."""
    out: list[_Contribution] = []
    path_steps: tuple[PathStep, ...] = ()
    acc, remaining = 0.0, target
    first = True  # the next token begins the label: leading blanks are normalised away
    i = start
    while i < len(response):
        follow: _Token | None = None
        matched_here = False
        for tok in response.candidates(i, first, remaining):
            kind = _classify(tok.text, remaining)
            if kind is None:
                continue
            matched_here = True
            step = (*path_steps, PathStep(i, tok.raw, tok.logprob, tok.sampled))
            if kind == "complete":
                out.append(_Contribution(acc + tok.logprob, True, step))
            elif kind == "prefix" and tok.sampled:
                follow = tok
            else:  # a prefix off the sampled path, or an open token: a bound
                out.append(_Contribution(acc + tok.logprob, False, step))
        blank = response.blank_start(i) if follow is None and first else None
        if blank is not None:
            follow = blank  # a blank sampled token before the label: walk through it
        elif follow is None:
            if not matched_here and remaining != target:
                # diverged inside the label, and its next token is not listed here
                bound = acc + response.unlisted(i).logprob
                out.append(_Contribution(bound, False, path_steps, bound_at=i))
            return out, i
        else:
            remaining = remaining[len(follow.text) :]
            first = False
        acc += follow.logprob
        path_steps = (*path_steps, PathStep(i, follow.raw, follow.logprob, True))
        i += 1
    if remaining != target:
        # the answer ended with the label still incomplete: the path so far bounds it
        out.append(_Contribution(acc, False, path_steps))
    return out, len(response) - 1


def _notes(response: _Response, start: int, last: int, parts: Sequence[_Contribution]) -> str:
    """What a reader of the score must know: conditional start, sentinels, truncation, and
    why a bound it used is what it is."""
    notes = []
    if start:
        notes.append(f"conditional on the {start} token(s) generated before it")
    if any(step.logprob == -math.inf for part in parts for step in part.path) or any(
        part.logprob == -math.inf for part in parts
    ):
        notes.append(_SENTINEL_NOTE)
    notes += [
        _TRUNCATED_NOTE.format(i=i)
        for i in range(start, last + 1)
        if response.unlisted(i).truncated
    ]
    for i in sorted({part.bound_at for part in parts if part.bound_at is not None}):
        notes += _bound_notes(i, response.unlisted(i))
    return "; ".join(notes)


def _bound_notes(i: int, bound: UnlistedBound) -> list[str]:
    """Why the unlisted bound at position ``i`` is not the ordinary one, if it is not."""
    notes = []
    if bound.no_leftover:
        notes.append(_NO_LEFTOVER_NOTE.format(i=i, mass=bound.mass, floor=bound.floor))
    if bound.fillers:
        notes.append(_PADDED_NOTE.format(i=i, n=bound.fillers))
    return notes


class _Candidate(NamedTuple):
    """One start's walk (step 4) and its combined value (step 5): ``value`` is the
    log-sum-exp of the contributions (at most 0), ``exact`` whether every one is exact."""

    start: int
    last: int
    parts: list[_Contribution]
    value: float
    exact: bool


def _candidate(start: int, last: int, parts: list[_Contribution]) -> _Candidate:
    """Step 5: one start's contributions combined (they are disjoint events: they add)."""
    value = min(0.0, logsumexp([c.logprob for c in parts]))
    return _Candidate(start, last, parts, value, all(c.exact for c in parts))


def _better(cand: _Candidate, best: _Candidate | None) -> bool:
    """Step 6: the higher score wins; on a tie, an exact one."""
    if best is None or cand.value > best.value:
        return True
    return cand.value == best.value and cand.exact and not best.exact


def _combine(label: str, response: _Response, cand: _Candidate) -> LabelScore:
    """The chosen start's contributions as one score, with its notes."""
    parts = cand.parts
    lower = min(cand.value, logsumexp([c.logprob for c in parts if c.exact]))
    status: Status = "exact" if cand.exact else "upper_bound"
    best = max(parts, key=lambda c: c.logprob)
    tokens = tuple(tuple(step.token for step in c.path) for c in parts)
    variants = tuple(dict.fromkeys("".join(t) for t in tokens))
    return LabelScore(
        label,
        cand.value,
        status,
        "generation",
        best.path,
        cand.start,
        variants,
        _notes(response, cand.start, cand.last, parts),
        tokens,
        lower=cand.value if cand.exact else lower,
    )


def _unmatched(label: str, response: _Response, start: int) -> LabelScore:
    """Step 7: a label matched at no start, bounded where the answer begins."""
    bound = response.unlisted(start)
    n_listed = len(response.alternatives(start))
    notes = [f"not among the {n_listed} listed tokens at position {start}"]
    if bound.truncated:
        notes.append(_TRUNCATED_NOTE.format(i=start))
    notes += _bound_notes(start, bound)
    return LabelScore(
        label, bound.logprob, "upper_bound", "generation", start=start, note="; ".join(notes)
    )


def _score_label(response: _Response, starts: list[int], label: str, target: bytes) -> LabelScore:
    if not len(response):
        return LabelScore(label, -math.inf, "missing", "generation", note="no generated positions")
    best: _Candidate | None = None
    for start in starts:
        if not response.may_begin(start, target):
            continue  # a cheap test first: no listed token begins the label here
        parts, last = _walk(response, start, target)
        if parts:
            cand = _candidate(start, last, parts)
            if _better(cand, best):
                best = cand
    if best is None:
        return _unmatched(label, response, starts[0])
    return _combine(label, response, best)  # notes and record for the chosen start only


def _validated_labels(labels: Iterable[str], options: _Options) -> list[str]:
    if isinstance(labels, str | bytes | Mapping) or not isinstance(labels, Iterable):
        raise ConfigError(
            f"labels={labels!r:.60} must be a list of label strings, e.g. ['Sports', 'Art']"
        )
    out: list[str] = []
    seen: dict[bytes, str] = {}
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"label {label!r} must be a non-empty string; remove or rename it")
        target = options.target(label)
        if target in seen:
            raise ConfigError(
                f"labels {seen[target]!r} and {label!r} are the same label after normalisation; "
                "give each label a distinct spelling"
            )
        seen[target] = label
        out.append(label)
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
    ``{"token", "logprob", "bytes"?, "top_logprobs": [{"token", "logprob", "bytes"?}]}``.
    Returns a dict label -> :class:`LabelScore` in the order of ``labels``. A malformed
    entry anywhere in ``positions`` raises
    :class:`~logprob_eval.errors.ResponseFormatError` naming its field; bad labels raise
    :class:`~logprob_eval.errors.ConfigError`.
    """
    options = _Options(bool(casefold), bool(strip_whitespace), bool(strip_quotes))
    targets = {label: options.target(label) for label in _validated_labels(labels, options)}
    response = _Response(parse_positions(positions), options, list(targets.values()))
    starts = _starts(response, bool(multi_label))
    return {label: _score_label(response, starts, label, targets[label]) for label in targets}


def match_label(
    label: str, positions: Sequence[Position | Mapping[str, Any]], **options: Any
) -> LabelScore:
    """Score one label; the options are those of :func:`match_labels`."""
    return match_labels([label], positions, **options)[label]
