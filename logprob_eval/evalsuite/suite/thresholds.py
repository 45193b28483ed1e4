"""Thresholding the scores: best F1 and average precision above floors, and a threshold tuned
on a dev split keeps its F1 on the held-out split. A case declared at chance asserts that
its best F1 is that of predicting every label (its interval contains it)."""

from __future__ import annotations

import math

import pytest

from logprob_eval.evalsuite.checks import check_floors


def test_thresholds(llm_case, llm_metrics, llm_config, record_property):
    # the dev/test split comes from [dataset] dev_fraction and seed
    cm = llm_metrics(llm_case)
    s = cm.sweep
    nan = {"kept": math.nan, "dev_threshold": math.nan, "test_f1_at_dev_threshold": math.nan}
    tr = cm.transfer or {**nan, "test_best_f1": math.nan}  # None: fewer than 4 texts
    for key, value in cm.properties().items():
        if key.split("_ci_")[0] in ("best_f1", "average_precision"):
            record_property(key, value)
    record_property("transfer_kept", tr["kept"])
    assert not tr["kept"] > 1.0 + 1e-12, (
        f"case {llm_case.id}: a dev-tuned threshold beats the best test threshold "
        f"({tr['kept']:.4f} > 1): the sweep is not exact"
    )
    values = {
        "best_f1": s.best_f1,
        "average_precision": s.average_precision,
        "transfer_kept": tr["kept"],
    }
    if llm_config.at_chance(llm_case) is not None:
        everything = s.f1_micro[0]  # the lowest observed score as threshold: predict every label
        lo, hi = s.ci["best_f1"]
        assert lo <= everything <= hi, (
            f"case {llm_case.id} is declared at chance, but its best F1 {s.best_f1:.3f} "
            f"[{lo:.3f}, {hi:.3f}] excludes {everything:.3f}, the F1 of predicting every "
            "label: the model does the task here now; give the case floors in evals.toml"
        )
        return
    floors = llm_config.floors("thresholds", llm_case)
    if not floors:  # an absent floor is not checked: the metrics are in the report
        pytest.skip(f"case {llm_case.id}: no floor in [expectations.thresholds]: nothing to check")
    check_floors(
        llm_case.id,
        values,
        floors,
        ci=s.ci,
        worst=f"    best threshold {s.best_threshold:.3f}; dev threshold "
        f"{tr['dev_threshold']:.3f} gives test F1 {tr['test_f1_at_dev_threshold']:.3f}"
        f" vs best {tr['test_best_f1']:.3f}",
    )
