"""Cross-server agreement: its numbers on hand-computed tables, the suite's cases on servers
it starts (ids, pairs, config checks) and the report's section."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy.stats import kendalltau

from logprob_eval.errors import ConfigError
from logprob_eval.evalsuite.config import load_eval_config
from logprob_eval.evalsuite.matrix import server_pairs
from logprob_eval.experiments.servers import server_agreement
from logprob_eval.experiments.table import to_frame
from logprob_eval.reporting.report_html import _servers_section


def _rows(values: dict[tuple[str, str], tuple[float, float, str]], model: str) -> pd.DataFrame:
    return to_frame(
        [
            {
                "example_id": text,
                "label": label,
                "logprob": lp,
                "lower": lower,
                "status": status,
                "is_true": False,
                "model": model,
                "method": "generation",
                "template": "simple",
                "label_set": "normal",
            }
            for (text, label), (lp, lower, status) in values.items()
        ]
    )


A = {
    ("t1", "Art"): (-1.0, -1.0, "exact"),
    ("t1", "Food"): (-2.0, -2.0, "exact"),
    ("t1", "Sports"): (-3.0, -math.inf, "upper_bound"),
    ("t2", "Art"): (-0.5, -0.5, "exact"),
    ("t2", "Food"): (-1.5, -1.5, "exact"),
    ("t2", "Sports"): (-2.5, -4.0, "upper_bound"),
}


def test_values_on_a_hand_computed_pair():
    b = dict(A)
    b[("t1", "Art")] = (-1.0003, -1.0003, "exact")  # |diff| 3e-4
    b[("t1", "Food")] = (-2.0001, -2.0001, "exact")  # |diff| 1e-4
    b[("t2", "Food")] = (-0.4, -0.4, "exact")  # |diff| 1.1, and it now outranks Art
    b[("t2", "Sports")] = (-2.5, -4.0002, "exact")  # status differs; lower |diff| 2e-4
    b[("t3", "Art")] = (-1.0, -1.0, "exact")  # in B only
    found = server_agreement(_rows(A, "a"), _rows(b, "b"))
    assert (found.rows, found.only_a, found.only_b) == (6, 0, 1)
    assert found.max_abs_diff == pytest.approx(1.1)
    # |diffs| sorted: 0, 0, 0, 1e-4, 3e-4, 1.1: the median is (0 + 1e-4) / 2
    assert found.median_abs_diff == pytest.approx(5e-5)
    assert found.max_abs_diff_lower == pytest.approx(1.1)
    assert found.status_mismatches == 1
    assert found.infinite_mismatches == 0
    assert (found.texts, found.same_ranking) == (2, 1)  # t1 ranks alike, t2 does not
    tau_t2 = kendalltau([-0.5, -1.5, -2.5], [-0.5, -0.4, -2.5]).statistic
    assert found.mean_kendall_tau == pytest.approx((1.0 + tau_t2) / 2)
    assert found.worst[0] == ("t2", "Food", -1.5, -0.4)
    assert not found.holds(2.0)  # a row in one table only, a status differs


def test_holds_within_tolerance_and_not_beyond():
    b = {k: (lp - 5e-5, lo - 5e-5, st) for k, (lp, lo, st) in A.items()}
    found = server_agreement(_rows(A, "a"), _rows(b, "b"))
    assert found.max_abs_diff == pytest.approx(5e-5)
    assert found.holds(1e-4)
    assert not found.holds(1e-5)
    b[("t1", "Sports")] = (-math.inf, -math.inf, "upper_bound")  # no mass against a number
    assert server_agreement(_rows(A, "a"), _rows(b, "b")).infinite_mismatches == 1


SUITE = """
[dataset]
sample = 4
[[models]]
spec = "local:gemma-3-270m"
methods = ["generation"]
[[models]]
spec = "openai-compatible:gemma-3-270m@llama-server"
methods = ["generation"]
[[models]]
spec = "openai-compatible:gemma-3-270m@llama-server"
one_token_batches = true
sample = 2
methods = ["generation"]
[[models]]
spec = "openai-compatible:gemma-3-270m@llama-cpp-python"
one_token_batches = true
methods = ["generation"]
[[models]]
spec = "openai-compatible:gemma-3-270m@http://127.0.0.1:8000/v1"
methods = ["generation"]
[grid]
templates = ["simple"]
label_sets = ["normal"]
"""


def test_case_ids_pairs_and_the_models_they_name(tmp_path):
    (tmp_path / "evals.toml").write_text(SUITE)
    cases = load_eval_config(tmp_path / "evals.toml").cases()
    assert [c.id for c in cases] == [
        "local-gemma-3-270m-generation-simple-normal",
        "openai-compatible-gemma-3-270m-llama-server-generation-simple-normal",
        "openai-compatible-gemma-3-270m-llama-server-1tok-generation-simple-normal",
        "openai-compatible-gemma-3-270m-llama-cpp-python-1tok-generation-simple-normal",
        "openai-compatible-gemma-3-270m-generation-simple-normal",
    ]
    assert [c.model.server for c in cases] == [
        "logprob-eval",
        "llama-server",
        "llama-server",
        "llama-cpp-python",
        None,
    ]
    model = "openai-compatible:gemma-3-270m@llama-server 1tok"
    assert cases[2].config == f"{model}/generation/simple/normal"
    # pairs: like batching with like; a URL spec is no server the suite starts
    pairs = {(a.id, b.id) for a, b in server_pairs(cases)}
    assert pairs == {
        (cases[0].id, cases[1].id),  # default batching on both: measured
        (cases[2].id, cases[3].id),  # one-token batches on both: held to the tolerance
    }


def test_one_token_batches_needs_a_server_the_suite_starts(tmp_path):
    (tmp_path / "evals.toml").write_text(
        '[[models]]\nspec = "openai-compatible:m@http://127.0.0.1:8000/v1"\n'
        'one_token_batches = true\n[grid]\ntemplates = ["simple"]\nlabel_sets = ["normal"]\n'
    )
    with pytest.raises(ConfigError, match=r"models\[0\]\.one_token_batches: applies only to"):
        load_eval_config(tmp_path / "evals.toml")


def test_report_section_shows_each_pair():
    pair = {
        "a": "case-a",
        "b": "openai-compatible:gemma-3-270m@llama-server 1tok",
        "batching": "one-token",
        "rows": 90,
        "max_abs_diff": 0.00069,
        "median_abs_diff": 0.00052,
        "status_mismatches": 0,
        "same_ranking": 9,
        "texts": 9,
        "mean_kendall_tau": 1.0,
        "verdict": "agree (tolerance 0.001)",
    }
    html = _servers_section({"servers": [pair]})
    for cell in ("case-a", "one-token", "<td>90</td>", "0.00069", "0.00052", "9 of 9"):
        assert cell in html
    assert "agree (tolerance 0.001)" in html
    assert _servers_section({"servers": []}) == ""
