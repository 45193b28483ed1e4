"""True labels outrank the others: top-k accuracy, MRR and ranking AUC above floors."""

from __future__ import annotations

from logprob_eval.evalsuite.checks import check_floors, format_worst


def test_ranking(llm_case, llm_metrics, llm_config, llm_dataset, record_property):
    m = llm_metrics(llm_case).ranking  # top-k with k from [expectations.ranking]
    for key in ("top1_acc", "topk_acc", "mrr", "auc", "coverage"):
        record_property(key, getattr(m, key))
    floors = llm_config.floors("ranking", llm_case)
    texts = {ex.id: ex.text for ex in llm_dataset}
    check_floors(llm_case.id, m.as_dict(), floors, worst=format_worst(m.worst, texts))
    assert m.n_errors == 0, f"case {llm_case.id}: {m.n_errors} rows failed to score"
