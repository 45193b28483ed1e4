"""A reconstruction of the original notebook's greedy label matcher, kept as a baseline.

Written from the project's description of the notebook's defect (DESIGN.md): at each
position it takes the sampled token if it continues the label, otherwise the first listed
alternative that does, adds that log-prob and *keeps walking* later positions, whose
distributions are conditioned on the sampled token, not on the alternative. A label it
cannot finish scores -999. Used by the regression test and the matcher benchmark only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

NOT_FOUND = -999.0


def notebook_label_logprob(label: str, positions: Sequence[Mapping[str, Any]]) -> float:
    remaining = label.lower()
    total = 0.0
    for pos in positions:
        tok = pos["token"].strip().lower()
        if tok and remaining.startswith(tok):
            total += pos["logprob"]
            remaining = remaining[len(tok) :]
        else:
            for alt in pos.get("top_logprobs") or ():
                cand = alt["token"].strip().lower()
                if cand and remaining.startswith(cand):
                    total += alt["logprob"]
                    remaining = remaining[len(cand) :]
                    break
        if not remaining:
            return total
    return NOT_FOUND


def notebook_match(
    labels: Sequence[str], positions: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    return {label: notebook_label_logprob(label, positions) for label in labels}
