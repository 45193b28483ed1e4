"""Paths through the matcher and the echo scorer that only bytes, or an exact edge, decide.

All fixtures here are hand-written (made-up numbers in the documented response shapes), NOT
recordings: they do not need ``../shared``. Per test, the plausible bug it catches is named.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from logprob_eval import match_labels, parse_ollama, parse_openai_chat
from logprob_eval.scoring.echo import align_echo, echoed_label_score
from logprob_eval.scoring.parsing import EchoedToken
from logprob_eval.scoring.records import TRUNCATION_TOLERANCE, logsumexp

from . import provider_quirks as q


def _lossy(raw: bytes, logprob: float, top: list[tuple[bytes, float]] | None = None) -> dict:
    """An Ollama/vLLM entry for a token whose text is printed lossily: every byte sequence
    that is no whole character shows as U+FFFD; the real bytes are only in ``bytes``."""

    def one(b: bytes, lp: float) -> dict[str, Any]:
        return {"token": b.decode("utf-8", "replace"), "logprob": lp, "bytes": list(b)}

    entries = [(raw, logprob), *(top or [])]
    return {**one(raw, logprob), "top_logprobs": [one(b, lp) for b, lp in entries]}


def _ollama(*entries: dict) -> dict:
    return {"model": "example", "message": {"role": "assistant"}, "logprobs": list(entries)}


# -- 1. lossy token text, real bytes only in `bytes` ------------------------------------------

NIHON = "日本".encode()  # e6 97 a5 | e6 9c ac
CHUUGOKU = "中国".encode()  # e4 b8 ad | e5 9b bd


def test_lossy_pieces_spell_a_label_by_their_bytes():
    """Bug caught: matching on the token text ("\\ufffd"), which spells nothing."""
    body = _ollama(
        _lossy(NIHON[:2], -0.5),
        _lossy(NIHON[2:3], -0.1),
        _lossy(NIHON[3:], -0.2),
    )
    positions = parse_ollama(body)
    assert [p.token for p in positions] == ["\ufffd", "\ufffd", "本"]
    score = match_labels(["日本"], positions)["日本"]
    assert score.status == "exact"
    assert score.logprob == pytest.approx(-0.8, abs=1e-12)
    assert [s.token for s in score.path] == ["\ufffd", "\ufffd", "本"]


def test_lossy_alternative_alike_in_text_is_not_the_sampled_token():
    """Two tokens both printed "\\ufffd", log-probs 4e-4 apart, differ in their bytes: the
    alternative is another token. Bug caught: taking it for the sampled token listed
    again (same text, log-prob within 1e-3), which drops it from the list and the mass."""
    body = _ollama(
        _lossy(NIHON[:2], -0.7, [(CHUUGOKU[:2], -0.7004), (b" Art", -3.0)]),
        _lossy(NIHON[2:], -0.05),
    )
    positions = parse_ollama(body)
    assert len(positions[0].alternatives) == 3
    want_mass = math.exp(-0.7) + math.exp(-0.7004) + math.exp(-3.0)
    assert positions[0].listed_mass == pytest.approx(want_mass, abs=1e-15)
    scores = match_labels(["中国", "日本"], positions)
    # 中 begun off the sampled path: an upper bound from the alternative itself
    assert scores["中国"].status == "upper_bound"
    assert scores["中国"].logprob == -0.7004
    assert scores["中国"].path[0].sampled is False
    assert "not among" not in scores["中国"].note
    assert scores["日本"].status == "exact"
    assert scores["日本"].logprob == pytest.approx(-0.75, abs=1e-12)


# -- 2. a token spelling the rest of a label, then opening a character -------------------------


@pytest.mark.parametrize(
    "opened",
    [b"\xe2\x80", b"\xf0\x9f", b"\xe6"],  # the start of "—" (not alnum), of an emoji, of 日
    ids=["em-dash-start", "emoji-start", "cjk-start"],
)
def test_a_sampled_token_that_opens_a_character_does_not_complete_the_label(opened):
    """Bug caught: completing "Sports" with a token whose extra bytes are no whole
    character (they may become a letter); and, the other way, ignoring the token, whose mass
    may be the label's: the bound must stay at or above it."""
    body = _ollama(
        _lossy(b" Sports" + opened, -0.1, [(b" Art", -3.0), (b" Food", -4.0)]),
        _lossy(b"\x94", -0.01),
    )
    score = match_labels(["Sports"], parse_ollama(body))["Sports"]
    assert score.status == "upper_bound"
    assert score.lower == -math.inf
    assert score.logprob == -0.1  # the open token's own mass, not the unlisted bound (-4.0)
    assert score.path[0].token == " Sports\ufffd" and len(score.path) == 1


def test_an_alternative_that_opens_a_character_is_a_bound_beside_an_exact_variant():
    """An open alternative adds its mass to the upper end only: the lower end is the exact
    variant's. Bug caught: counting it as exact (lower would rise to the sum)."""
    body = _ollama(
        _lossy(b" Sports", -0.4, [(b" Sports\xe6\x97", -1.2), (b" Art", -3.0)]),
        _lossy(b",", -0.1),
    )
    score = match_labels(["Sports"], parse_ollama(body))["Sports"]
    assert score.status == "upper_bound"
    assert score.lower == -0.4
    assert score.logprob == pytest.approx(logsumexp([-0.4, -1.2]), abs=1e-12)


def test_a_whole_character_after_the_label_still_completes_it():
    """The contrast: " Sports—" (e2 80 94, whole, not a letter) completes "Sports"."""
    body = _ollama(_lossy(" Sports—".encode(), -0.3, [(b" Art", -3.0)]))
    score = match_labels(["Sports"], parse_ollama(body))["Sports"]
    assert (score.status, score.logprob) == ("exact", -0.3)


# -- 3. listed mass just over 1, on both sides of the truncation tolerance --------------------


def _two_entries_summing_to(mass: float) -> dict:
    a, b = 0.6, mass - 0.6
    return q.chat([q.entry("Sports", math.log(a), [("Sports", math.log(a)), ("Art", math.log(b))])])


@pytest.mark.parametrize(
    ("mass", "truncated"),
    [
        (1.0, False),  # exactly 1 (rounded): nothing left over, nothing truncated
        (1.0004, False),  # rounding noise
        (1.0 + TRUNCATION_TOLERANCE - 1e-6, False),  # just inside the tolerance
        (1.0 + TRUNCATION_TOLERANCE + 1e-6, True),  # just past it: top_p < 1
        (1.0015, True),
    ],
    ids=["1", "1.0004", "inside-tolerance", "past-tolerance", "1.0015"],
)
def test_listed_mass_just_over_one_on_both_sides_of_the_tolerance(mass, truncated):
    """On both sides the bound is the smallest listed entry (nothing is left over); only
    past the tolerance is the list flagged as truncated. Bugs caught: the leftover floor
    (-11.51) back for a sum in [1, 1.001]; the tolerance dropped (every such list flagged
    top_p < 1) or its comparison turned."""
    positions = parse_openai_chat(_two_entries_summing_to(mass))
    assert positions[0].listed_mass == pytest.approx(mass, abs=1e-12)
    assert positions[0].truncated is truncated
    score = match_labels(["Food"], positions)["Food"]
    assert score.logprob == pytest.approx(math.log(mass - 0.6), abs=1e-12)
    assert "no mass is known to be left over" in score.note
    assert ("top_p=1" in score.note) is truncated


def test_listed_mass_just_under_one_still_bounds_by_the_leftover():
    """The other side of 1: 0.9995 leaves 5e-4 over, tighter than the floor (log 0.3995)."""
    positions = parse_openai_chat(_two_entries_summing_to(0.9995))
    score = match_labels(["Food"], positions)["Food"]
    assert score.logprob == pytest.approx(math.log(5e-4), abs=1e-9)
    assert "left over" not in score.note and "top_p" not in score.note


# -- 4. an echoed token that starts exactly where the label ends -------------------------------


def _echo(pieces: list[tuple[str, float | None]]) -> tuple[str, list[EchoedToken]]:
    text, tokens = "", []
    for piece, lp in pieces:
        tokens.append(EchoedToken(piece, len(text), lp))
        text += piece
    return text, tokens


def test_an_echoed_token_starting_at_the_label_end_is_not_in_its_span():
    """Bug caught: `offset > end` for `offset >= end`, which adds the "," after " Sports"."""
    text, tokens = _echo([("Topic", None), (":", -1.0), (" Sports", -2.5), (",", -0.7)])
    boundary, end = len("Topic:"), len("Topic: Sports")
    assert tokens[3].offset == end
    score = echoed_label_score("Sports", boundary, end, align_echo(text, tokens))
    assert [s.token for s in score.path] == [" Sports"]
    assert score.logprob == -2.5


def test_an_echoed_token_ending_at_the_label_start_is_not_in_its_span():
    """The other edge. Bug caught: `end <= boundary` turned to `end < boundary`."""
    text, tokens = _echo([("Topic", None), (":", -1.0), (" Sp", -2.0), ("orts", -0.5), (".", -1)])
    aligned = align_echo(text, tokens)
    score = echoed_label_score("Sports", len("Topic:"), len("Topic: Sports"), aligned)
    assert [s.token for s in score.path] == [" Sp", "orts"]
    assert score.logprob == -2.5


def test_a_label_end_inside_a_token_keeps_that_token():
    """A token straddling the label's end carries part of the label: it is counted (and the
    span stops there), unlike one that starts at the end."""
    text, tokens = _echo([("Topic", None), (":", -1.0), (" Sp", -2.0), ("orts,", -0.5)])
    aligned = align_echo(text, tokens)
    score = echoed_label_score("Sports", len("Topic:"), len("Topic: Sports"), aligned)
    assert [s.token for s in score.path] == [" Sp", "orts,"]
