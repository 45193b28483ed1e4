"""Thresholding the scores: best F1 and average precision above floors, and a threshold tuned
on a dev split keeps its F1 on the held-out split."""

from __future__ import annotations

import math

from logprob_eval.evalsuite.checks import check_floors


def test_thresholds(llm_case, llm_metrics, llm_config, record_property):
    # the dev/test split comes from [dataset] dev_fraction and seed
    metrics = llm_metrics(llm_case)
    s = metrics.sweep
    nan = {"kept": math.nan, "dev_threshold": math.nan, "test_f1_at_dev_threshold": math.nan}
    tr = metrics.transfer or {**nan, "test_best_f1": math.nan}  # None: fewer than 4 texts
    values = {
        "best_f1": s.best_f1,
        "average_precision": s.average_precision,
        "transfer_kept": tr["kept"],
    }
    for k, v in values.items():
        record_property(k, v)
    floors = llm_config.floors("thresholds", llm_case)
    check_floors(
        llm_case.id,
        values,
        floors,
        worst=f"    best threshold {s.best_threshold:.3f}; dev threshold "
        f"{tr['dev_threshold']:.3f} gives test F1 {tr['test_f1_at_dev_threshold']:.3f}"
        f" vs best {tr['test_best_f1']:.3f}",
    )
