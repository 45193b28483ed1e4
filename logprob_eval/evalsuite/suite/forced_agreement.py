"""The forced method checked against the exact method on real model output: one config of
one GGUF scored ``forced`` on a server without echo (``spec = "...@llama-server"``) and
``exact`` on one with echo (``"...@logprob-eval"``), with the same batching, compared row by
row (text, label; the content-free inputs too):

* every forced row marked ``exact`` equals the exact score within
  ``[expectations.forced_agreement] tolerance`` (an override names a server whose own
  arithmetic is coarser, and why);
* every other forced row is an interval that holds the exact score;
* at least ``min_exact_share`` of the forced rows are marked exact on the exact method's own
  token path (a text-mode walk may take another tokenization: exact for its own path, not
  compared, and not counted in the share);
* every forced row has an exact partner.
"""

from __future__ import annotations

import fnmatch


def test_forced_agreement(llm_forced_pair, llm_scores, llm_config, record_property):
    forced_case, exact_case = llm_forced_pair
    tolerance = float(llm_config.expect("forced_agreement", "tolerance", 1e-4))
    for override in llm_config.expect("forced_agreement", "overrides", []):
        if any(fnmatch.fnmatchcase(forced_case.id, g) for g in override["cases"]):
            tolerance = float(override["tolerance"])  # a server's own limit, said in "why"
    min_share = float(llm_config.expect("forced_agreement", "min_exact_share", 0.95))
    from logprob_eval.experiments.servers import forced_agreement

    found = forced_agreement(llm_scores(forced_case), llm_scores(exact_case), tolerance=tolerance)
    for key, value in found.as_json().items():
        if key != "worst":
            record_property(key, value)
    where = f"{forced_case.id} vs {exact_case.id}"
    assert found.rows > 0, f"{where}: no row scored by both"
    assert found.unpaired == 0, (
        f"{where}: {found.rows} rows paired, {found.unpaired} forced rows without an exact "
        "partner: the two cases did not score the same texts and labels"
    )
    assert found.within == found.exact, (
        f"{where}: {found.exact - found.within} of {found.exact} rows marked exact differ from "
        f"the exact method by more than {tolerance:g} nats (max {found.max_abs_diff:.3g}, "
        f"spread within a text {found.max_offset_spread:.3g}); worst {list(found.worst)}"
    )
    assert found.bounds_holding == found.bounds, (
        f"{where}: {found.bounds - found.bounds_holding} of {found.bounds} intervals do not "
        f"hold the exact score (tolerance {tolerance:g})"
    )
    assert found.exact_share >= min_share, (
        f"{where}: {found.exact} of {found.rows} forced rows are exact on the exact method's "
        f"token path ({found.exact_share:.1%}; {found.other_path} on another path), below "
        f"min_exact_share {min_share:.0%}: raise max_top_logprobs on a server without a cap"
    )
