"""Metrics stay within tolerance of the stored baselines (evals/baselines/);
`pytest evals --update-baselines` rewrites them."""

from __future__ import annotations

from pathlib import Path

import pytest

from logprob_eval.evalsuite.checks import check_baseline

BASELINES = Path(__file__).parent / "baselines"


def test_no_regression(llm_case, llm_metrics, llm_config, update_baselines):
    metrics = llm_metrics(llm_case)
    m, s = metrics.ranking, metrics.sweep
    values = {
        "top1_acc": m.top1_acc,
        "topk_acc": m.topk_acc,
        "mrr": m.mrr,
        "auc": m.auc,
        "best_f1": s.best_f1,
        "average_precision": s.average_precision,
    }
    outcome = check_baseline(
        llm_case.id,
        values,
        BASELINES / f"{llm_case.id}.json",
        llm_config.expect("regression", "tolerance", 0.02),
        update=update_baselines,
    )
    if outcome == "missing":
        pytest.skip(
            f"no baseline for {llm_case.id}: create it with pytest evals --update-baselines"
        )
