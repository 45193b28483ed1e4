"""Hypothesis properties of bounds, lower ends, sentinels, bytes and echo alignment."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from logprob_eval import ResponseFormatError, match_labels
from logprob_eval.echo import align_echo, echoed_label_score
from logprob_eval.parsing import EchoedToken
from logprob_eval.records import Alternative, Position

from .test_matcher_reference import LABELS, position

# -- bounds --------------------------------------------------------------------------------


@st.composite
def listed_distribution(draw: st.DrawFn) -> tuple[Position, list[float]]:
    """A true next-token distribution, a server's listing of it (OpenAI style: the sampled
    token apart; vLLM style: appended to the top-k when it ranks below), and the log-probs
    of the tokens left unlisted."""
    weights = draw(st.lists(st.floats(1e-6, 1.0), min_size=2, max_size=30))
    total = math.fsum(weights)
    logprobs = sorted((math.log(w / total) for w in weights), reverse=True)
    k = draw(st.integers(0, len(logprobs) - 1))
    sampled = draw(st.integers(0, len(logprobs) - 1))
    tokens = [f"t{i}" for i in range(len(logprobs))]
    top = [Alternative(tokens[i], logprobs[i]) for i in range(k)]
    if draw(st.booleans()) and sampled >= k and k > 0:  # vLLM: appended to the list
        top.append(Alternative(tokens[sampled], logprobs[sampled]))
    listed = set(range(k)) | {sampled}
    unlisted = [lp for i, lp in enumerate(logprobs) if i not in listed]
    return Position(tokens[sampled], logprobs[sampled], tuple(top)), unlisted


@settings(max_examples=400)
@given(listed_distribution())
def test_a_bound_is_never_below_an_unlisted_token(case: tuple[Position, list[float]]) -> None:
    pos, unlisted = case
    bound = pos.unlisted_bound()
    assert all(lp <= bound + 1e-9 for lp in unlisted)
    # and it is the tighter of the two rules, never looser than the leftover mass
    leftover = math.log(max(1.0 - pos.listed_mass, 1e-5))
    assert bound <= leftover + 1e-12


@given(listed_distribution())
def test_the_label_bound_is_the_position_bound(case: tuple[Position, list[float]]) -> None:
    pos, _ = case
    score = match_labels(["Zq absent"], [pos])["Zq absent"]
    assert score.status == "upper_bound" and score.logprob == pos.unlisted_bound()


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
