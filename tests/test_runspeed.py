"""The run-speed helpers of the eval suite (logprob_eval.evalsuite.runspeed)."""

from __future__ import annotations

import gc
import threading
from types import SimpleNamespace

from logprob_eval.evalsuite.runspeed import (
    case_order,
    freeze_long_lived_objects,
    import_in_background,
)

MULTI = ("llm_template_group", "llm_label_group", "llm_method_pair")


def test_a_case_s_tests_end_up_next_to_each_other_and_groups_last():
    a, b = SimpleNamespace(id="case-a"), SimpleNamespace(id="case-b")
    # collection order: file by file, as pytest collects the suite
    tests = [
        ("fuzz", {}),
        ("method", {"llm_method_pair": (a, b)}),
        ("ranking-b", {"llm_case": b}),
        ("ranking-a", {"llm_case": a}),
        ("regression-b", {"llm_case": b}),
        ("regression-a", {"llm_case": a}),
        ("stability", {"llm_template_group": [a, b]}),
        ("thresholds-a", {"llm_case": a}),
        ("thresholds-b", {"llm_case": b}),
    ]
    ordered = [
        name for name, params in sorted(tests, key=lambda t: case_order(t[1], "llm_case", MULTI))
    ]
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


def test_background_import_runs_and_swallows_its_errors():
    ran = threading.Event()
    import_in_background(ran.set).join(timeout=10)
    assert ran.is_set()

    def broken() -> None:
        raise ImportError("no module named matplotlib")

    thread = import_in_background(broken)
    thread.join(timeout=10)
    assert not thread.is_alive()  # ended quietly: the report raises it where it matters


def test_freezing_moves_live_objects_out_of_the_collector_s_walks():
    gc.unfreeze()
    try:
        kept = [[] for _ in range(10)]  # containers: tracked by the collector
        freeze_long_lived_objects()
        assert gc.get_freeze_count() >= len(kept)
        cycle: list[object] = []  # garbage made afterwards is still collected
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
