"""The same weights on two servers: one config of one model scored by two servers the
suite starts (``spec = "...@llama-server"``, ``"...@llama-cpp-python"``,
``"...@logprob-eval"``), compared row by row (text, label).

* **One-token batches on both** (``one_token_batches = true``): llama.cpp computes the same
  numbers whichever server calls it, so every score (and every interval's lower end) must
  agree within ``[expectations.server_agreement] tolerance`` (an override names a server
  whose own arithmetic is coarser, and why), with the same statuses and identical label
  rankings on every text.
* **Default batching on both**: llama.cpp's numbers depend on the batch a token is
  evaluated in, and each server batches its own way: the differences and whether the
  rankings held are measured and shown in the report ("Across servers"); the test checks
  only that the two cases scored the same rows.
"""

from __future__ import annotations

import fnmatch


def test_server_agreement(llm_server_pair, llm_runner, llm_config, record_property):
    a, b = llm_server_pair
    tolerance = float(llm_config.expect("server_agreement", "tolerance", 1e-4))
    for override in llm_config.expect("server_agreement", "overrides", []):
        if any(fnmatch.fnmatchcase(c.id, g) for c in (a, b) for g in override["cases"]):
            tolerance = float(override["tolerance"])  # a server's own limit, said in "why"
    found = llm_runner.server_agreement(a, b, tolerance)
    for key, value in found.as_json().items():
        if key != "worst":
            record_property(key, value)
    # the smaller case's texts are all in the larger one: every row of it is paired
    smaller = min(found.only_a, found.only_b)
    assert found.rows > 0, f"{a.id} vs {b.model.label}: no row scored by both"
    assert smaller == 0, (
        f"{a.id} vs {b.model.label}: {found.rows} rows paired, {found.only_a} and "
        f"{found.only_b} without a partner: the two cases did not score the same texts"
    )
    if a.model.one_token_batches and b.model.one_token_batches:
        assert found.holds(tolerance), (
            f"{a.id} vs {b.model.label} (one-token batches on both): max |diff| "
            f"{found.max_abs_diff:.3g} (lower ends {found.max_abs_diff_lower:.3g}), "
            f"{found.status_mismatches} statuses differ, {found.same_ranking} of "
            f"{found.texts} texts ranked the same (tolerance {tolerance:g}); worst rows "
            f"{list(found.worst)}"
        )
