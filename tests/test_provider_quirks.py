"""Each provider quirk on a hand-written fixture (tests/provider_quirks.py), without
``../shared``: sampled tokens outside the top-k, BOS in echoes, sentinels, split characters,
and the shapes that carry no log-probs or other ones."""

from __future__ import annotations

import math

import pytest

from logprob_eval import ResponseFormatError, match_labels
from logprob_eval.scoring.echo import align_echo, echoed_label_score
from logprob_eval.scoring.parsing import (
    EchoedToken,
    parse_completion_echo,
    parse_completion_positions,
    parse_openai_chat,
    parse_position,
)
from logprob_eval.scoring.records import LabelScore, Position, logsumexp

from . import provider_quirks as q


def _score(body, label, **options):
    return match_labels([label], parse_openai_chat(body), **options)[label]


# 1. bounds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [q.OUTSIDE_TOP_K_OPENAI, q.OUTSIDE_TOP_K_VLLM], ids=["openai", "vllm"]
)
def test_sampled_token_outside_the_top_k_is_no_bound(body):
    # the top-2 are I (-2.2) and The (-3.5): an unlisted token may reach -3.5, not only -6.9
    score = _score(body, "Sports")
    assert score.status == "upper_bound"
    assert score.logprob == -3.5
    assert score.lower == -math.inf


def test_leftover_mass_bounds_when_it_is_tighter():
    pos = parse_position({"token": "A", "logprob": math.log(0.9), "top_logprobs": []})
    assert pos.unlisted_bound() == pytest.approx(math.log(0.1))  # empty top-k: leftover only
    pos = parse_position(
        {
            "token": "A",
            "logprob": math.log(0.6),
            "top_logprobs": [
                {"token": "A", "logprob": math.log(0.6)},
                {"token": "B", "logprob": math.log(0.35)},
            ],
        }
    )
    assert pos.unlisted_bound() == pytest.approx(math.log(0.05))  # 1 - 0.95 < 0.35


def test_a_sampled_token_listed_within_the_top_k_still_bounds():
    # greedy decoding, top-1: the sampled token is the top-1, and unlisted ones are below it
    pos = parse_position(
        {
            "token": "A",
            "logprob": math.log(0.3),
            "top_logprobs": [{"token": "A", "logprob": math.log(0.3)}],
        }
    )
    assert pos.top_k == pos.top_logprobs
    assert pos.unlisted_bound() == pytest.approx(math.log(0.3))


# 2. lower ends --------------------------------------------------------------------------------


def test_exact_path_with_a_prefix_alternative_is_a_narrow_interval():
    # the cookbook's shape: sampled "Politics", alternative "Polit" (a prefix: a bound)
    body = q.chat([q.entry("Politics", -0.01, [("Politics", -0.01), ("Polit", -6.0)])])
    score = _score(body, "Politics")
    assert score.status == "upper_bound"
    assert score.lower == -0.01
    assert score.logprob == pytest.approx(logsumexp([-0.01, -6.0]))


def test_label_score_lower_defaults_follow_the_status():
    assert LabelScore("a", -1.0, "exact").lower == -1.0
    assert LabelScore("a", -1.0, "upper_bound").lower == -math.inf
    with pytest.raises(ValueError, match="lower"):
        LabelScore("a", -1.0, "upper_bound", lower=-0.5)
    with pytest.raises(ValueError, match="exact"):
        LabelScore("a", -1.0, "exact", lower=-2.0)


# 3. sentinels ---------------------------------------------------------------------------------


def test_sentinels_are_no_mass_and_noted():
    pos = parse_openai_chat(q.SENTINELS)
    assert [a.logprob for a in pos[0].top_logprobs][1:] == [-math.inf, -math.inf]
    scores = match_labels(["Yes", "No", "Maybe"], pos)
    # the sentinels pad the list: "No" is no listed token, and neither it nor "Maybe" is
    # bounded by them; the one real entry leaves 1 - e^-0.01 over
    leftover = math.log(1 - math.exp(-0.01))
    for label in ("No", "Maybe"):
        assert scores[label].status == "upper_bound" and scores[label].lower == -math.inf
        assert scores[label].logprob == pytest.approx(leftover, abs=1e-12)
        assert "2 sentinel filler(s)" in scores[label].note
    assert scores["Yes"].logprob == -0.01


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 0.5])
def test_non_finite_or_positive_logprobs_still_raise(bad):
    with pytest.raises(ResponseFormatError, match=r"positions\[0\]\.logprob"):
        parse_position({"token": "a", "logprob": bad})


def test_echoed_sentinel_is_no_mass():
    body = q.VLLM_ECHO_BOS | {}
    body["choices"] = [dict(body["choices"][0])]
    body["choices"][0]["logprobs"] = dict(
        body["choices"][0]["logprobs"], token_logprobs=[None, -7.0, -1.0, -9999.0]
    )
    text, tokens = parse_completion_echo(body)[0]
    score = echoed_label_score("Sports", len("Topic:"), len(text), align_echo(text, tokens))
    assert score.logprob == -math.inf and "sentinel" in score.note


# 4. echo alignment ----------------------------------------------------------------------------


def test_vllm_bos_in_tokens_but_not_in_text_is_realigned():
    text, tokens = parse_completion_echo(q.VLLM_ECHO_BOS)[0]
    aligned = align_echo(text, tokens)
    assert [(t.token, t.offset) for t in aligned] == [("Topic", 0), (":", 5), (" Sports", 6)]
    assert echoed_label_score("Sports", 6, len(text), aligned).logprob == -2.5


def test_unreconcilable_offsets_raise_naming_the_position():
    tokens = [
        EchoedToken("Topic", 0, None),
        EchoedToken(":", 7, -1.0),
        EchoedToken(" Art", 6, -2.0),
    ]
    with pytest.raises(ResponseFormatError, match=r"token 1 \(':'\)") as err:
        align_echo("Topic: Sports", tokens, server="vllm:x")
    assert err.value.field == "choices[].logprobs.text_offset[1]"
    assert "vllm:x" in str(err.value)


def test_joined_tokens_locate_the_label_when_offsets_are_missing_the_bos():
    # a server that counts offsets from 0 after a BOS it also echoes without text
    tokens = [
        EchoedToken("<s>", 0, None),
        EchoedToken("Hi", 0, -1.0),
        EchoedToken(" there", 2, -2.0),
    ]
    aligned = align_echo("Hi there", tokens)
    assert [(t.token, t.offset) for t in aligned] == [("Hi", 0), (" there", 2)]


def test_null_first_logprob_is_no_context_not_an_error_unless_needed():
    tokens = [EchoedToken("Hi", 0, None), EchoedToken(" there", 2, -2.0)]
    assert echoed_label_score("there", 2, 8, tokens).logprob == -2.0
    with pytest.raises(ResponseFormatError, match="first of the text"):
        echoed_label_score("Hi", 0, 2, tokens)


def test_positions_parser_refuses_an_echo_body_with_the_echo_hint():
    with pytest.raises(ResponseFormatError, match="parse_completion_echo"):
        parse_completion_positions(q.VLLM_ECHO_BOS)


# 5. bytes -------------------------------------------------------------------------------------


def test_label_over_tokens_that_split_a_character_scores_exactly():
    score = _score(q.SPLIT_CHARACTER, "日本")
    assert score.status == "exact"
    assert score.logprob == pytest.approx(-0.5 - 0.1 - 0.2)
    assert [s.token for s in score.path] == ["bytes:\\xe6\\x97", "bytes:\\xa5", "本"]
    assert _score(q.SPLIT_CHARACTER, "中").logprob == -1.5  # an alternative, matched on bytes


def test_bytes_escapes_are_read_without_a_bytes_field():
    pos = [
        Position("bytes:\\xc3", -0.3),
        Position("bytes:\\xa9", -0.2),
    ]
    score = match_labels(["é"], pos)["é"]
    assert score.status == "exact" and score.logprob == pytest.approx(-0.5)


# 6. other shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (q.REFUSAL, "refused"),
        (q.TOOL_CALL, "tool_choice='none'"),
        (q.LOGPROBS_IGNORED, "ignored the log-prob request"),
    ],
    ids=["refusal", "tool-call", "logprobs-null"],
)
def test_shapes_without_logprobs_name_the_cause(body, hint):
    with pytest.raises(ResponseFormatError, match=hint):
        parse_openai_chat(body)


def test_stream_chunks_are_one_response():
    pos = parse_openai_chat(q.STREAM_CHUNKS)
    assert [p.token for p in pos] == [" Sp", "orts"]
    assert match_labels(["Sports"], pos)["Sports"].logprob == pytest.approx(-0.4)


def test_stream_without_logprobs_says_so():
    with pytest.raises(ResponseFormatError, match="empty in all 1 chunks"):
        parse_openai_chat(q.STREAM_CHUNKS[:1])


def test_legacy_shaped_chat_reply_is_parsed():
    pos = parse_openai_chat(q.LEGACY_CHAT)
    assert match_labels(["Sports"], pos)["Sports"].logprob == pytest.approx(-0.4)


def test_byte_level_pieces_are_decoded():
    pos = parse_openai_chat(q.BYTE_LEVEL)
    assert [a.token for a in pos[0].top_logprobs] == ["Sports", " Sports", "\nArt"]
    score = match_labels(["Sports", "Art"], pos)
    assert score["Sports"].logprob == pytest.approx(logsumexp([-0.3, -2.0]))
    assert score["Art"].logprob == -3.0 and score["Art"].status == "exact"


def test_decoded_text_is_left_alone_when_no_piece_is_raw():
    pos = parse_openai_chat(q.chat([q.entry("café", -0.2, [("café", -0.2)])]))
    assert pos[0].token == "café"


@pytest.mark.parametrize(
    "body", [q.TRUNCATED_ONE_ENTRY, q.TRUNCATED_ABOVE_ONE], ids=["one-entry", "above-one"]
)
def test_truncated_distributions_are_noted(body):
    pos = parse_openai_chat(body)
    assert pos[0].truncated
    score = match_labels(["Sports", "Health"], pos)
    assert "top_p=1" in score["Sports"].note and "top_p=1" in score["Health"].note


def test_an_ordinary_distribution_is_not_truncated():
    assert not parse_openai_chat(q.OUTSIDE_TOP_K_OPENAI)[0].truncated
