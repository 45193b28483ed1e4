"""Forced continuation: exact label scores from servers that continue a raw prompt but do
not echo it (llama.cpp's ``llama-server``, llama-cpp-python's server without its slow echo).

A label's log-prob is the sum, over its tokens ``t_1 .. t_n``, of
``log P(t_i | prompt, t_1 .. t_{i-1})``. Each term is read from the top log-probs of a
one-token completion whose prompt is the prompt plus the label's first ``i - 1`` tokens:

1. **The label's tokens.** *Token ids* where the server takes them (llama-server's
   ``/tokenize`` and a list of ids as ``prompt``): the server's tokenization of prompt +
   continuation, the very text the exact method scores, from the first token that differs
   from the prompt's own tokenization (a token straddling the boundary is the label's
   first, and noted, as the exact method notes it). Every step's prompt is then exactly the
   tokens the exact method conditions on. *Text* elsewhere: the prompt plus the label text
   consumed so far is sent as text, and at each step the longest listed token that spells
   the label's next characters is its next token; unless a token spelling all the rest is
   listed, the step is asked again with ``max_top_logprobs`` first, so that a longer token
   ranked below the first list is not passed over for a shorter one (``" "`` before
   ``"Politics"``). The server's own tokenization of that text decides the context (noted
   on the row). A single-token label's one step is the prompt itself, as in the exact
   method.
2. **One request per distinct prefix**: labels sharing a prefix share its request, so ten
   single-token labels cost one request.
3. **How much top-k.** Each request asks for ``top_logprobs`` entries; a step where a token
   some label needs is not among them, on a list that came back full, is asked again with
   ten times more, up to ``max_top_logprobs`` (servers without a cap: llama-server answers
   10,000), and every label reads that step from the one final list.
4. **What a row says.** A step whose token is listed contributes its log-prob exactly; a
   row is ``exact`` when every step's token was listed. A step whose token is not listed
   contributes the bound of :meth:`~logprob_eval.scoring.records.Position.unlisted` (the project's
   one bound rule, not a copy): the row is an ``upper_bound`` whose lower end is ``-inf``.
   Every step is conditioned on the label's own prefix, so the interval is tighter than the
   generation method's (which conditions later steps on the sampled token). In text mode the
   walk stops at an unlisted step (its token is unknown; the rest of the label is at most
   certain, 0), and the label's own token path may have left the walk at any earlier step
   (through another listed token spelling its next characters, or an unlisted one): the
   bound is the largest of the walk's sum and, per step, the walk so far plus the most such
   a step can have (the other listed prefixes, the bound rule). The note names the top-k
   and, where ``max_top_logprobs`` caps it (Ollama and OpenAI at 20), says so.

The label is scored in the one surface form the exact method scores
(:func:`~logprob_eval.backends.openai_compatible.label_continuation`): ``variants`` holds it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import BackendError, ResponseFormatError
from .parsing import parse_completion_positions
from .records import SENTINEL_LOGPROB, LabelScore, PathStep, Position, UnlistedBound

__all__ = [
    "Listed",
    "StepAnswer",
    "forced_scores_ids",
    "forced_scores_text",
    "read_positions",
    "read_step",
]

Prompt = str | list[int]
Read = Callable[[Any, int], "StepAnswer"]
"""``read(body, k)``: the answer of one one-token completion (:func:`read_step` for
``/v1/completions``; a backend with another shape passes its own)."""
Complete = Callable[[Prompt, int], Any]
"""``complete(prompt, k)``: the body of a one-token completion of ``prompt`` (text or token
ids) with the top ``k`` log-probs."""


@dataclass(frozen=True, slots=True)
class Listed:
    """One listed token of a step: its text, log-prob (sentinels read as ``-inf``) and id
    (where the server gives ids)."""

    token: str
    logprob: float
    id: int | None = None


@dataclass(frozen=True, slots=True)
class StepAnswer:
    """What one one-token completion says about the next token: the listed tokens (the
    sampled one included), the position (for the bound rule) and the ``k`` asked for."""

    position: Position
    listed: tuple[Listed, ...]
    k: int

    @property
    def full(self) -> bool:
        """More tokens may rank below the list: it has ``k`` entries, or fewer (a list keyed
        by token text merges tokens that spell alike: llama-cpp-python) that leave mass over
        (a list holding the whole vocabulary leaves none)."""
        if len(self.position.real_entries) >= self.k:
            return True
        return not self.position.unlisted().no_leftover

    def find_id(self, token_id: int) -> Listed | None:
        return next((e for e in self.listed if e.id == token_id), None)

    def bound(self) -> UnlistedBound:
        return self.position.unlisted()


def _entry_logprob(raw: Any) -> float:
    value = float(raw)
    return -math.inf if value <= SENTINEL_LOGPROB else value


def read_step(body: Any, k: int) -> StepAnswer:
    """The first generated position of a ``/v1/completions`` answer (legacy shape or
    llama-server's ``logprobs.content``), with token ids where the server gives them."""
    answer = read_positions(parse_completion_positions(body), k)
    content = body["choices"][0]["logprobs"].get("content") if isinstance(body, Mapping) else None
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
        entries = [first, *(first.get("top_logprobs") or [])]
        if all(isinstance(e, Mapping) and isinstance(e.get("id"), int) for e in entries):
            listed = [
                Listed(str(e["token"]), _entry_logprob(e["logprob"]), e["id"]) for e in entries
            ]
            return StepAnswer(answer.position, tuple(listed), k)
    return answer


def read_positions(positions: Sequence[Position], k: int) -> StepAnswer:
    """The answer of a one-token completion from its parsed positions (no token ids)."""
    if not positions:
        raise ResponseFormatError(
            "the one-token completion generated no token, so it lists no next-token "
            "log-probs; the server must generate one token (max_tokens=1)",
            field="logprobs",
        )
    first = positions[0]
    return StepAnswer(first, tuple(Listed(a.token, a.logprob) for a in first.alternatives), k)


@dataclass(frozen=True, slots=True)
class _Step:
    token: str
    logprob: float  # the listed log-prob, or the bound where not listed
    listed: bool
    k: int
    bound: UnlistedBound | None = None


def _row(
    label: str,
    continuation: str,
    steps: Sequence[_Step],
    *,
    cap: int,
    cap_why: str = "max_top_logprobs",
    notes: Sequence[str] = (),
    complete: bool = True,
    upper: float | None = None,
) -> LabelScore:
    """The row of one label: exact when every step is listed, else an upper bound (module
    doc, rule 4). ``complete``: the steps cover the whole label (text mode stops early);
    ``upper``: the bound where it is not the steps' sum (text mode, module doc)."""
    total = math.fsum(s.logprob for s in steps) if upper is None else upper
    value = min(0.0, total)
    exact = complete and all(s.listed for s in steps)
    out = list(notes)
    for i, s in enumerate(steps):
        if s.listed:
            continue
        assert s.bound is not None
        why = "the smallest listed entry" if s.bound.no_leftover else "the bound rule"
        capped = f" (top-k capped at {cap}: {cap_why})" if s.k >= cap else ""
        out.append(
            f"token {i} ({s.token!r}) not among the top-{s.k} listed{capped}: at most "
            f"{s.logprob:.4f} by {why}"
        )
        if s.bound.truncated:
            out.append(f"token {i}: the list looks truncated (top_p < 1): send top_p=1")
    if not complete:
        out.append("the rest of the label is unknown after an unlisted token: counted as 0")
    path = tuple(PathStep(i, s.token, s.logprob, s.listed) for i, s in enumerate(steps))
    return LabelScore(
        label,
        value,
        "exact" if exact else "upper_bound",
        "forced",
        path,
        0,
        variants=(continuation,),
        note="; ".join(out),
        variant_tokens=(tuple(s.token for s in steps),),
        lower=value if exact else -math.inf,
    )


class _Asker:
    """One answer per distinct prompt, asked with ``top_logprobs`` and, while a token some
    label needs there is missing from a full list, again with ten times more up to
    ``max_top_logprobs`` (module doc, rule 3). Every label reads a step from the same, final
    list (a server may normalise each list a little differently). A server that refuses a
    larger list (HTTP 400: ``logprob-eval serve`` and OpenAI take at most 20) caps it: the
    step keeps the list it had, and ``cap`` / ``cap_why`` say so from then on."""

    def __init__(
        self,
        complete: Complete,
        top: int,
        cap: int,
        read: Read | None = None,
        cap_why: str = "max_top_logprobs",
        on_cap: Callable[[int], None] | None = None,
    ) -> None:
        self.complete, self.top, self.cap, self.cap_why = complete, top, cap, cap_why
        self.read = read or read_step
        self.on_cap = on_cap

    def until(self, prompt: Prompt, ok: Callable[[StepAnswer], bool]) -> StepAnswer:
        k = self.top
        answer = self.read(self.complete(prompt, k), k)
        while not ok(answer) and k < self.cap and answer.full:
            more = min(self.cap, k * 10)
            try:
                answer = self.read(self.complete(prompt, more), more)
            except BackendError as exc:
                if exc.status != 400:
                    raise
                self.cap, self.cap_why = k, f"the server refused top_logprobs={more}"
                if self.on_cap is not None:
                    self.on_cap(k)
                return answer
            k = more
        return answer


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def forced_scores_ids(
    labels: Sequence[str],
    prompt: str,
    continuations: Sequence[str],
    *,
    tokenize: Callable[[str], list[tuple[int, str]]],
    complete: Complete,
    top_logprobs: int,
    max_top_logprobs: int,
    cap_why: str = "max_top_logprobs",
    on_cap: Callable[[int], None] | None = None,
) -> list[LabelScore]:
    """Token-id mode (module doc): ``tokenize(text)`` gives ``(id, piece)`` pairs with the
    server's special tokens (BOS); ``complete`` is sent a list of ids."""
    asker = _Asker(complete, top_logprobs, max_top_logprobs, cap_why=cap_why, on_cap=on_cap)
    prompt_ids = [i for i, _ in tokenize(prompt)]
    plans = []
    for label, cont in zip(labels, continuations, strict=True):
        full = tokenize(prompt + cont)
        start = _common_prefix(prompt_ids, [i for i, _ in full])
        if start == len(full):
            raise ResponseFormatError(
                f"label {label!r}: the server's tokenization of the prompt plus {cont!r} has "
                "no token past the prompt's own; the label cannot be forced",
                field="tokens",
            )
        plans.append((label, cont, full, start))
    # the tokens wanted after each distinct context: one answer per context
    wanted: dict[tuple[int, ...], set[int]] = {}
    for _, _, full, start in plans:
        ids = [i for i, _ in full]
        for j in range(start, len(full)):
            wanted.setdefault(tuple(ids[:j]), set()).add(ids[j])
    answers = {ctx: asker.until(list(ctx), _lists_ids(want)) for ctx, want in wanted.items()}
    scores = []
    for label, cont, full, start in plans:
        ids = [i for i, _ in full]
        steps = []
        for j in range(start, len(full)):
            answer = answers[tuple(ids[:j])]
            found = answer.find_id(ids[j])
            if found is not None:
                steps.append(_Step(full[j][1], found.logprob, True, answer.k))
            else:
                b = answer.bound()
                steps.append(_Step(full[j][1], b.logprob, False, answer.k, b))
        notes = (
            ["first token straddles the prompt/label boundary"] if start < len(prompt_ids) else []
        )
        scores.append(_row(label, cont, steps, cap=asker.cap, cap_why=asker.cap_why, notes=notes))
    return scores


def forced_scores_text(
    labels: Sequence[str],
    prompt: str,
    continuations: Sequence[str],
    *,
    complete: Complete,
    top_logprobs: int,
    max_top_logprobs: int,
    cap_why: str = "max_top_logprobs",
    read: Read | None = None,
    on_cap: Callable[[int], None] | None = None,
) -> list[LabelScore]:
    """Text mode (module doc): the label is walked by the longest listed token that spells
    its next characters; ``complete`` is sent text. Labels walk together, step by step, so
    that labels at the same point share its one answer."""
    asker = _Asker(complete, top_logprobs, max_top_logprobs, read, cap_why, on_cap)
    walks = [_Walk(cont) for cont in continuations]
    while active := [w for w in walks if w.open]:
        by_point: dict[str, list[_Walk]] = {}
        for w in active:
            by_point.setdefault(w.consumed, []).append(w)
        for consumed, group in by_point.items():
            rests = [w.rest for w in group]
            answer = asker.until(prompt + consumed, _lists_whole(rests))
            for w in group:
                w.step(answer)
    note = "text mode: each step's token is the longest listed one spelling the label"
    return [
        _row(
            label,
            w.continuation,
            w.steps,
            cap=asker.cap,
            cap_why=asker.cap_why,
            notes=[note],
            complete=w.done,
            upper=None if w.done else max([math.fsum(x.logprob for x in w.steps), *w.branches]),
        )
        for label, w in zip(labels, walks, strict=True)
    ]


class _Walk:
    """One label's walk in text mode: the steps so far and, per step, the most a token path
    leaving the walk there can have (module doc, rule 4)."""

    def __init__(self, continuation: str) -> None:
        self.continuation = continuation
        self.consumed = ""
        self.steps: list[_Step] = []
        self.branches: list[float] = []
        self.open, self.done = True, False

    @property
    def rest(self) -> str:
        return self.continuation[len(self.consumed) :]

    def step(self, answer: StepAnswer) -> None:
        rest, known = self.rest, math.fsum(s.logprob for s in self.steps)
        found = _longest_prefix(answer, rest)
        if found is None:  # the unlisted token's length is unknown: the walk stops
            b = answer.bound()
            self.steps.append(_Step(rest, b.logprob, False, answer.k, b))
            self.open = False
            return
        self.branches.append(known + _off_path(answer, rest, found))
        self.steps.append(_Step(found.token, found.logprob, True, answer.k))
        self.consumed += found.token
        if self.consumed == self.continuation:
            self.open, self.done = False, True


def _off_path(answer: StepAnswer, rest: str, taken: Listed) -> float:
    """The most a token path leaving the walk at this step can have here: its token is
    another listed one spelling the start of ``rest``, or an unlisted one (the bound)."""
    others = [
        e.logprob for e in answer.listed if e is not taken and e.token and rest.startswith(e.token)
    ]
    return max([answer.bound().logprob, *others])


def _lists_ids(wanted: set[int]) -> Callable[[StepAnswer], bool]:
    """An answer is enough when it lists every wanted token id."""
    return lambda answer: all(answer.find_id(i) is not None for i in wanted)


def _lists_whole(rests: list[str]) -> Callable[[StepAnswer], bool]:
    """An answer is enough when, for every label at this point, it lists a token spelling
    all the rest of it."""

    def ok(answer: StepAnswer) -> bool:
        found = [_longest_prefix(answer, rest) for rest in rests]
        return all(f is not None and f.token == rest for f, rest in zip(found, rests, strict=True))

    return ok


def _longest_prefix(answer: StepAnswer, rest: str) -> Listed | None:
    """The longest listed token that spells the start of ``rest`` (the most likely of equal
    ones), if any."""
    best: Listed | None = None
    for e in answer.listed:
        if not e.token or not rest.startswith(e.token) or e.logprob == -math.inf:
            continue
        if best is None or (len(e.token), e.logprob) > (len(best.token), best.logprob):
            best = e
    return best
