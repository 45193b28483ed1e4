"""The matcher's path logic checked on real model output.

Where one model is scored by both methods with the same prompt, every generation score is
an interval ``[lower, logprob]`` that must hold the teacher-forced log-probability:

* every score marked ``exact`` equals the teacher-forced log-probability of the token paths
  it covers (for a score that combined surface variants, the log-sum-exp of each variant
  teacher-forced);
* every ``upper_bound`` is at or above the teacher-forced score of the label, and its
  ``lower`` end (its exact contributions alone) at or below it. The lower end is compared
  where its only exact contribution is the label as the teacher-forced request spells it,
  token for token: the two must then be equal. (An exact contribution in another surface
  form is other mass, not comparable with that one request; it is counted.)

Scores that start after other generated tokens are conditional on them and are not compared
here; a variant whose teacher-forced tokenisation differs from its generated path is not
comparable and is counted, not compared. Comparisons whose label spans several tokens are
counted on their own (``multi_token_*``): they are the ones that exercise the walk.
"""

from __future__ import annotations

import json
import math
from collections import Counter

from logprob_eval.experiments import split_content_free
from logprob_eval.scoring.records import logsumexp


def _bounds_hold(gen_case, bounds, tf_exact, tf_tokens, tol, counts):
    """``lower <= teacher-forced <= logprob`` for every bound; the failures."""
    wrong = []
    for r in bounds.itertuples():
        key = (r.example_id, r.label)
        tf, n_tf = tf_exact[key], len(tf_tokens[key])
        counts["bounds"] += 1
        counts["multi_token_bounds"] += n_tf > 1
        if r.logprob < tf - tol:
            wrong.append(("upper end below", *key, r.logprob, tf))
        if not math.isfinite(r.lower):
            continue  # no exact contribution: the interval is open below
        exact_paths = [v for v in json.loads(r.variants) if "".join(v).strip() == r.phrase]
        if exact_paths != [tf_tokens[key]]:
            counts["lower_ends_not_comparable"] += 1  # other surface forms or tokenisations
            continue
        counts["exact_lower_ends"] += 1
        counts["multi_token_exact_lower_ends"] += n_tf > 1
        if not math.isclose(r.lower, tf, abs_tol=tol):
            wrong.append(("lower end differs from", *key, r.lower, tf))
    return wrong


def test_method_agreement(
    llm_method_pair, llm_scores, llm_runner, llm_config, llm_dataset, record_property
):
    gen_case, exact_case = llm_method_pair
    gen, _ = split_content_free(llm_scores(gen_case))
    exact, _ = split_content_free(llm_scores(exact_case))
    tol = float(llm_config.expect("method_agreement", "tolerance", 0.01))
    texts = {ex.id: ex.text for ex in llm_dataset}
    by_key = exact.set_index(["example_id", "label"])
    tf_exact = by_key["logprob"]
    tf_tokens = by_key["path"].map(lambda p: json.loads(p))
    counts: Counter[str] = Counter()

    # upper bounds: an interval around the teacher-forced score of the label
    bounds = gen[(gen["status"] == "upper_bound") & (gen["start"] == 0)]
    wrong_bounds = _bounds_hold(gen_case, bounds, tf_exact, tf_tokens, tol, counts)
    assert not wrong_bounds, (
        f"case {gen_case.id}: {len(wrong_bounds)} bound(s) do not hold the teacher-forced "
        f"score, e.g. {wrong_bounds[:3]}"
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
    name = gen_case.id.replace("-generation-", "-methods-")
    # no exact score at all (the model never begins its answer with a label): no request
    results = llm_runner.teacher_forced(exact_case, name, requests) if requests else []
    compared, incomparable, wrong = 0, 0, []
    for (ex_id, grp, owners), scores in zip(keys, results, strict=True):
        by_label: dict[str, list[float]] = {}
        ok: dict[str, bool] = {}
        longest: Counter[str] = Counter()
        for (label, variant), s in zip(owners, scores, strict=True):
            same_tokens = tuple(step.token for step in s.path) == variant
            ok[label] = ok.get(label, True) and same_tokens
            by_label.setdefault(label, []).append(s.logprob)
            longest[label] = max(longest[label], len(variant))
        for r in grp.itertuples():
            if not ok[r.label]:
                incomparable += 1
                continue
            expected = logsumexp(by_label[r.label])
            compared += 1
            counts["multi_token_exact"] += longest[r.label] > 1
            if not math.isclose(r.logprob, expected, abs_tol=tol):
                wrong.append((ex_id, r.label, round(r.logprob, 4), round(expected, 4)))
    record_property("compared", compared)
    record_property("incomparable", incomparable)
    for key in (
        "multi_token_exact",
        "bounds",
        "multi_token_bounds",
        "exact_lower_ends",
        "multi_token_exact_lower_ends",
        "lower_ends_not_comparable",
    ):
        record_property(key, counts[key])
    assert not wrong, (
        f"case {gen_case.id}: {len(wrong)} exact score(s) differ from the "
        f"teacher-forced value by more than {tol} nats, e.g. {wrong[:5]}"
    )
    # the floor: comparisons with the teacher-forced value, each of which can fail
    floor = int(llm_config.expect("method_agreement", "min_compared", 1))
    checked = compared + counts["exact_lower_ends"] + counts["bounds"]
    assert checked >= floor, (
        f"case {gen_case.id}: only {compared} exact scores, {counts['exact_lower_ends']} "
        f"exact lower ends and {counts['bounds']} bounds could be compared with the "
        f"teacher-forced value ({incomparable} not comparable); floor {floor}"
    )
