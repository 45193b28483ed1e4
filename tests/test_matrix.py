"""The suite's case matrix (logprob_eval.evalsuite.matrix): the order of tests under xdist."""

from __future__ import annotations

from types import SimpleNamespace

from logprob_eval.evalsuite.matrix import case_order


def test_a_case_s_tests_end_up_next_to_each_other_and_groups_last():
    a, b = SimpleNamespace(id="case-a"), SimpleNamespace(id="case-b")
    # collection order: file by file, as pytest collects the suite
    tests = [
        ("fuzz", None),  # no parameters: no callspec
        ("method", {"llm_method_pair": (a, b)}),
        ("ranking-b", {"llm_case": b}),
        ("ranking-a", {"llm_case": a}),
        ("regression-b", {"llm_case": b}),
        ("regression-a", {"llm_case": a}),
        ("stability", {"llm_template_group": [a, b]}),
        ("thresholds-a", {"llm_case": a}),
        ("thresholds-b", {"llm_case": b}),
    ]

    def key(test: tuple[str, dict | None]) -> tuple[int, str]:
        if test[1] is None:  # a test without parameters has no callspec
            return case_order(SimpleNamespace())
        return case_order(SimpleNamespace(callspec=SimpleNamespace(params=test[1])))

    ordered = [name for name, _ in sorted(tests, key=key)]
    assert ordered == [
        "ranking-a",
        "regression-a",
        "thresholds-a",  # one case, its files in their order
        "ranking-b",
        "regression-b",
        "thresholds-b",
        "fuzz",  # scores nothing
        "method",  # spans cases: runs once they are scored
        "stability",
    ]
