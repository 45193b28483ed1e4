"""Scoring: a label's log-prob read off a model's tokens (pytest-free, no I/O).

* :mod:`.records`: what a position and a label score are, and the bound rule for a label
  the server did not list (:meth:`~.records.Position.unlisted`);
* :mod:`.parsing` (with :mod:`._response_fields`, :mod:`._legacy_completions` and
  :mod:`.token_bytes`): API responses to positions;
* :mod:`.matcher`: a label's token paths through generated positions (generation method);
* :mod:`.echo`: a label's span in an echoed prompt (exact method).
"""

from .matcher import match_label, match_labels
from .parsing import parse_ollama, parse_openai_chat, parse_positions
from .records import STATUSES, Alternative, LabelScore, PathStep, Position, logsumexp, to_prob

__all__ = [
    "STATUSES",
    "Alternative",
    "LabelScore",
    "PathStep",
    "Position",
    "logsumexp",
    "match_label",
    "match_labels",
    "parse_ollama",
    "parse_openai_chat",
    "parse_positions",
    "to_prob",
]
