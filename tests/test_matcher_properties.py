"""Hypothesis properties of the token-path matcher."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from logprob_eval import LogprobEvalError, ResponseFormatError, match_labels
from logprob_eval.scoring.matcher import SEPARATOR_PATTERN, _ends_with_separator, match_label
from logprob_eval.scoring.parsing import parse_positions
from logprob_eval.scoring.records import logsumexp

from .reference_matcher import reference_match

LABEL_CHARS = "bcdfghjklm"  # no vowels: labels never contain separator words like "and"
OTHER_CHARS = "nopqrstvwxyz"  # alternatives built from these can never match a label

logprobs = st.floats(min_value=-30.0, max_value=0.0, allow_nan=False)
# entries of a top-k list may be padding: sentinel fillers (no listed tokens, no mass)
listed_logprobs = logprobs | st.sampled_from([-9999.0, -3.4028234663852886e38, -math.inf])


@st.composite
def spelled_label(draw: Any) -> tuple[str, list[str]]:
    pieces = draw(st.lists(st.text(LABEL_CHARS, min_size=1, max_size=4), min_size=1, max_size=5))
    return "".join(pieces), pieces


def other_alts(n_max: int = 6) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(
        st.fixed_dictionaries(
            {
                "token": st.text(OTHER_CHARS, min_size=1, max_size=5).map(lambda t: " " + t),
                "logprob": logprobs,
            }
        ),
        max_size=n_max,
    )


@given(spelled_label(), st.data())
def test_label_spelled_by_sampled_tokens_scores_their_sum(lab: Any, data: Any) -> None:
    label, pieces = lab
    positions = []
    for i, piece in enumerate(pieces):
        lp = data.draw(logprobs)
        token = (" " + piece) if i == 0 else piece
        alts = data.draw(other_alts())
        positions.append(
            {
                "token": token,
                "logprob": lp,
                "top_logprobs": [{"token": token, "logprob": lp}, *alts],
            }
        )
    score = match_label(label, positions)
    assert score.status == "exact"
    assert score.logprob == sum(p["logprob"] for p in positions) or math.isclose(
        score.logprob, sum(p["logprob"] for p in positions), abs_tol=1e-9
    )


token_text = st.text(st.characters(codec="utf-8"), max_size=6)
stream_position = st.fixed_dictionaries(
    {"token": token_text, "logprob": logprobs},
    optional={
        "top_logprobs": st.lists(
            st.fixed_dictionaries({"token": token_text, "logprob": listed_logprobs}), max_size=25
        )
    },
)
labels_strategy = st.lists(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=8).filter(lambda s: s.strip()),
    min_size=1,
    max_size=5,
    unique_by=lambda s: s.strip(),
)


@given(labels_strategy, st.lists(stream_position, max_size=12))
def test_scores_are_at_most_zero_and_never_nan(labels: list[str], positions: list[Any]) -> None:
    ref = reference_match(labels, positions)
    for label, s in match_labels(labels, positions).items():
        assert not math.isnan(s.logprob)
        assert s.logprob <= 0.0
        assert s.status in {"exact", "upper_bound", "missing"}
        # and the value is the rule's (the straightforward reference implementation's)
        assert s.status == ref[label].status
        assert math.isclose(s.logprob, ref[label].logprob, abs_tol=1e-12) or (
            s.logprob == ref[label].logprob
        )


@given(labels_strategy, st.lists(stream_position, min_size=1, max_size=10), st.data())
def test_adding_non_matching_alternatives_never_raises_a_score(
    labels: list[str], positions: list[Any], data: Any
) -> None:
    """Listing more tokens that spell no label, below every listed one, leaves exact scores
    as they are and can only tighten a bound (less mass left over, a lower top-k minimum),
    while the list still leaves mass over. (Tokens listed *above* a lone sampled token can
    loosen a bound: they reveal that the sampled token may rank outside the top-k; and
    tokens that bring the listed mass to 1 leave nothing known over, so only the floor
    bounds there.)"""
    before = match_labels(labels, positions)
    label_chars = set("".join(labels).casefold())
    i = data.draw(st.integers(0, len(positions) - 1))
    target = positions[i]
    listed = [target["logprob"]] + [a["logprob"] for a in target.get("top_logprobs", [])]
    floor = min(lp for lp in listed if lp > -9999.0) if max(listed) > -9999.0 else 0.0
    extra_chars = [c for c in "nopqrstvwxyz0123456789" if c not in label_chars]
    assume(extra_chars)
    extra = data.draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "token": st.text(st.sampled_from(extra_chars), min_size=1, max_size=4),
                    "logprob": st.floats(min_value=-40.0, max_value=floor),
                }
            ),
            min_size=1,
            max_size=5,
        )
    )
    changed = [dict(p) for p in positions]
    changed[i] = {**target, "top_logprobs": [*target.get("top_logprobs", []), *extra]}
    after = match_labels(labels, changed)
    leaves_mass = not parse_positions([changed[i]])[0].unlisted().no_leftover
    for label in labels:
        assert after[label].status == before[label].status
        if before[label].status == "exact":
            assert math.isclose(after[label].logprob, before[label].logprob, abs_tol=1e-12)
        elif leaves_mass:
            assert after[label].logprob <= before[label].logprob + 1e-12
        assert math.isclose(after[label].lower, before[label].lower, abs_tol=1e-12) or (
            after[label].lower == before[label].lower
        )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
loose_position = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(["token", "logprob", "top_logprobs", "bytes"]), json_values),
    stream_position,
)


@given(
    st.one_of(labels_strategy, json_values),
    st.one_of(st.lists(loose_position, max_size=6), json_values),
)
def test_only_library_errors_escape(labels: Any, positions: Any) -> None:
    with contextlib.suppress(LogprobEvalError):
        match_labels(labels, positions)


odd_scalar = st.sampled_from([True, False, math.nan, 0.5, 1e-9, -0.0, 0, -3, "x", None, b"a"])
valid_alt = st.fixed_dictionaries({"token": st.text(max_size=3), "logprob": logprobs | st.just(0)})
valid_position = st.fixed_dictionaries(
    {"token": st.text(max_size=3), "logprob": logprobs | st.just(0)},
    optional={"top_logprobs": st.lists(valid_alt, max_size=4), "bytes": st.just([65])},
)


@st.composite
def one_odd_value(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A well-formed response with (mostly) one value replaced: the hard case for a fast
    reader, which must reject exactly what the parser rejects."""
    positions = draw(st.lists(valid_position, min_size=1, max_size=4))
    if draw(st.integers(0, 3)) == 0:
        return positions
    odd = draw(st.one_of(odd_scalar, odd_scalar, odd_scalar, json_values))
    entry = positions[draw(st.integers(0, len(positions) - 1))]
    alts = entry.get("top_logprobs")
    where = draw(st.sampled_from(["alt", "alt", "alt", "token", "logprob", "top_logprobs", "drop"]))
    if where == "alt" and alts:
        alt = alts[draw(st.integers(0, len(alts) - 1))]
        key = draw(st.sampled_from(["token", "logprob", "whole", "drop"]))
        if key == "whole":
            alts[alts.index(alt)] = odd
        elif key == "drop":
            del alt[draw(st.sampled_from(["token", "logprob"]))]
        else:
            alt[key] = odd
    elif where == "drop":
        del entry[draw(st.sampled_from(["token", "logprob"]))]
    elif where != "alt":
        entry[where] = odd
    return positions


@settings(max_examples=500)
@given(one_odd_value())
def test_dict_reader_accepts_exactly_what_the_parser_accepts(positions: Any) -> None:
    """The matcher rejects exactly what the validating parser rejects (with its
    field-naming error), and accepted dicts score the same as their parsed records."""
    labels = ["Art", "Sports"]
    try:
        records = parse_positions(positions)
    except ResponseFormatError as exc:
        with pytest.raises(ResponseFormatError) as got:
            match_labels(labels, positions)
        assert str(got.value) == str(exc)
        return
    got = match_labels(labels, positions)
    assert got == match_labels(labels, records)
    for score in got.values():  # ints in the JSON come out as floats, as from the parser
        assert type(score.logprob) is float
        assert all(type(step.logprob) is float for step in score.path)


@given(st.lists(st.text(max_size=4), max_size=5), st.integers(1, 60), st.data())
def test_huge_top_k_duplicates_and_empty_tokens(tokens: list[str], k: int, data: Any) -> None:
    pool = [*tokens, "", " ", "Art", " Art", "Art"]
    positions = [
        {
            "token": data.draw(st.sampled_from(pool)),
            "logprob": data.draw(logprobs),
            "top_logprobs": [
                {"token": data.draw(st.sampled_from(pool)), "logprob": data.draw(logprobs)}
                for _ in range(k)
            ],
        }
        for _ in range(data.draw(st.integers(0, 4)))
    ]
    ref = reference_match(["Art", "Sports"], positions)
    for label, s in match_labels(["Art", "Sports"], positions).items():
        assert s.logprob <= 0.0
        assert not math.isnan(s.logprob)
        assert (s.status, s.path) == (ref[label].status, ref[label].path)
        assert math.isclose(s.logprob, ref[label].logprob, abs_tol=1e-12) or (
            s.logprob == ref[label].logprob
        )


@given(spelled_label(), logprobs, logprobs, st.data())
def test_prefix_only_alternative_is_never_exact(
    lab: Any, lp_alt: float, lp_samp: float, data: Any
) -> None:
    label, _pieces = lab
    assume(len(label) >= 2)
    cut = data.draw(st.integers(1, len(label) - 1))
    prefix = label[:cut]
    positions = [
        {
            "token": " zz",
            "logprob": lp_samp,
            "top_logprobs": [{"token": " " + prefix, "logprob": lp_alt}],
        },
        {"token": label[cut:], "logprob": -0.01},  # conditioned on " zz": unusable
    ]
    score = match_label(label, positions)
    assert score.status == "upper_bound"
    assert math.isclose(score.logprob, lp_alt, abs_tol=1e-12)


@given(labels_strategy, st.lists(stream_position, min_size=1, max_size=10))
def test_exact_scores_follow_a_valid_path(labels: list[str], positions: list[Any]) -> None:
    """An exact path: consecutive positions, every step but the last one sampled."""
    for s in match_labels(labels, positions).values():
        if s.status != "exact":
            continue
        steps = s.path
        assert steps
        assert [st_.position for st_ in steps] == list(
            range(steps[0].position, steps[0].position + len(steps))
        )
        assert all(step.sampled for step in steps[:-1])
        assert steps[0].position == s.start


@given(
    st.text(
        st.sampled_from(list(",;:/|[](){}\"'`*•-.\n\t &abdnorDRAN_9é\u00a0\u2003\x1c")), max_size=12
    )
)
def test_separator_shortcut_agrees_with_the_pattern(text: str) -> None:
    assert _ends_with_separator(text) == bool(SEPARATOR_PATTERN.search(text))


@given(st.lists(st.floats(min_value=-50.0, max_value=0.0) | st.just(-math.inf), max_size=6))
def test_logsumexp_is_the_log_of_the_summed_probabilities(values: list[float]) -> None:
    total = math.fsum(math.exp(v) for v in values)
    got = logsumexp(values)
    if total == 0.0:
        assert got == -math.inf
    else:
        assert math.isclose(got, math.log(total), rel_tol=1e-12, abs_tol=1e-12)
    assert got == logsumexp(iter(values)) == logsumexp(reversed(values))
