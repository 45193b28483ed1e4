"""Thresholding the scores: best F1 and average precision above floors, and a threshold tuned
on a dev split keeps its F1 on the held-out split."""

from __future__ import annotations

from logprob_eval.evalsuite.checks import check_floors
from logprob_eval.experiments import split_content_free, split_ids, sweep, transfer


def test_thresholds(llm_case, llm_scores, llm_config, record_property):
    df, _ = split_content_free(llm_scores(llm_case))
    s = sweep(df, llm_case.config)
    ids = sorted(df["example_id"].unique())
    frac = float(llm_config.dataset.get("dev_fraction", 0.5))
    dev, test = split_ids(ids, frac, int(llm_config.dataset.get("seed", 0)))
    tr = transfer(df, llm_case.config, dev, test)
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
