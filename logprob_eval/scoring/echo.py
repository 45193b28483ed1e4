"""Teacher-forced label scores from echoed prompt log-probs, with checked alignment.

An OpenAI-compatible ``/v1/completions`` server asked for ``echo=true, logprobs=0``
returns the prompt's tokens, their log-probs and each token's character offset
(``text_offset``) in the echoed ``text``. A label's score is the sum of the log-probs of
the tokens that cover the label's characters. The offsets must therefore be right, and
this module checks them before any log-prob is summed:

1. every token whose text is known must sit at its offset in ``text``, where the token
   before it ends (the tokens tile the text);
2. if they do not, the server may have echoed a BOS token (``</s>``, ``<s>``,
   ``<|begin_of_text|>``) that it counts in ``text_offset`` but leaves out of ``text``
   (vLLM): with up to two leading tokens that ``text`` does not begin with left out, and
   the others shifted by their length, rule 1 must then hold;
3. failing that, the tokens joined (after such leading tokens) must spell ``text``
   exactly; the offsets are then recomputed from the joined tokens;
4. otherwise :class:`~logprob_eval.errors.ResponseFormatError` names the server and the
   first token out of place: tokens other than the label's are never summed.

A ``null`` log-prob on the first token (OpenAI, vLLM) means "no context": it is only an
error when a label needs that token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import ResponseFormatError
from .parsing import EchoedToken
from .records import LabelScore, PathStep

__all__ = ["align_echo", "echoed_label_score"]

_MAX_LEADING = 2  # echoed tokens a server may put before the text (BOS, a role marker)


def _unverifiable(token: str) -> bool:
    """A token whose text cannot be checked against ``text`` (a piece of a character)."""
    return "\ufffd" in token or token.startswith("bytes:")


def _misplaced(text: str, tokens: Sequence[EchoedToken], shift: int) -> int | None:
    """The index of the first token not at its offset minus ``shift``; None if all are.

    A token is at its offset when its text is found there and it begins where the token
    before it ends (tokens tile the text; a piece of a character is not checked)."""
    prev_end: int | None = 0
    for j, tok in enumerate(tokens):
        start = tok.offset - shift
        if start < 0 or start > len(text):
            return j
        if _unverifiable(tok.token):
            prev_end = None
            continue
        if not text.startswith(tok.token, start):
            return j
        if prev_end is not None and start != prev_end:
            return j
        prev_end = start + len(tok.token)
    return None


def _shifted(tokens: Sequence[EchoedToken], shift: int) -> list[EchoedToken]:
    return [EchoedToken(t.token, t.offset - shift, t.logprob) for t in tokens]


def _from_joined(tokens: Sequence[EchoedToken]) -> list[EchoedToken]:
    offsets, at = [], 0
    for tok in tokens:
        offsets.append(at)
        at += len(tok.token)
    return [EchoedToken(t.token, o, t.logprob) for t, o in zip(tokens, offsets, strict=True)]


def align_echo(text: str, tokens: Sequence[EchoedToken], *, server: str = "") -> list[EchoedToken]:
    """The echoed tokens that lie in ``text``, each at its checked offset (module rules)."""
    first_bad = _misplaced(text, tokens, 0)
    if first_bad is None:
        return list(tokens)
    for lead in range(1, min(_MAX_LEADING, len(tokens)) + 1):
        rest = tokens[lead:]
        dropped = "".join(t.token for t in tokens[:lead])
        if text.startswith(dropped):
            continue  # the text has these tokens: they are no BOS left out of it
        shift = len(dropped)
        if rest and _misplaced(text, rest, shift) is None:
            return _shifted(rest, shift)
    for lead in range(min(_MAX_LEADING, len(tokens)) + 1):
        if "".join(t.token for t in tokens[lead:]) == text:
            return _from_joined(tokens[lead:])
    tok = tokens[first_bad]
    where = f"{server} " if server else ""
    raise ResponseFormatError(
        f"{where}echoed token {first_bad} ({tok.token!r}) is not at its text_offset "
        f"{tok.offset} in the echoed text (found {text[tok.offset : tok.offset + 12]!r}), and "
        "no leading BOS token or joined token text explains it; the label's tokens cannot be "
        "found safely. Report the server and model; scoring with other tokens is refused",
        field=f"choices[].logprobs.text_offset[{first_bad}]",
        source=server,
    )


def echoed_label_score(
    label: str, boundary: int, end: int, tokens: Sequence[EchoedToken], *, server: str = ""
) -> LabelScore:
    """log P(text[boundary:end] | text[:boundary]): the sum over the aligned tokens that
    cover those characters. A token straddling ``boundary`` is included and noted."""
    steps: list[PathStep] = []
    straddles = False
    for j, tok in enumerate(tokens):
        if tok.offset + len(tok.token) <= boundary or tok.offset >= end:
            continue
        if tok.logprob is None:
            why = (
                "has no log-prob: it is the first of the text (no context); put text "
                "before the label"
                if j == 0
                else "has no log-prob; the server must return prompt log-probs with echo=true"
            )
            raise ResponseFormatError(
                f"{server + ' ' if server else ''}label {label!r}: token {j} ({tok.token!r}) {why}",
                field=f"choices[].logprobs.token_logprobs[{j}]",
                source=server,
            )
        straddles |= tok.offset < boundary
        steps.append(PathStep(j, tok.token, tok.logprob, True))
    if not steps:
        raise ResponseFormatError(
            f"{server + ' ' if server else ''}label {label!r}: no echoed token covers the "
            "label text; the server's text_offset values are inconsistent with its text",
            field="choices[].logprobs.text_offset",
            source=server,
        )
    notes = []
    if straddles:
        notes.append("first token straddles the prompt/label boundary")
    if any(step.logprob == -math.inf for step in steps):
        notes.append("a token's log-prob was a provider sentinel (-9999 or lower): no mass")
    total = math.fsum(step.logprob for step in steps)
    return LabelScore(
        label, min(0.0, total), "exact", "exact", tuple(steps), 0, note="; ".join(notes)
    )
