"""The matcher's memo of normalised tokens (kept across responses) gives what normalising
each token afresh gives: the same forms, and the same scores cold, warm or overflowing."""

from __future__ import annotations

import itertools
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from logprob_eval import match_labels
from logprob_eval.scoring import matcher as m
from logprob_eval.scoring.token_bytes import token_bytes

from .test_matcher_reference import LABELS, LOSSY, PIECES, position

OPTIONS = [m._Options(*flags) for flags in itertools.product([False, True], repeat=3)]
TOKENS = [(t, None) for t in [*PIECES, " «Sports»", " SPORTS", "\u00a0Art"]] + [
    (text, tuple(raw)) for raw, text in LOSSY
]


def test_memo_forms_are_the_plain_normalisation_on_a_miss_and_on_a_hit() -> None:
    for options in OPTIONS:
        forms = m._forms(options)
        forms.clear()
        for token, given_bytes in TOKENS:
            raw = token_bytes(token, given_bytes)
            plain = (options.first(raw), options.inner(raw))
            assert forms[token, given_bytes] == plain, (options, token)  # computed
            assert forms[token, given_bytes] == plain, (options, token)  # remembered
    # one memo per set of options: a token's forms under one never leak into another
    plain = m._Options(casefold=False, strip_whitespace=True, strip_quotes=False)
    casefold = m._Options(casefold=True, strip_whitespace=True, strip_quotes=False)
    assert m._forms(plain)[" Sports", None] == (b"Sports", b" Sports")
    assert m._forms(casefold)[" Sports", None] == (b"sports", b" sports")


def test_a_full_memo_starts_afresh() -> None:
    forms = m._forms(OPTIONS[0])
    with mock.patch.object(m, "_MAX_FORMS", 3):
        forms.clear()
        for token, given_bytes in TOKENS[:10]:
            assert forms[token, given_bytes][1] == token_bytes(token, given_bytes)
            assert len(forms) <= 3


@settings(max_examples=200)
@given(st.lists(position(), max_size=8), *[st.booleans()] * 4)
def test_scores_are_the_same_with_a_cold_a_warm_and_an_overflowing_memo(
    positions: list[Any], ws: bool, cf: bool, qt: bool, ml: bool
) -> None:
    opts = {"strip_whitespace": ws, "casefold": cf, "strip_quotes": qt, "multi_label": ml}
    m._forms(m._Options(cf, ws, qt)).clear()
    cold = match_labels(LABELS, positions, **opts)
    warm = match_labels(LABELS, positions, **opts)
    with mock.patch.object(m, "_MAX_FORMS", 1):  # forgets at every new token
        overflowing = match_labels(LABELS, positions, **opts)
    assert cold == warm == overflowing
