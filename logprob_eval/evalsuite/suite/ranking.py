"""True labels outrank the others: top-k accuracy, MRR and ranking AUC above floors; a case
declared at chance asserts that instead (coverage ~0, the AUC's interval contains 0.5)."""

from __future__ import annotations

import pytest

from logprob_eval.evalsuite.checks import check_at_chance, check_floors, format_worst


def test_ranking(llm_case, llm_metrics, llm_config, llm_dataset, record_property):
    cm = llm_metrics(llm_case)  # top-k with k from [expectations.ranking]
    m = cm.ranking
    for key, value in cm.properties().items():
        if key.split("_ci_")[0] in ("top1_acc", "topk_acc", "mrr", "auc"):
            record_property(key, value)
    record_property("coverage", m.coverage)
    assert m.n_errors == 0, f"case {llm_case.id}: {m.n_errors} rows failed to score"
    chance = llm_config.at_chance(llm_case)
    if chance is not None:
        why, max_coverage = chance
        check_at_chance(
            llm_case.id,
            coverage=m.coverage,
            auc=m.auc,
            auc_ci=m.ci["auc"],
            max_coverage=max_coverage,
            why=why,
        )
        return
    floors = llm_config.floors("ranking", llm_case)
    if not floors:  # an absent floor is not checked: the metrics are in the report
        pytest.skip(f"case {llm_case.id}: no floor in [expectations.ranking]: nothing to check")
    texts = {ex.id: ex.text for ex in llm_dataset}
    check_floors(llm_case.id, m.as_dict(), floors, worst=format_worst(m.worst, texts), ci=m.ci)
