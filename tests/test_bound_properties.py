"""Hypothesis properties of bounds (truncated, rounded and padded listings), lower ends,
sentinels, bytes and echo alignment."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from logprob_eval import ResponseFormatError, match_labels
from logprob_eval.scoring.echo import align_echo, echoed_label_score
from logprob_eval.scoring.parsing import EchoedToken, parse_position
from logprob_eval.scoring.records import Position

from . import provider_quirks as q
from .test_matcher_reference import LABELS, position

# -- bounds --------------------------------------------------------------------------------
#
# A server lists part of a true next-token distribution: its top-k (OpenAI style: the
# sampled token apart; vLLM style: appended when it ranks below them), and it may have
#   * truncated it first (top_p < 1: the tokens kept are renormalised; TGI, Together),
#   * rounded the listed probabilities (up, to a grid: 0.25 like LM Studio, or 0.01),
#   * padded the list with sentinel fillers (sglang, vLLM, OpenAI; -inf from Python).
# The full distributions consistent with a listing are those a server could have listed
# that way. The bound on an unlisted label must be at least the label's log-prob in every
# one of them, and never above the smallest real listed entry of the top-k. Hypothesis
# explores the distributions, with the hard cases made common: an unlisted token tied with
# the k-th listed one, or one unlisted token holding all the mass left over.

FILLERS = [*q.FILLERS.values()]


@dataclass(frozen=True)
class Listing:
    position: Position  # what the server sent, parsed
    unlisted: list[float]  # the true log-probs of the tokens it does not list
    top_k_listed: list[float]  # the values it lists for the true top-k tokens
    floor: float  # the smallest of them the rule can tell from an appended sampled token
    kind: str  # faithful | truncated | rounded (up) | any of them padded
    fillers: int


@st.composite
def server_listing(draw: st.DrawFn, kinds: tuple[str, ...] = ("faithful", "truncated", "rounded")):
    """A true distribution and a server's listing of it (see above)."""
    weights = draw(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=25))
    weights.sort(reverse=True)
    k = draw(st.integers(0, len(weights)))
    tail = draw(st.sampled_from(["drawn", "tie", "one-takes-all"]))
    if tail == "tie" and k > 0:  # an unlisted token as likely as the k-th listed one
        weights.insert(k, weights[k - 1])
    elif tail == "one-takes-all" and k > 0:  # one unlisted token, as big as allowed
        head = math.fsum(weights[:k])
        weights = [*weights[:k], weights[k - 1]] if weights[k - 1] < head else weights[:k]
    total = math.fsum(weights)
    true = [math.log(w / total) for w in weights]
    n = len(true)
    kind = draw(st.sampled_from(kinds))
    listed_values = list(true)  # what the server reports for each token
    pool = n  # the tokens it may sample (and list)
    if kind == "truncated":
        top_p = draw(st.floats(0.01, 1.0))
        kept, cum = 0, 0.0
        while kept < n and cum < top_p:
            cum += math.exp(true[kept])
            kept += 1
        z = math.log(math.fsum(math.exp(v) for v in true[:kept]))
        listed_values = [v - z for v in true[:kept]]  # the truncated, renormalised values
        pool = kept
    elif kind == "rounded":
        step = draw(st.sampled_from([0.25, 0.1, 0.01]))
        listed_values = [math.log(min(1.0, math.ceil(math.exp(v) / step) * step)) for v in true]
    k = min(k, pool)
    sampled = draw(st.integers(0, pool - 1))
    tokens = [f"t{i}" for i in range(n)]
    top = [{"token": tokens[i], "logprob": min(0.0, listed_values[i])} for i in range(k)]
    if sampled >= k and k > 0 and draw(st.booleans()):  # vLLM: appended to the list
        top.append({"token": tokens[sampled], "logprob": min(0.0, listed_values[sampled])})
    n_fillers = draw(st.integers(0, 4))
    for j in range(n_fillers):  # padding: anywhere in the list, any sentinel
        filler = {"token": draw(st.sampled_from(["", "<pad>", tokens[-1]])), "logprob": 0.0}
        filler["logprob"] = draw(st.sampled_from(FILLERS))
        top.insert(draw(st.integers(0, len(top))), filler | {"token": f"{filler['token']}{j}"})
    entry = {
        "token": tokens[sampled],
        "logprob": min(0.0, listed_values[sampled]),
        "top_logprobs": top,
    }
    listed = set(range(k)) | {sampled}
    top_k_listed = [min(0.0, listed_values[i]) for i in range(k)]
    others = [v for i, v in enumerate(top_k_listed) if i != sampled]
    if sampled < k and others and top_k_listed[sampled] < min(others):
        # the sampled token listed below all the others may be vLLM's appended extra: the
        # rule leaves it out of the floor (which only loosens the bound)
        floor = min(others)
    else:
        floor = min(top_k_listed, default=0.0)
    return Listing(
        parse_position(entry),
        [true[i] for i in range(n) if i not in listed],
        top_k_listed,
        floor,
        kind,
        n_fillers,
    )


def _consistent(listing: Listing) -> bool:
    """Whether the true distribution is one the listing allows, in the issue's terms: every
    unlisted token at most the smallest listed top-k value, and, where the listing leaves
    mass over (it sums clearly below 1), at most that mass. A faithful, truncated or padded
    listing always allows its true distribution (checked below); a rounded one that sums
    below 1 may not (rounding up can hide mass that an unlisted token then holds): no bound
    that trusts the listed numbers can hold there, and the rule takes the list at its word."""
    floor = math.exp(min(listing.top_k_listed, default=0.0))
    mass = listing.position.listed_mass
    cap = min(floor, 1.0 - mass) if 1.0 - mass > 1e-5 else floor
    return all(math.exp(v) <= cap * (1 + 1e-9) for v in listing.unlisted)


@settings(max_examples=1000)
@given(server_listing())
def test_a_bound_holds_in_every_distribution_consistent_with_the_listing(listing: Listing) -> None:
    pos = listing.position
    bound = pos.unlisted_bound()
    if listing.kind != "rounded":
        assert _consistent(listing)  # the definition admits what these servers send
    event(f"{listing.kind}, {'' if _consistent(listing) else 'not '}consistent")
    if _consistent(listing):
        assert all(v <= bound + 1e-9 for v in listing.unlisted), (bound, listing)
        if any(abs(v - bound) <= 1e-9 for v in listing.unlisted):
            event("tight: an unlisted token is at the bound")
    if listing.fillers:
        event("padded")
    # never above the smallest real listed entry of the top-k (nor above 0)
    assert bound <= listing.floor
    # the rule's two parts, each checked: the leftover bounds only while mass is left over
    leftover = 1.0 - pos.listed_mass
    if leftover > 1e-5:
        assert bound <= math.log(leftover) + 1e-12
    else:
        assert bound == listing.floor


@settings(max_examples=300)
@given(server_listing())
def test_fillers_change_no_bound_and_no_score(listing: Listing) -> None:
    """Padding is invariant: the same listing without its fillers gives the same bound and
    the same scores (only the note, which names the fillers, differs)."""
    pos = listing.position
    plain = Position(
        pos.token, pos.logprob, tuple(a for a in pos.top_logprobs if a.logprob > -math.inf)
    )
    assert pos.unlisted_bound() == plain.unlisted_bound()
    labels = ["t0", "t1", "Zq absent", "<pad>0"]
    padded_scores, plain_scores = match_labels(labels, [pos]), match_labels(labels, [plain])
    for label in labels:
        a, b = padded_scores[label], plain_scores[label]
        assert (a.logprob, a.lower, a.status, a.path) == (b.logprob, b.lower, b.status, b.path)
        assert ("sentinel filler" in a.note) is (listing.fillers > 0 and a.status != "exact")


@given(server_listing())
def test_the_label_bound_is_the_position_bound(listing: Listing) -> None:
    pos = listing.position
    score = match_labels(["Zq absent"], [pos])["Zq absent"]
    bound = pos.unlisted()
    assert score.status == "upper_bound" and score.logprob == bound.logprob
    assert ("no mass is known to be left over" in score.note) is bound.no_leftover
    assert ("top_p=1" in score.note) is bound.truncated
    assert ("sentinel filler" in score.note) is (listing.fillers > 0)


@given(server_listing())
def test_a_bound_from_alternatives_read_before_is_the_bound(listing: Listing) -> None:
    """The matcher reads a position's alternatives once and hands them to unlisted(): the
    same bound and the same facts behind it as when the position reads them itself."""
    pos = listing.position
    assert pos.unlisted(alternatives=pos.alternatives) == pos.unlisted()
    assert pos.unlisted().mass == pos.listed_mass


# -- lower ends and sentinels ----------------------------------------------------------------


@settings(max_examples=300)
@given(st.lists(position(), max_size=8), st.booleans())
def test_lower_never_above_logprob_and_no_sentinel_in_scores(
    positions: list[Any], multi_label: bool
) -> None:
    for score in match_labels(LABELS, positions, multi_label=multi_label).values():
        assert score.lower <= score.logprob <= 0.0
        if score.status == "exact":
            assert score.lower == score.logprob
        for value in (score.logprob, score.lower):
            assert not math.isnan(value)
            assert value == -math.inf or value > -9999.0  # no sentinel survives as a number
        if -math.inf in (p.logprob for p in score.path):
            assert "sentinel" in score.note


# -- bytes -----------------------------------------------------------------------------------

any_script = st.text(
    st.sampled_from("aéßЖж日本語中文한국어ألعبةहिंदी😀🎉ñøå"), min_size=1, max_size=6
).filter(lambda s: s.strip() == s and any(c.isalnum() for c in s[-1:]))


@settings(max_examples=300)
@given(any_script, st.data())
def test_labels_in_any_script_spelled_over_split_bytes_are_exact(label: str, data: Any) -> None:
    raw = label.encode("utf-8")
    cuts = sorted(
        data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=4)) if len(raw) > 1 else []
    )
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    lps = data.draw(st.lists(st.floats(-5.0, -0.01), min_size=len(pieces), max_size=len(pieces)))
    positions = []
    for piece, lp in zip(pieces, lps, strict=True):
        try:
            token = piece.decode("utf-8")
        except UnicodeDecodeError:  # OpenAI's way of writing a piece of a character
            token = "bytes:" + "".join(f"\\x{b:02x}" for b in piece)
        with_bytes = data.draw(st.booleans())
        given_bytes = list(piece) if with_bytes or token.startswith("bytes:") else None
        entry = {"token": token, "logprob": lp, "bytes": given_bytes}
        positions.append({**entry, "top_logprobs": [entry]})
    score = match_labels([label], positions, multi_label=False)[label]
    assert score.status == "exact", (pieces, score)
    assert math.isclose(score.logprob, math.fsum(lps), abs_tol=1e-9)


# -- echo alignment --------------------------------------------------------------------------

words = st.lists(st.text("abc xyz,.", min_size=1, max_size=4), min_size=2, max_size=8)


def _echo(pieces: list[str], lps: list[float], bos: str | None) -> tuple[str, list[EchoedToken]]:
    text, tokens, at = "".join(pieces), [], 0
    if bos:
        tokens.append(EchoedToken(bos, 0, None))
        at = len(bos)  # counted in the offsets, absent from the text (vLLM)
    for piece, lp in zip(pieces, lps, strict=True):
        tokens.append(EchoedToken(piece, at, lp))
        at += len(piece)
    tokens[0 if not bos else 1] = EchoedToken(pieces[0], tokens[0 if not bos else 1].offset, None)
    return text, tokens


@settings(max_examples=300)
@given(words, st.data(), st.sampled_from(["</s>", "<s>", "<|begin_of_text|>"]))
def test_a_bos_shift_leaves_exact_scores_unchanged(pieces: list[str], data: Any, bos: str) -> None:
    lps = data.draw(st.lists(st.floats(-9.0, 0.0), min_size=len(pieces), max_size=len(pieces)))
    j = data.draw(st.integers(1, len(pieces) - 1))
    boundary = len("".join(pieces[:j]))
    text, plain = _echo(pieces, lps, None)
    _, shifted = _echo(pieces, lps, bos)
    want = echoed_label_score("x", boundary, len(text), align_echo(text, plain))
    got = echoed_label_score("x", boundary, len(text), align_echo(text, shifted))
    assert got.logprob == want.logprob and got.path == want.path
    assert math.isclose(want.logprob, math.fsum(lps[j:]), abs_tol=1e-9)


@settings(max_examples=300)
@given(words, st.data())
def test_corrupted_offsets_raise_or_score_the_same_tokens(pieces: list[str], data: Any) -> None:
    lps = data.draw(st.lists(st.floats(-9.0, 0.0), min_size=len(pieces), max_size=len(pieces)))
    j = data.draw(st.integers(1, len(pieces) - 1))
    boundary = len("".join(pieces[:j]))
    text, tokens = _echo(pieces, lps, None)
    i = data.draw(st.integers(0, len(tokens) - 1))
    delta = data.draw(st.integers(-3, 3).filter(bool))
    assume(tokens[i].offset + delta >= 0)
    bad = [
        *tokens[:i],
        EchoedToken(tokens[i].token, tokens[i].offset + delta, tokens[i].logprob),
        *tokens[i + 1 :],
    ]
    want = echoed_label_score("x", boundary, len(text), align_echo(text, tokens))
    try:
        got = echoed_label_score("x", boundary, len(text), align_echo(text, bad))
    except ResponseFormatError:
        return
    assert got.logprob == want.logprob  # a misplaced offset the text confirms anyway
