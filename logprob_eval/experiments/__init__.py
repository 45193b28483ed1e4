"""Experiments over a tidy score table: stability, calibration, thresholds.

Needs pandas, scipy and scikit-learn (core dependencies); imported on use.
"""

from __future__ import annotations

from .analysis import analyze, split_ids
from .metrics import agreement, agreement_matrix, per_example_auc, ranking_metrics
from .stability import content_free_examples, run_grid, stability_summary
from .table import config_id, label_matrix, to_frame
from .thresholds import effective_scores, sweep, transfer
from .transforms import TRANSFORMS, apply_transforms, split_content_free

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
