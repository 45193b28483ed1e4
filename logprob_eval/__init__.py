"""logprob-eval: evaluate LLM classifiers through label log-probabilities."""

from __future__ import annotations

from .errors import (
    ConfigError,
    DatasetError,
    LogprobEvalError,
    ResponseFormatError,
    UnknownNameError,
)
from .scoring.matcher import match_label, match_labels
from .scoring.parsing import parse_ollama, parse_openai_chat, parse_positions
from .scoring.records import (
    STATUSES,
    Alternative,
    LabelScore,
    PathStep,
    Position,
    logsumexp,
    to_prob,
)

__version__ = "0.1.0"

__all__ = [
    "STATUSES",
    "Alternative",
    "ConfigError",
    "DatasetError",
    "LabelScore",
    "LogprobEvalError",
    "PathStep",
    "Position",
    "ResponseFormatError",
    "UnknownNameError",
    "__version__",
    "logsumexp",
    "match_label",
    "match_labels",
    "parse_ollama",
    "parse_openai_chat",
    "parse_positions",
    "to_prob",
]
