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

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate, chain, compress
from operator import itemgetter, methodcaller
from typing import Any

from .errors import ConfigError
from .parsing import parse_positions
from .records import _SAME_TOKEN_TOL, LabelScore, PathStep, Position, Status, logsumexp

__all__ = ["SEPARATOR_PATTERN", "match_label", "match_labels"]

SEPARATOR_PATTERN = re.compile(
    r"(?:[,;:/|\[\](){}\"'`*•\-.\n\t]|(?<![^\W\d_])(?:and|or|&))\s*$", re.IGNORECASE
)
"""Generated text ending like this lets a further label start at the next position."""

_QUOTES = "\"'`“”‘’«»"
_TAIL = 16  # characters of generated text kept to test SEPARATOR_PATTERN
_SEPARATOR_CHARS = frozenset(",;:/|[](){}\"'`*•-.\n\t")  # the pattern's character class


_NUM: frozenset[Any] = frozenset({float, int})
_DICT: frozenset[Any] = frozenset({dict})
_SEQ: frozenset[Any] = frozenset({list, tuple})
_TOKEN = itemgetter("token")
_TOPS = methodcaller("get", "top_logprobs")
_LOGPROB = itemgetter("logprob")
_TRAILING = re.compile(r"[\W_]+\Z")  # trailing non-alphanumerics (str.isalnum's complement)
_MEMO_SIZE = 1 << 14  # token texts remembered per label table (then it starts afresh)

_Raw = tuple[list[str], list[float], list[str], list[float], list[int]]
"""Sampled tokens and log-probs per position; every listed token and log-prob, flat, with
the end offset of each position's list."""


class _Slow(Exception):
    """The fast reader met something it does not handle: use the validating parser."""


def _read_fast(positions: Any) -> _Raw:
    """Dict positions read and type-checked with a few C-level passes over all entries.

    Only what the matcher uses is checked (``bytes`` is not): tokens must be strings and
    log-probs numbers <= 0. Anything else goes to the parser, which names the field.
    """
    if positions.__class__ not in (list, tuple) or not set(map(type, positions)) <= _DICT:
        raise _Slow
    sampled = list(map(_TOKEN, positions))
    tops = list(map(_TOPS, positions))
    if None in tops:
        tops = [() if top is None else top for top in tops]
    if not set(map(type, tops)) <= _SEQ:
        raise _Slow
    flat = list(chain.from_iterable(tops))
    toks = list(map(_TOKEN, flat))
    lps = list(map(_LOGPROB, chain(positions, flat)))  # the sampled ones first
    "".join(sampled)  # TypeError unless every token is a string
    "".join(toks)
    if lps:
        kinds = set(map(type, lps))
        if not (kinds <= _NUM and max(lps) <= 0.0 and (total := sum(lps)) == total):
            raise _Slow  # a bool, a positive number or NaN: let the parser name it
        if float not in kinds or len(kinds) > 1:
            lps = list(map(float, lps))
    n = len(sampled)
    return sampled, lps[:n], toks, lps[n:], list(accumulate(map(len, tops)))


def _read(positions: Any) -> _Raw:
    try:
        return _read_fast(positions)
    except (_Slow, KeyError, TypeError, AttributeError):
        parsed = parse_positions(positions)  # raises the precise, field-naming error
        return (
            [p.token for p in parsed],
            [p.logprob for p in parsed],
            [a.token for p in parsed for a in p.top_logprobs],
            [a.logprob for p in parsed for a in p.top_logprobs],
            list(accumulate(len(p.top_logprobs) for p in parsed)),
        )


class _Table:
    """The labels and normalisation options of a call, indexed for the start positions.

    ``lookup(tok)`` gives, for a raw start token, the labels its normalised text begins or
    completes: ((label number, completes?), ...). Every non-empty prefix of a label's text
    is indexed; ``cores`` (the text without trailing non-alphanumerics) finds tokens that
    complete a label and add punctuation (``"Sports,"``). Answers are memoised per token:
    one table (cached) serves every response scored with the same labels and options.
    """

    __slots__ = ("casefold", "cores", "index", "memo", "pairs", "strip_quotes", "strip_whitespace")

    def __init__(
        self,
        pairs: list[tuple[str, str]],
        casefold: bool,
        strip_whitespace: bool,
        strip_quotes: bool,
    ) -> None:
        self.pairs = pairs
        self.casefold = casefold
        self.strip_whitespace = strip_whitespace
        self.strip_quotes = strip_quotes
        self.index: dict[str, list[tuple[int, bool]]] = {}
        self.cores: dict[str, list[int]] = {}
        for n, (_, target) in enumerate(pairs):
            for k in range(1, len(target) + 1):
                self.index.setdefault(target[:k], []).append((n, k == len(target)))
            self.cores.setdefault(_TRAILING.sub("", target), []).append(n)
        self.memo: dict[str, tuple[tuple[int, bool], ...]] = {}

    def first_norm(self, tok: str) -> str:
        """A token as the first of a label: case, then leading whitespace and quotes."""
        if self.casefold:
            tok = tok.casefold()
        if self.strip_whitespace:
            tok = tok.lstrip()
        if self.strip_quotes:
            tok = tok.lstrip(_QUOTES)
            if self.strip_whitespace:
                tok = tok.lstrip()
        return tok

    def inner_norm(self, tok: str) -> str:
        """A token inside a label: case only."""
        return tok.casefold() if self.casefold else tok

    def lookup(self, tok: str) -> tuple[tuple[int, bool], ...]:
        nt = self.first_norm(tok)
        hit = list(self.index.get(nt, ()))
        if nt and not nt[-1].isalnum():
            for n in self.cores.get(_TRAILING.sub("", nt), ()):
                target = self.pairs[n][1]
                if len(target) < len(nt) and nt.startswith(target):
                    hit.append((n, True))
        if len(self.memo) >= _MEMO_SIZE:
            self.memo.clear()
        self.memo[tok] = got = tuple(hit)
        return got

    def hits(self, toks: list[str]) -> dict[int, list[tuple[int, bool]]]:
        """Label number -> [(alternative number, completes?)] at one start position."""
        memo: list[Any] = list(map(self.memo.get, toks))
        found: list[tuple[tuple[int, bool], ...]] = memo
        if None in memo:
            found = [self.lookup(t) if f is None else f for t, f in zip(toks, memo, strict=True)]
        out: dict[int, list[tuple[int, bool]]] = {}
        for j in compress(range(len(found)), found):  # tokens that begin or complete a label
            for n, complete in found[j]:
                got = out.get(n)
                if got is None:
                    out[n] = [(j, complete)]
                else:
                    got.append((j, complete))
        return out


class _Prepared:
    """Positions read once and indexed lazily, shared by every label.

    ``starts`` lists (position, its sampled token is blank) for every place a label may
    begin. For a position ``i`` used by some walk, ``alts(i)`` is (tokens, logprobs) of the
    sampled token followed by the listed alternatives that are not it (see
    :attr:`Position.alternatives`); ``norms(i, first)`` their normalised texts.
    """

    def __init__(self, raw: _Raw, table: _Table, multi_label: bool) -> None:
        self.sampled, self.sampled_lps, self.listed, self.listed_lps, self.ends = raw
        self.n = len(self.sampled)
        self.table = table
        self._alts: dict[int, tuple[list[str], list[float]]] = {}
        self._norms: dict[tuple[int, bool], list[str]] = {}
        self.starts: list[tuple[int, bool]] = []
        tail = ""
        prev_blank_start = False
        for i, tok in enumerate(self.sampled):
            is_start = i == 0 or (multi_label and _ends_with_separator(tail))
            # a start right after a blank (whitespace- or quote-only) start token is
            # covered by walking through that token from the earlier start
            if is_start and not prev_blank_start:
                prev_blank_start = table.first_norm(tok) == ""
                self.starts.append((i, prev_blank_start))
            else:
                prev_blank_start = False
            tail = (tail + tok)[-_TAIL:]

    def alts(self, i: int) -> tuple[list[str], list[float]]:
        got = self._alts.get(i)
        if got is not None:
            return got
        tok, lp = self.sampled[i], self.sampled_lps[i]
        a, b = self.ends[i - 1] if i else 0, self.ends[i]
        listed, lps = self.listed[a:b], self.listed_lps[a:b]
        if len(set(listed)) == len(listed):  # distinct texts: only the sampled one can repeat
            k = listed.index(tok) if tok in listed else -1
            if k >= 0 and abs(lps[k] - lp) <= _SAME_TOKEN_TOL:
                del listed[k], lps[k]
            got = [tok, *listed], [lp, *lps]
        else:
            toks, vals = [tok], [lp]
            seen = {(tok, lp)}
            for t, v in zip(listed, lps, strict=True):
                if (t, v) in seen or (t == tok and abs(v - lp) <= _SAME_TOKEN_TOL):
                    continue
                seen.add((t, v))
                toks.append(t)
                vals.append(v)
            got = toks, vals
        self._alts[i] = got
        return got

    def norms(self, i: int, first: bool) -> list[str]:
        """The normalised texts of ``alts(i)``, as a label start (``first``) or inside one."""
        key = (i, first)
        got = self._norms.get(key)
        if got is None:
            norm = self.table.first_norm if first else self.table.inner_norm
            got = self._norms[key] = list(map(norm, self.alts(i)[0]))
        return got


_Step = tuple[int, str, float, bool]
_Part = tuple[float, bool, tuple[_Step, ...]]
_Best = tuple[float, bool, int, bool, list[tuple[int, bool]]]


def _ends_with_separator(text: str) -> bool:
    """``SEPARATOR_PATTERN.search(text)``, skipping the regex when the end of the text
    rules it out (it must end with a separator character or ``and``/``or``/``&``, then
    whitespace only)."""
    stripped = text.rstrip()
    blanks = text[len(stripped) :]
    if "\n" in blanks or "\t" in blanks:
        return True
    if not stripped:
        return False
    last = stripped[-1]
    if last in _SEPARATOR_CHARS:
        return True
    return last in "dDrR&" and SEPARATOR_PATTERN.search(text) is not None


def _walk(
    prep: _Prepared,
    i: int,
    target: str,
    remaining: str,
    first: bool,
    acc: float,
    path: tuple[_Step, ...],
    out: list[_Part],
) -> None:
    """Extend ``out`` with the contributions of the walk for ``target`` from position
    ``i`` on, ``remaining`` of it still to spell after ``path`` (log-prob ``acc``)."""
    while i < prep.n:
        toks, lps = prep.alts(i)
        norms = prep.norms(i, first)
        follow = -1
        matched_here = False
        for j, nt in enumerate(norms):
            if not nt:
                continue
            if nt.startswith(remaining):
                if any(c.isalnum() for c in nt[len(remaining) :]):
                    continue  # a longer word, not this label
                out.append((acc + lps[j], True, (*path, (i, toks[j], lps[j], j == 0))))
                matched_here = True
            elif remaining.startswith(nt):
                matched_here = True
                if j == 0:
                    follow = 0
                else:
                    out.append((acc + lps[j], False, (*path, (i, toks[j], lps[j], False))))
        n0 = norms[0]
        if follow < 0 and first and n0 == "":
            pass  # a blank sampled token before the label: walk through it
        elif follow < 0:
            if not matched_here and remaining != target:
                # diverged inside the label and its next token is not listed here
                out.append((acc + min(lps), False, path))
            return
        else:
            remaining = remaining[len(n0) :]
            first = False
        acc += lps[0]
        path = (*path, (i, toks[0], lps[0], True))
        i += 1
    if remaining != target:
        # the answer ended with the label still incomplete: the path so far bounds it
        out.append((acc, False, path))


def _start_parts(
    prep: _Prepared, start: int, blank: bool, hits: Sequence[tuple[int, bool]], target: str
) -> list[_Part]:
    """The contributions for ``target`` beginning at ``start``, whose listed alternatives
    ``hits`` begin or complete it."""
    toks, lps = prep.alts(start)
    parts: list[_Part] = []
    follow = False
    for j, complete in hits:
        if complete:
            parts.append((lps[j], True, ((start, toks[j], lps[j], j == 0),)))
        elif j:
            parts.append((lps[j], False, ((start, toks[j], lps[j], False),)))
        else:
            follow = True
    step0 = ((start, toks[0], lps[0], True),)
    if blank:  # walk through the blank sampled token: the label may begin next
        _walk(prep, start + 1, target, target, True, lps[0], step0, parts)
    elif follow:
        rest = target[len(prep.table.first_norm(toks[0])) :]
        _walk(prep, start + 1, target, rest, False, lps[0], step0, parts)
    return parts


def _score_all(prep: _Prepared) -> dict[str, LabelScore]:
    pairs = prep.table.pairs
    if prep.n == 0:
        return {
            label: LabelScore(
                label, -math.inf, "missing", "generation", note="no generated positions"
            )
            for label, _ in pairs
        }
    best: list[_Best | None] = [None] * len(pairs)
    for start, blank in prep.starts:
        toks, lps = prep.alts(start)
        hits = prep.table.hits(toks)
        for n, hs in ((n, hits.get(n, [])) for n in range(len(pairs))) if blank else hits.items():
            if blank or not (hs[0][0] or hs[0][1]):  # walks on: through or along the sample
                parts = _start_parts(prep, start, blank, hs, pairs[n][1])
                if not parts:
                    continue
                value = logsumexp([p[0] for p in parts])
                exact = all([p[1] for p in parts])
            elif len(hs) == 1:
                value, exact = lps[hs[0][0]], hs[0][1]
            else:  # listed tokens only: each is one contribution
                value = logsumexp([lps[j] for j, _ in hs])
                exact = all([complete for _, complete in hs])
            if value > 0.0:
                value = 0.0
            old = best[n]
            if old is None or value > old[0] or (value == old[0] and exact and not old[1]):
                best[n] = (value, exact, start, blank, hs)
    return {label: _result(prep, label, target, best[n]) for n, (label, target) in enumerate(pairs)}


def _result(prep: _Prepared, label: str, target: str, best: _Best | None) -> LabelScore:
    if best is None:
        first = prep.starts[0][0]
        lps = prep.alts(first)[1]
        return LabelScore(
            label,
            min(lps),
            "upper_bound",
            "generation",
            start=first,
            note=f"not among the {len(lps)} listed tokens at position {first}",
        )
    value, exact, start, blank, hs = best
    status: Status = "exact" if exact else "upper_bound"
    note = _conditional_note(start)
    if not blank and (hs[0][0] or hs[0][1]):  # listed tokens at the start only: no walk
        toks, lps = prep.alts(start)
        top = hs[0][0]
        for j, _ in hs:
            if lps[j] > lps[top]:
                top = j  # the dominant contribution (the first of equals)
        texts = [toks[j] for j, _ in hs]
        return LabelScore(
            label,
            value,
            status,
            "generation",
            (PathStep(start, toks[top], lps[top], top == 0),),
            start,
            tuple(dict.fromkeys(texts)),
            note,
            tuple([(t,) for t in texts]),
        )
    parts = _start_parts(prep, start, blank, hs, target)
    dominant = parts[0]
    for part in parts:
        if part[0] > dominant[0]:
            dominant = part
    tokens = tuple([tuple([step[1] for step in part[2]]) for part in parts])
    return LabelScore(
        label,
        value,
        status,
        "generation",
        tuple([PathStep(*step) for step in dominant[2]]),
        start,
        tuple(dict.fromkeys(["".join(t) for t in tokens])),
        note,
        tokens,
    )


@functools.lru_cache(maxsize=256)
def _conditional_note(start: int) -> str:
    return "" if start == 0 else f"conditional on the {start} token(s) generated before it"


@functools.lru_cache(maxsize=16)
def _cached_table(
    labels: tuple[str, ...], casefold: bool, strip_whitespace: bool, strip_quotes: bool
) -> _Table:
    return _Table(_normalise_labels(labels, casefold), casefold, strip_whitespace, strip_quotes)


def _table(
    labels: Iterable[str], casefold: bool, strip_whitespace: bool, strip_quotes: bool
) -> _Table:
    if not isinstance(labels, str | bytes | Mapping) and isinstance(labels, Iterable):
        labels = tuple(labels)
        try:
            return _cached_table(labels, casefold, strip_whitespace, strip_quotes)
        except TypeError:  # an unhashable label: the validation below names it
            pass
    return _Table(_normalise_labels(labels, casefold), casefold, strip_whitespace, strip_quotes)


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
    :class:`~logprob_eval.errors.LogprobEvalError` subclasses: a malformed token or log-prob
    anywhere in ``positions`` is a :class:`~logprob_eval.errors.ResponseFormatError` naming
    its field (``bytes`` are not read here; :func:`~logprob_eval.parsing.parse_positions`
    checks a whole response).

    The index built for a label set and options is kept (and thread-safe), so scoring many
    responses with the same labels pays for it once.
    """
    table = _table(labels, bool(casefold), bool(strip_whitespace), bool(strip_quotes))
    return _score_all(_Prepared(_read(positions), table, bool(multi_label)))


def match_label(
    label: str, positions: Sequence[Position | Mapping[str, Any]], **options: Any
) -> LabelScore:
    """Score one label; the options are those of :func:`match_labels`."""
    return match_labels([label], positions, **options)[label]
