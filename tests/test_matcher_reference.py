"""Differential test: the optimised matcher against the straightforward reference."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from logprob_eval import match_labels

from .reference_matcher import reference_match

PIECES = [
    "Sp",
    "orts",
    " Sports",
    "Sports",
    " sports",
    "Art",
    " Art",
    " Art,",
    "Ar",
    "t",
    ",",
    " and",
    "\n",
    " ",
    '"',
    ' "',
    " Science",
    " Sci",
    "ence",
    "Food",
    " Fo",
    "od",
    "x",
    " the",
    "Sports,",
    "tech",
    " tech",
    "article",
    " about",
    " history",
    "",
]
LABELS = ["Sports", "Art", "Science", "Food", "tech", "article about history"]

lp = st.floats(min_value=-20, max_value=0, allow_nan=False)
position = st.fixed_dictionaries(
    {
        "token": st.sampled_from(PIECES),
        "logprob": lp,
        "top_logprobs": st.lists(
            st.fixed_dictionaries({"token": st.sampled_from(PIECES), "logprob": lp}), max_size=8
        ),
    }
)


@settings(max_examples=500)
@given(st.lists(position, max_size=10), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_optimised_matcher_agrees_with_reference(
    positions: list[Any], ws: bool, cf: bool, qt: bool, ml: bool
) -> None:
    opts = {"strip_whitespace": ws, "casefold": cf, "strip_quotes": qt, "multi_label": ml}
    labels = LABELS if not cf else [x for x in LABELS if x != "tech"] + ["TECH"]
    fast = match_labels(labels, positions, **opts)
    ref = reference_match(labels, positions, **opts)
    for label in labels:
        a, b = fast[label], ref[label]
        assert a.status == b.status, (label, a, b)
        assert math.isclose(a.logprob, b.logprob, abs_tol=1e-12) or a.logprob == b.logprob
        assert a.start == b.start
        assert set(a.variants) == set(b.variants)
