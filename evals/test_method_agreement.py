"""The matcher's path logic checked on real model output.

Where one model is scored by both methods with the same prompt, every generation-method
score marked ``exact`` must equal the teacher-forced log-probability of the token paths it
covers (for a score that combined surface variants, the log-sum-exp of each variant
teacher-forced), and every ``upper_bound`` must be at or above the teacher-forced score of
the label. Scores that start after other generated tokens are conditional on them and are
not compared here; a variant whose teacher-forced tokenisation differs from its generated
path is not comparable and is counted, not compared.
"""

from __future__ import annotations

import json
import math

from logprob_eval.experiments import split_content_free
from logprob_eval.records import logsumexp


def test_method_agreement(
    llm_method_pair, llm_scores, llm_runner, llm_config, llm_dataset, record_property
):
    gen_case, exact_case = llm_method_pair
    gen, _ = split_content_free(llm_scores(gen_case))
    exact, _ = split_content_free(llm_scores(exact_case))
    tol = float(llm_config.expect("method_agreement", "tolerance", 0.01))
    texts = {ex.id: ex.text for ex in llm_dataset}
    tf_exact = exact.set_index(["example_id", "label"])["logprob"]

    # upper bounds: never below the teacher-forced score of the label
    bounds = gen[(gen["status"] == "upper_bound") & (gen["start"] == 0)]
    below = [
        (r.example_id, r.label, r.logprob, tf_exact[(r.example_id, r.label)])
        for r in bounds.itertuples()
        if r.logprob < tf_exact[(r.example_id, r.label)] - tol
    ]
    assert not below, (
        f"case {gen_case.id}: {len(below)} upper bound(s) below the teacher-"
        f"forced score, e.g. {below[:3]}"
    )

    # exact scores: the log-sum-exp of their variants, each teacher-forced
    exact_rows = gen[(gen["status"] == "exact") & (gen["start"] == 0)]
    requests, keys = [], []
    for ex_id, grp in exact_rows.groupby("example_id", sort=True):
        prompt = gen_case.template.render(texts[ex_id], gen_case.label_set)
        conts, owners = [], []
        for r in grp.itertuples():
            for variant in json.loads(r.variants):
                conts.append("".join(variant))
                owners.append((r.label, tuple(variant)))
        requests.append((prompt, conts))
        keys.append((ex_id, grp, owners))
    results = llm_runner.teacher_forced(
        exact_case, f"{gen_case.id.replace('-generation-', '-methods-')}", requests
    )
    compared, incomparable, wrong = 0, 0, []
    for (ex_id, grp, owners), scores in zip(keys, results, strict=True):
        by_label: dict[str, list[float]] = {}
        ok: dict[str, bool] = {}
        for (label, variant), s in zip(owners, scores, strict=True):
            same_tokens = tuple(step.token for step in s.path) == variant
            ok[label] = ok.get(label, True) and same_tokens
            by_label.setdefault(label, []).append(s.logprob)
        for r in grp.itertuples():
            if not ok[r.label]:
                incomparable += 1
                continue
            expected = logsumexp(by_label[r.label])
            compared += 1
            if not math.isclose(r.logprob, expected, abs_tol=tol):
                wrong.append((ex_id, r.label, round(r.logprob, 4), round(expected, 4)))
    record_property("compared", compared)
    record_property("incomparable", incomparable)
    assert not wrong, (
        f"case {gen_case.id}: {len(wrong)} exact score(s) differ from the "
        f"teacher-forced value by more than {tol} nats, e.g. {wrong[:5]}"
    )
    floor = int(llm_config.expect("method_agreement", "min_compared", 1))
    assert compared >= floor, (
        f"case {gen_case.id}: only {compared} exact scores could be "
        f"compared ({incomparable} not comparable); floor {floor}"
    )
