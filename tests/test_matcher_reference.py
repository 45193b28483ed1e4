"""Differential test: the matcher against an independent reference implementation."""

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
    " Art.",
    "Sports!",
    " Arts",
    " C++",
    "C+",
    "+",
    " AND",
    " or",
    " &",
    "/",
    " Straße",
    " STRASSE",
    "«",
    "\t",
    " 日本",
    "bytes:\\xe6\\x97",
    "bytes:\\xa5",
    "本",
    " caf",
    "bytes:\\xc3",
    "bytes:\\xa9",
]
LABELS = [
    "Sports",
    "Art",
    "Science",
    "Food",
    "tech",
    "article about history",
    "Arts",
    "C++",
    "日本",
    "中",
    "café",
]

# tokens printed lossily (U+FFFD for bytes that are no whole character, as vLLM and Ollama
# print them) with their real bytes: pieces of 日本 and 中, a label followed by the start of
# a character (open: never complete), and the end of an em dash
LOSSY = [
    (b"\xe6\x97", "\ufffd"),
    (b"\xa5", "\ufffd"),
    (b"\xe4\xb8", "\ufffd"),
    (b"\xad", "\ufffd"),
    (b" Sports\xe2\x80", " Sports\ufffd"),
    (b"Art\xf0\x9f", "Art\ufffd"),
    (b"\x94", "\ufffd"),
]

# a few round values make ties (between starts, variants, exact and bound) common
lp = st.floats(min_value=-20, max_value=0, allow_nan=False) | st.sampled_from(
    [0.0, -0.5, -1.0, -9999.0]  # -9999: a provider sentinel
)
# a top-k list may also be padded with fillers: float32's lowest, other huge negatives, -inf
alt_lp = lp | st.sampled_from([-3.4028234663852886e38, -1e30, -math.inf])


@st.composite
def token_entry(draw: st.DrawFn, logprobs: st.SearchStrategy[float]) -> dict[str, Any]:
    """A token as a server lists it: text only, or lossy text with its bytes."""
    if draw(st.integers(0, 5)) == 0:
        raw, text = draw(st.sampled_from(LOSSY))
        return {"token": text, "logprob": draw(logprobs), "bytes": list(raw)}
    return {"token": draw(st.sampled_from(PIECES)), "logprob": draw(logprobs)}


alternative = token_entry(alt_lp)


@st.composite
def position(draw: st.DrawFn) -> dict[str, Any]:
    sampled = draw(token_entry(lp))
    top = draw(st.lists(alternative, max_size=8))
    if draw(st.booleans()):  # providers list the sampled token among the alternatives
        top.insert(draw(st.integers(0, len(top))), dict(sampled))
    return {**sampled, "top_logprobs": top}


@settings(max_examples=500)
@given(st.lists(position(), max_size=10), *[st.booleans()] * 4)
def test_optimised_matcher_agrees_with_reference(
    positions: list[Any], ws: bool, cf: bool, qt: bool, ml: bool
) -> None:
    opts = {"strip_whitespace": ws, "casefold": cf, "strip_quotes": qt, "multi_label": ml}
    labels = LABELS if not cf else [x for x in LABELS if x != "tech"] + ["TECH", "Straße"]
    fast = match_labels(labels, positions, **opts)
    ref = reference_match(labels, positions, **opts)
    assert list(fast) == list(ref)
    for label in labels:
        a, b = fast[label], ref[label]
        assert a.status == b.status, (label, a, b)
        assert math.isclose(a.logprob, b.logprob, abs_tol=1e-12) or a.logprob == b.logprob
        assert math.isclose(a.lower, b.lower, abs_tol=1e-12) or a.lower == b.lower
        assert (a.start, a.variants, a.path) == (b.start, b.variants, b.path)
        assert a.note.startswith(b.note)  # the matcher adds sentinel and truncation notes
        assert a.variants == tuple(dict.fromkeys("".join(t) for t in a.variant_tokens))
