"""No regression against the stored baselines (evals/baselines/): with the recordings the
baseline was computed from, any change is a code change (exact pin, both directions); with
new recordings, a paired test over texts fails only on a significant drop larger than
``min_effect``. `pytest evals --update-baselines` rebuilds them."""

from __future__ import annotations

import json

from logprob_eval.evalsuite.baselines import GateResult, recordings_digest
from logprob_eval.evalsuite.checks import check_baseline


def test_no_regression(
    llm_case, llm_metrics, llm_runner, llm_config, update_baselines, record_property
):
    def keep(result: GateResult) -> None:  # for the report and JUnit XML, passed or failed
        record_property("llm_gate", json.dumps(result.as_dict()))
        record_property("baseline_gate", result.mode)
        for metric, c in result.comparisons.items():
            record_property(f"{metric}_diff", c.result.diff)
            record_property(f"{metric}_diff_p", c.significant_p)

    digest = recordings_digest([llm_runner.cassette_path(llm_case.id)])
    check_baseline(
        llm_metrics(llm_case).baseline(digest),
        llm_config.baseline_dir / f"{llm_case.id}.json",
        alpha=float(llm_config.expect("regression", "alpha", 0.05)),
        min_effect=float(llm_config.expect("regression", "min_effect", 0.02)),
        update=update_baselines,
        on_result=keep,
    )
