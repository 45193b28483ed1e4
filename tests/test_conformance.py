"""Conformance with real servers' responses: every body in ``../shared/real-responses/``.

The folder (next to the repository; CI has it) holds response bodies taken from public
sources: OpenAI chat completions recorded by the official SDK's tests, llama.cpp
``llama-server`` runs of gemma-3-270m and Qwen3-1.7B, vLLM (served through KServe), TGI,
lmdeploy, Together, legacy completions with ``echo`` from vLLM, OpenAI completions, and
Ollama's own mocks (its ``SOURCES.md`` says which were recorded and which typed by hand).
They are read from there, never copied into the project.

Per file, the invariants that hold by definition are checked: the parser accepts it or
raises the typed error it should, with the right hint; a label equal to the sampled first
token scores that token's log-prob (with the same-position variants) as its exact lower
end, and is exact unless a listed token is only a prefix of it; a label spelled only by an
alternative scores its log-prob the same way; an absent label gets the bound of the rule,
computed independently (``tests/reference_matcher.rule_bound``), at every position, with a
note where the listed mass is 1 or more; no score is NaN or a sentinel; echoed label sums
follow the text offsets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from logprob_eval import ResponseFormatError, match_labels
from logprob_eval.scoring.echo import align_echo, echoed_label_score
from logprob_eval.scoring.parsing import (
    parse_completion_echo,
    parse_completion_positions,
    parse_ollama,
    parse_openai_chat,
)
from logprob_eval.scoring.records import Position, logsumexp
from logprob_eval.scoring.token_bytes import token_bytes

from .reference_matcher import rule_bound

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "real-responses"
FILES = sorted(SHARED.glob("*.json")) if SHARED.is_dir() else []
needs_shared = pytest.mark.skipif(
    not FILES, reason=f"no reference responses at {SHARED} (CI has them next to the repo)"
)

# files whose parse must fail, with a phrase of the hint the error must carry
EXPECTED_ERRORS = {
    "chat_openai-python_2.json": "refused",  # logprobs.content null, logprobs.refusal set
    "chat_openai-python_3.json": "tool call",  # logprobs null beside message.tool_calls
    "completions_llamacpp-issue_1.json": "ignored",  # llama-server ignored logprobs
}
# legacy completions with echo=true: generated positions refuse them, the echo path reads them
ECHO_FILES = {
    "completions_kserve-vllm_1.json",
    "completions_vllm-issue_1.json",
    "completions_vllm-issue_2.json",
}
ABSENT = "Zqxjv label"  # begins with no token any of these servers lists


def _body(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _parse(path: Path) -> list[Position]:
    body = _body(path)
    if path.name.startswith("ollama_"):
        return parse_ollama(body)
    if path.name.startswith("chat_"):
        return parse_openai_chat(body)
    return parse_completion_positions(body)


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _text(token: str, given: tuple[int, ...] | None) -> str | None:
    try:
        return token_bytes(token, given).decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


def _same_position_mass(pos: Position, label: str) -> tuple[float, bool]:
    """The log-sum-exp of the tokens at ``pos`` that spell ``label`` (whitespace aside), and
    whether another listed token is only a prefix of it (which makes the score a bound)."""
    spelled, prefix = [], False
    for alt in pos.alternatives:
        text = _text(alt.token, alt.bytes)
        if text and text.startswith(label) and not any(c.isalnum() for c in text[len(label) :]):
            spelled.append(alt.logprob)  # the label, perhaps with punctuation after it
        elif text and label.startswith(text):
            prefix = True
    return min(0.0, logsumexp(spelled)), prefix  # float noise above 0 is clamped, as scores are


def _check_label_at_first_position(pos: list[Position], label: str, exact_contribution: bool):
    first = pos[0]
    score = match_labels([label], pos, multi_label=False)[label]
    value, prefix = _same_position_mass(first, label)
    assert math.isclose(score.lower, value, abs_tol=1e-9), (label, score)
    if prefix or not exact_contribution:
        assert score.status == "upper_bound" and score.logprob >= score.lower
    else:
        assert score.status == "exact" and score.logprob == score.lower


@needs_shared
@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_parser_accepts_or_names_the_cause(path: Path) -> None:
    if path.name in EXPECTED_ERRORS:
        with pytest.raises(ResponseFormatError, match=EXPECTED_ERRORS[path.name]):
            _parse(path)
    elif path.name in ECHO_FILES:
        with pytest.raises(ResponseFormatError, match="echo"):
            _parse(path)
    else:
        positions = _parse(path)
        assert positions, path.name


def _parsed_files() -> list[Path]:
    return [p for p in FILES if p.name not in EXPECTED_ERRORS and p.name not in ECHO_FILES]


@needs_shared
@pytest.mark.parametrize("path", _parsed_files(), ids=_ids(_parsed_files()))
def test_label_equal_to_the_sampled_first_token(path: Path) -> None:
    pos = _parse(path)
    label = _text(pos[0].token, pos[0].bytes)
    if not label:
        pytest.skip(f"{path.name}: the first token {pos[0].token!r} is blank")
    _check_label_at_first_position(pos, label, exact_contribution=True)


@needs_shared
@pytest.mark.parametrize("path", _parsed_files(), ids=_ids(_parsed_files()))
def test_alternative_only_labels(path: Path) -> None:
    pos = _parse(path)
    sampled = _text(pos[0].token, pos[0].bytes) or ""
    checked = 0
    for alt in pos[0].alternatives[1:]:
        label = _text(alt.token, alt.bytes)
        # an alternative the sampled path could also spell is walked, not only listed
        if not label or label.startswith(sampled) or sampled.startswith(label):
            continue
        _check_label_at_first_position(pos, label, exact_contribution=True)
        checked += 1
    if not checked:
        pytest.skip(f"{path.name}: no alternative at position 0 apart from the sampled token")


@needs_shared
@pytest.mark.parametrize("path", _parsed_files(), ids=_ids(_parsed_files()))
def test_absent_label_gets_the_rule_bound(path: Path) -> None:
    pos = _parse(path)
    score = match_labels([ABSENT], pos, multi_label=False)[ABSENT]
    assert score.status == "upper_bound"
    assert score.lower == -math.inf
    assert math.isclose(score.logprob, rule_bound(pos[0]), abs_tol=1e-12)
    if pos[0].truncated:
        assert "top_p=1" in score.note
    if pos[0].unlisted().no_leftover:  # no mass left over: the smallest listed entry bounds
        assert "no mass is known to be left over" in score.note


@needs_shared
@pytest.mark.parametrize("path", _parsed_files(), ids=_ids(_parsed_files()))
def test_every_position_bound_follows_the_rule(path: Path) -> None:
    """At every position of every body (not only the first): the bound of the rule, never
    above the smallest real top-k entry, and that entry alone where the listed mass is 1 or
    more; an absent label whose answer begins there gets it, with the note that says why."""
    positions = _parse(path)
    for i, p in enumerate(positions):
        bound = p.unlisted()
        assert bound.logprob == rule_bound(p), (path.name, i)
        assert bound.logprob <= bound.floor
        if bound.no_leftover:
            assert bound.logprob == bound.floor
            score = match_labels([ABSENT], positions[i:], multi_label=False)[ABSENT]
            assert score.logprob == bound.floor
            assert f"position 0: the listed probabilities sum to {bound.mass:.6g}" in score.note


@needs_shared
@pytest.mark.parametrize("path", _parsed_files(), ids=_ids(_parsed_files()))
def test_no_score_is_nan_or_a_sentinel(path: Path) -> None:
    pos = _parse(path)
    labels = list(
        dict.fromkeys(
            t
            for p in pos[:50]
            for a in p.alternatives
            if (t := _text(a.token, a.bytes)) and any(c.isalnum() for c in t)
        )
    )[:60]
    for score in match_labels([*labels, ABSENT], pos).values():
        for value in (score.logprob, score.lower):
            assert not math.isnan(value)
            assert value == -math.inf or value > -9999.0
        assert score.lower <= score.logprob


ECHOED = [p for p in FILES if p.name in ECHO_FILES]


@needs_shared
@pytest.mark.parametrize("path", ECHOED, ids=[p.stem for p in ECHOED])
def test_echoed_label_sums_follow_the_text_offsets(path: Path) -> None:
    for text, tokens in parse_completion_echo(_body(path)).values():
        aligned = align_echo(text, tokens)
        for tok in aligned:  # every aligned token sits where it says, in the echoed text
            assert text[tok.offset : tok.offset + len(tok.token)] == tok.token
        for j in range(1, len(aligned)):
            boundary = aligned[j].offset
            score = echoed_label_score("tail", boundary, len(text), aligned)
            expected = math.fsum(t.logprob for t in aligned[j:] if t.logprob is not None)
            assert math.isclose(score.logprob, expected, abs_tol=1e-9)
            assert score.lower == score.logprob


@needs_shared
def test_recorded_runs_have_sampled_tokens_outside_the_top_k() -> None:
    """The issue's counts: llama-server gives the sampled token apart from the top-k list
    (like OpenAI); at 12 of 675 gemma positions and 4 of 564 Qwen ones it is not in it,
    and the bound there comes from the top-k list, not from the sampled token."""
    for name, n_positions, n_outside in (
        ("chat_llamacpp-repro_1.json", 675, 12),
        ("chat_llamacpp-repro_2.json", 564, 4),
    ):
        pos = _parse(SHARED / name)
        outside = [p for p in pos if all(a.token != p.token for a in p.top_logprobs)]
        assert (len(pos), len(outside)) == (n_positions, n_outside)
        for p in outside:
            assert p.unlisted_bound() == rule_bound(p)
            assert p.unlisted_bound() <= min(a.logprob for a in p.top_logprobs)


@needs_shared
def test_vllm_sampled_token_listed_with_the_top_k_is_no_bound() -> None:
    """vLLM lists a sampled token ranked below the top-2 with them ("Most", -6.91): an
    unlisted token may reach -3.49 (the second of the top-2), so that is the bound."""
    pos = _parse(SHARED / "chat_kserve-vllm_1.json")
    score = match_labels([ABSENT], pos)[ABSENT]
    assert score.logprob == pytest.approx(-3.4867753982543945, abs=1e-12)


@needs_shared
def test_vllm_echoed_bos_is_realigned() -> None:
    """vLLM echoes ``</s>`` in ``tokens`` and counts it in ``text_offset`` but not in
    ``text``: the label " white" is the last token (-2.215), not a shifted neighbour."""
    (text, tokens), *_ = parse_completion_echo(
        _body(SHARED / "completions_kserve-vllm_1.json")
    ).values()
    assert tokens[0].token == "</s>" and text[tokens[1].offset :].startswith("I love")  # shifted
    aligned = align_echo(text, tokens)
    assert [t.token for t in aligned] == [t.token for t in tokens[1:]]
    score = echoed_label_score("white", len(text) - len(" white"), len(text), aligned)
    assert score.logprob == pytest.approx(-2.2152767181396484, abs=1e-12)
    assert [s.token for s in score.path] == [" white"]


@needs_shared
def test_lmdeploy_byte_level_pieces_are_decoded() -> None:
    pos = _parse(SHARED / "chat_lmdeploy-issue_1.json")
    assert [a.token for a in pos[0].top_logprobs] == ["Hi", " Hello"]
    score = match_labels(["Hello"], pos)["Hello"]
    assert score.status == "exact"
    assert score.logprob == pytest.approx(logsumexp([-5.777091791969724e-05, -12.198531150817871]))


@needs_shared
def test_tgi_truncated_distribution_is_noted() -> None:
    pos = _parse(SHARED / "chat_tgi-issue_1.json")
    assert pos[0].truncated
    assert "top_p=1" in match_labels(["Shallow"], pos)["Shallow"].note


@needs_shared
def test_together_legacy_shaped_chat_reply_is_read() -> None:
    pos = _parse(SHARED / "chat_together-issue_1.json")
    assert [p.token for p in pos[:3]] == ["1", ".", " Define"]
    score = match_labels(["1. Define"], pos, multi_label=False)["1. Define"]
    assert score.status == "exact"
    assert score.logprob == pytest.approx(-1.0029297 - 0.07861328 - 2.1367188)
