from __future__ import annotations

import math

import pytest

from logprob_eval import ConfigError, LabelScore, Position, ResponseFormatError, match_labels
from logprob_eval.scoring.matcher import match_label

from .helpers import pos
from .notebook_matcher import NOT_FOUND, notebook_match

LSE = lambda *xs: math.log(sum(math.exp(x) for x in xs))  # noqa: E731


def test_sampled_path_spelling_label_is_exact_sum():
    positions = [pos(" Sp", -0.2), pos("orts", -0.1), pos("\n", -0.5)]
    score = match_label("Sports", positions)
    assert score.status == "exact"
    assert score.logprob == pytest.approx(-0.3)
    assert [s.token for s in score.path] == [" Sp", "orts"]
    assert score.start == 0
    assert not score.conditional
    assert score.method == "generation"


def test_alternative_completing_label_at_first_position_is_exact():
    positions = [pos(" Politics", -0.1, (" Sports", -2.5))]
    score = match_label("Sports", positions)
    assert (score.status, score.logprob) == ("exact", -2.5)
    assert score.path[0].sampled is False


def test_non_sampled_prefix_alternative_is_upper_bound_and_walk_stops():
    # " Sp" is an alternative at 0; position 1 is conditioned on " Politics", not on " Sp",
    # so its "orts" must not be used.
    positions = [pos(" Politics", -0.1, (" Sp", -2.5)), pos(",", -0.3, ("orts", -0.01))]
    score = match_label("Sports", positions)
    assert score.status == "upper_bound"
    assert score.logprob == pytest.approx(-2.5)


def test_divergence_inside_label_uses_only_that_positions_alternatives():
    # sampled " Sp" then "ain" (Spain); at the divergence "orts" is an alternative.
    positions = [
        pos(" Sp", -0.2, (" Sports", -2.0)),
        pos("ain", -0.1, ("orts", -2.5)),
        pos("!", -0.1, ("orts", -0.0001)),
    ]
    score = match_label("Sports", positions)
    assert score.status == "exact"
    assert score.logprob == pytest.approx(LSE(-2.0, -0.2 - 2.5))
    assert set(score.variants) == {" Sports"} | {" Sp" + "orts"}


def test_divergence_with_no_matching_alternative_bounds_by_min_listed():
    positions = [pos(" Sp", -0.2), pos("ain", -0.1, ("ice", -3.0), ("ace", -4.0))]
    score = match_label("Sports", positions)
    assert score.status == "upper_bound"
    assert score.logprob == pytest.approx(-0.2 - 4.0)


def test_label_absent_from_top_k_gets_min_listed_bound():
    positions = [pos(" Politics", -0.1, (" Art", -3.0), (" Food", -5.5)), pos(",", -0.1)]
    score = match_label("History", positions)
    assert score.status == "upper_bound"
    assert score.logprob == -5.5
    assert "not among" in score.note


def test_no_positions_is_missing_not_a_sentinel():
    scores = match_labels(["Sports", "Art"], [])
    for s in scores.values():
        assert s.status == "missing"
        assert s.logprob == -math.inf
        assert s.path == () and s.start is None  # no path was walked: nothing to cite


def test_whitespace_variants_combine_by_logsumexp():
    positions = [pos(" Sports", -0.5, ("Sports", -1.5), ("  Sports", -4.0), (" Art", -2.0))]
    score = match_label("Sports", positions)
    assert score.status == "exact"
    assert score.logprob == pytest.approx(LSE(-0.5, -1.5, -4.0))
    assert len(score.variants) == 3


def test_whitespace_stripping_can_be_turned_off():
    positions = [pos(" Sports", -0.5, ("Sports", -1.5))]
    score = match_label("Sports", positions, strip_whitespace=False)
    assert score.logprob == pytest.approx(-1.5)


def test_case_variants_only_with_casefold():
    positions = [pos(" Sports", -0.5, (" sports", -1.5), (" SPORTS", -3.0))]
    assert match_label("Sports", positions).logprob == pytest.approx(-0.5)
    assert match_label("Sports", positions, casefold=True).logprob == pytest.approx(
        LSE(-0.5, -1.5, -3.0)
    )


def test_quote_stripping_option():
    positions = [pos(' "', -0.3, (' "Sports', -2.0)), pos("Sports", -0.2)]
    plain = match_label("Sports", positions)
    quoted = match_label("Sports", positions, strip_quotes=True)
    # without the option the label still starts after the quote token (a separator)
    assert plain.status == "exact"
    assert plain.logprob == pytest.approx(-0.2)
    assert plain.start == 1
    # with it, the quote-led token at position 0 is a variant too, and position 0 can
    # start the label: ' "' + 'Sports' is one more way
    assert quoted.logprob == pytest.approx(LSE(-2.0, -0.3 - 0.2))
    assert quoted.start == 0


def test_second_label_after_separator_is_conditional():
    positions = [
        pos(" Sports", -0.1, (" Education", -2.0)),
        pos(",", -0.4, ("\n", -1.0)),
        pos(" Education", -0.6, (" Health", -1.2)),
    ]
    scores = match_labels(["Sports", "Education", "Health"], positions)
    assert scores["Sports"].logprob == pytest.approx(-0.1)
    edu = scores["Education"]
    assert edu.logprob == pytest.approx(-0.6)  # best start: position 2 beats -2.0 at 0
    assert edu.start == 2
    assert edu.conditional
    assert "conditional" in edu.note
    assert scores["Health"].start == 2
    assert scores["Health"].status == "exact"


@pytest.mark.parametrize("sep", [",", ";", " and", "\n", " or", " /", " -"])
def test_separators_open_a_new_start(sep):
    positions = [pos(" Sports", -0.1), pos(sep, -0.2), pos(" Art", -0.3)]
    assert match_label("Art", positions).start == 2


def test_no_new_start_mid_word():
    positions = [pos(" Sports", -0.1), pos("man", -0.2, ("Art", -0.5))]
    score = match_label("Art", positions)
    # position 1 follows "Sports" with no separator: it is not a start
    assert score.status == "upper_bound"
    assert score.start == 0


def test_multi_label_off_scores_only_the_first_answer():
    positions = [pos(" Sports", -0.1), pos(",", -0.2), pos(" Art", -0.3)]
    assert match_label("Art", positions, multi_label=False).status == "upper_bound"


def test_truncated_answer_bounds_label_by_its_prefix():
    positions = [pos(" article", -0.2), pos(" about", -0.1)]
    score = match_label("article about technology", positions)
    assert score.status == "upper_bound"
    assert score.logprob == pytest.approx(-0.3)


def test_token_running_past_label_with_punctuation_completes_it():
    positions = [pos(" Art", -0.7, (" Art,", -1.0), (" Artificial", -0.9))]
    score = match_label("Art", positions)
    assert score.logprob == pytest.approx(LSE(-0.7, -1.0))


def test_duplicate_listing_of_sampled_token_is_not_double_counted():
    p = {
        "token": " Art",
        "logprob": -0.5,
        "top_logprobs": [
            {"token": " Art", "logprob": -0.5000001},
            {"token": " Art", "logprob": -0.5},
        ],
    }
    assert match_label("Art", [p]).logprob == pytest.approx(-0.5)


def test_positions_may_be_records_or_dicts():
    rec = Position(" Art", -0.5)
    assert match_label("Art", [rec]).logprob == match_label("Art", [pos(" Art", -0.5)]).logprob


def test_result_keeps_label_order_and_type():
    scores = match_labels(["b", "a", "c"], [pos(" a", -0.1)])
    assert list(scores) == ["b", "a", "c"]
    assert all(isinstance(s, LabelScore) for s in scores.values())


@pytest.mark.parametrize("labels", [["Art", "Art "], ["", "Art"], "Art", [3]])
def test_bad_labels_are_config_errors(labels):
    with pytest.raises(ConfigError, match="label"):
        match_labels(labels, [pos(" Art", -0.1)])


def test_malformed_positions_name_the_field():
    with pytest.raises(ResponseFormatError, match=r"positions\[1\]\.top_logprobs\[0\]\.logprob"):
        match_labels(
            ["Art"],
            [
                pos(" Art", -0.1),
                {"token": "x", "logprob": -1, "top_logprobs": [{"token": "y", "logprob": "?"}]},
            ],
        )


def test_positive_logprob_is_rejected():
    with pytest.raises(ResponseFormatError, match="not a log-probability"):
        match_labels(["Art"], [{"token": "Art", "logprob": 0.7}])


def test_regression_notebook_greedy_matcher_is_wrong_on_divergent_path():
    """The notebook adds a non-sampled alternative and keeps walking; we stop and bound."""
    positions = [
        pos(" Politics", -0.2, (" Sp", -2.5)),  # model wrote Politics; " Sp" is an alternative
        pos(",", -0.1, ("orts", -0.05)),  # conditioned on " Politics", NOT on " Sp"
    ]
    old = notebook_match(["Sports"], positions)["Sports"]
    new = match_label("Sports", positions)
    assert old == pytest.approx(-2.55)  # claims a full-label score from an invalid path
    assert new.status == "upper_bound"
    assert new.logprob == pytest.approx(-2.5)
    # and a label it cannot finish poisons downstream numbers with -999
    assert notebook_match(["History"], positions)["History"] == NOT_FOUND
    assert math.isfinite(match_label("History", positions).logprob)
