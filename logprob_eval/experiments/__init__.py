"""Experiments over a tidy score table: stability, calibration, thresholds.

Needs pandas, scipy and scikit-learn (core dependencies). The submodules are imported on
first use of a name (PEP 562), so ``experiments.chance`` (numpy only) stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import analyze, split_ids
    from .metrics import agreement, agreement_matrix, per_example_auc, ranking_metrics
    from .stability import content_free_examples, run_grid, stability_summary
    from .table import config_id, label_matrix, to_frame
    from .thresholds import effective_scores, sweep, transfer
    from .transforms import TRANSFORMS, apply_transforms, split_content_free

_HOME = {
    "analyze": "analysis",
    "split_ids": "analysis",
    "agreement": "metrics",
    "agreement_matrix": "metrics",
    "per_example_auc": "metrics",
    "ranking_metrics": "metrics",
    "content_free_examples": "stability",
    "run_grid": "stability",
    "stability_summary": "stability",
    "config_id": "table",
    "label_matrix": "table",
    "to_frame": "table",
    "effective_scores": "thresholds",
    "sweep": "thresholds",
    "transfer": "thresholds",
    "TRANSFORMS": "transforms",
    "apply_transforms": "transforms",
    "split_content_free": "transforms",
}

__all__ = [
    "TRANSFORMS",
    "agreement",
    "agreement_matrix",
    "analyze",
    "apply_transforms",
    "config_id",
    "content_free_examples",
    "effective_scores",
    "label_matrix",
    "per_example_auc",
    "ranking_metrics",
    "run_grid",
    "split_content_free",
    "split_ids",
    "stability_summary",
    "sweep",
    "to_frame",
    "transfer",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
