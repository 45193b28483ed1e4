"""The bound's evidence, one shape at a time: lists that leave no mass over (truncated or
rounded: the listed probabilities sum to 1 or more) and lists padded with sentinel fillers.

Each shape is tested on a hand-written fixture (``tests/provider_quirks.py``: written from
the documented shape, made-up numbers, NOT recordings) and, where
``../shared/real-responses`` holds a body of that shape, on that body too (those tests skip
with a message when ``../shared`` is absent). No body there is padded with fillers or comes
from LM Studio: those shapes are hand-written only.
"""

from __future__ import annotations

import json
import math

import pytest

from logprob_eval import match_labels, parse_ollama, parse_openai_chat
from logprob_eval.scoring.records import MASS_TOLERANCE, Position

from . import provider_quirks as q
from .test_conformance import SHARED, _parse, needs_shared

ABSENT = "Zqxjv label"  # begins with no token any fixture or body lists
NO_LEFTOVER = "no mass is known to be left over"
OLD_FLOOR = math.log(MASS_TOLERANCE)  # -11.51: what an empty leftover used to give


def _absent(positions: list[Position]):
    return match_labels([ABSENT], positions)[ABSENT]


# -- listed mass of 1 or more: the smallest real listed entry alone bounds --------------------


def _check_floor_bound(positions: list[Position], floor: float, *, truncated: bool) -> None:
    score = _absent(positions)
    assert score.status == "upper_bound" and score.lower == -math.inf
    assert score.logprob == floor
    assert score.logprob > OLD_FLOOR  # not the leftover floor the evidence does not support
    assert NO_LEFTOVER in score.note
    assert ("top_p=1" in score.note) is truncated
    assert positions[0].truncated is truncated


def test_tgi_single_entry_at_zero_hand_written():
    _check_floor_bound(parse_openai_chat(q.TGI_SINGLE_ENTRY), 0.0, truncated=True)


@needs_shared
def test_tgi_single_entry_at_zero_recorded():
    """TGI 2.0.4 with top_p=0.5 (chat_tgi-issue_1.json): "Deep" at 0.0, alone."""
    _check_floor_bound(_parse(SHARED / "chat_tgi-issue_1.json"), 0.0, truncated=True)


def test_ollama_probabilities_past_one_hand_written():
    # 0.905 + 0.368: the smallest listed entry, Hi at -1.0, bounds an unlisted token
    _check_floor_bound(parse_ollama(q.OLLAMA_PAST_ONE), -1.0, truncated=True)


@needs_shared
@pytest.mark.parametrize(
    ("name", "floor"),
    [("ollama_ollama-python_1.json", -1.0), ("ollama_ollama-python_2.json", -1.5)],
)
def test_ollama_probabilities_past_one_from_its_api_examples(name, floor):
    """Ollama's own API examples (its client library's mocks, typed by its maintainers)."""
    _check_floor_bound(_parse(SHARED / name), floor, truncated=True)


def test_lmstudio_rounded_to_exactly_one_hand_written():
    # 0.5 + 0.25 + 0.25 = 1: not truncated-looking, but nothing is left over either
    _check_floor_bound(
        parse_openai_chat(q.LMSTUDIO_ROUNDED_TO_ONE), math.log(0.25), truncated=False
    )


def test_lmstudio_rounded_past_one_hand_written():
    # 0.75 + 0.5 = 1.25: past the truncation tolerance, so it is flagged too
    _check_floor_bound(
        parse_openai_chat(q.LMSTUDIO_ROUNDED_PAST_ONE), math.log(0.5), truncated=True
    )


@needs_shared
@pytest.mark.parametrize(
    ("name", "n_rows", "n_looser"),
    [("chat_llamacpp-repro_1.json", 65, 2), ("chat_llamacpp-repro_2.json", 186, 8)],
)
def test_llamacpp_positions_summing_to_one_in_float_noise(name, n_rows, n_looser):
    """llama-server's top-5 lists (gemma-3-270m, Qwen3-1.7B) sum to within 1e-5 of 1, or
    above 1, at 65 and 186 positions: there the floor alone bounds, with the note on the
    row; at 2 and 8 of them the floor is above the old leftover floor (-11.51)."""
    positions = _parse(SHARED / name)
    rows = looser = 0
    for i, p in enumerate(positions):
        bound = p.unlisted()
        if not bound.no_leftover:
            continue
        assert 1.0 - bound.mass <= MASS_TOLERANCE and not bound.truncated  # noise, not top_p
        score = _absent(positions[i:])  # an answer that begins at this position
        assert score.logprob == bound.floor == min(a.logprob for a in p.top_k)
        assert NO_LEFTOVER in score.note and "top_p=1" not in score.note
        rows += 1
        looser += bound.floor > OLD_FLOOR
    assert (rows, looser) == (n_rows, n_looser)


@needs_shared
def test_cookbook_list_rounded_just_past_one():
    """gpt-4o-mini's top-2 in OpenAI's cookbook sums to 1 + 7e-9 ("Technology" at 0.0):
    the floor, -18.75, bounds (below the old leftover floor, so the value is unchanged)."""
    positions = _parse(SHARED / "chat_cookbook_1.json")
    assert 1.0 < positions[0].listed_mass <= 1.0 + 1e-8
    score = _absent(positions)
    assert score.logprob == -18.75 and NO_LEFTOVER in score.note


# -- padding sentinels: no listed tokens, no mass, no floor -----------------------------------

FILLER_IDS = list(q.FILLERS)
FILLERS = list(q.FILLERS.values())


@pytest.mark.parametrize("filler", FILLERS, ids=FILLER_IDS)
def test_fillers_do_not_lower_the_floor(filler):
    # real entries -0.05 and -5.0: the floor, -5.0, is tighter than the leftover (-3.17)
    top = [("Yes", -0.05), (" No", -5.0)]
    padded = parse_openai_chat(q.padded(filler, top))
    assert len(padded[0].top_logprobs) == 5 and len(padded[0].alternatives) == 2
    score = _absent(padded)
    assert score.logprob == -5.0
    assert "3 sentinel filler(s)" in score.note
    plain = parse_openai_chat(q.chat([q.entry("Yes", -0.05, top)]))
    assert _absent(plain).logprob == -5.0 and "filler" not in _absent(plain).note


@pytest.mark.parametrize("filler", FILLERS, ids=FILLER_IDS)
def test_fillers_carry_no_mass_and_leave_the_leftover_bound(filler):
    # real entries -0.2 and -2.0 leave 1 - 0.819 - 0.135 = 0.046 over: tighter than -2.0
    padded = parse_openai_chat(q.padded(filler, [("Yes", -0.2), (" No", -2.0)], n=17))
    want = math.log(1.0 - math.exp(-0.2) - math.exp(-2.0))
    assert padded[0].listed_mass == pytest.approx(math.exp(-0.2) + math.exp(-2.0), abs=1e-15)
    score = _absent(padded)
    assert score.logprob == pytest.approx(want, abs=1e-12)
    assert "17 sentinel filler(s)" in score.note


@pytest.mark.parametrize("filler", FILLERS, ids=FILLER_IDS)
def test_a_label_spelled_only_by_a_filler_is_not_listed(filler):
    """A filler's token text is no listed token: the label it spells is bounded like any
    unlisted one (the interval holds whether it was padding or a banned token)."""
    padded = parse_openai_chat(q.padded(filler, [("Yes", -0.2), (" No", -2.0)]))
    assert padded[0].top_logprobs[2].token == "<pad0>"
    score = match_labels(["<pad0>"], padded)["<pad0>"]
    assert score.status == "upper_bound" and score.path == ()
    assert score.logprob == _absent(padded).logprob
    assert match_labels(["No"], padded)["No"].logprob == -2.0  # real entries still score


@pytest.mark.parametrize("filler", FILLERS, ids=FILLER_IDS)
def test_padded_truncated_single_entry(filler):
    padded = parse_openai_chat(q.padded(filler, [("Deep", 0.0)], n=4))
    _check_floor_bound(padded, 0.0, truncated=True)
    assert "4 sentinel filler(s)" in _absent(padded).note


@pytest.mark.parametrize("filler", FILLERS, ids=FILLER_IDS)
def test_a_walk_that_diverges_at_a_padded_position_is_bounded_by_its_real_entries(filler):
    # " Sp" is sampled, then "ain" (Spain): "orts" is unlisted at position 1, padded there
    body = q.chat(
        [
            q.entry(" Sp", -0.3, [(" Sp", -0.3), (" Art", -1.5)]),
            q.entry("ain", -0.1, [("ain", -0.1), ("ace", -4.0), ("", filler), ("", filler)]),
        ]
    )
    score = match_labels(["Sports"], parse_openai_chat(body))["Sports"]
    assert score.status == "upper_bound"
    assert score.logprob == pytest.approx(-0.3 - 4.0, abs=1e-12)
    assert "position 1: 2 sentinel filler(s)" in score.note
    assert [s.token for s in score.path] == [" Sp"]


def test_minus_infinity_in_a_json_body_is_a_filler():
    """Python servers print -inf as -Infinity, which json reads; in a top-k list it pads."""
    raw = '{"logprobs": [{"token": "Yes", "logprob": -0.05, "top_logprobs": [' + (
        '{"token": "Yes", "logprob": -0.05}, {"token": "No", "logprob": -5.0}, '
        '{"token": "", "logprob": -Infinity}]}]}'
    )
    positions = parse_ollama(json.loads(raw))
    assert positions[0].unlisted().fillers == 1
    assert _absent(positions).logprob == -5.0
