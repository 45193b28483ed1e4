"""The suite's expectations: floors and their messages (evalsuite.checks), which floors a
case gets (evalsuite.config), chance declarations, and floors a chance scorer clears."""

from __future__ import annotations

import math
import re
import textwrap

import numpy as np
import pytest

from logprob_eval.errors import ConfigError
from logprob_eval.evalsuite.checks import check_at_chance, check_floors
from logprob_eval.evalsuite.config import load_eval_config
from logprob_eval.evalsuite.power import weak_floors
from logprob_eval.experiments.chance import chance_distribution

# -- check_floors ---------------------------------------------------------------------------


def test_floor_met_passes_and_below_fails_with_case_metric_value_floor_worst():
    check_floors("c1", {"auc": 0.70, "mrr": 0.9}, {"auc": 0.70, "mrr": 0.5})
    with pytest.raises(AssertionError) as err:
        check_floors(
            "c1",
            {"auc": 0.61, "mrr": 0.9},
            {"auc": 0.70, "mrr": 0.5},
            worst="    t007 ...",
            ci={"auc": [0.55, 0.66]},
        )
    msg = str(err.value)
    assert msg.startswith("case c1:")
    assert "auc = 0.610 [0.550, 0.660] is below the floor 0.700" in msg
    assert "mrr" not in msg and "t007" in msg


@pytest.mark.parametrize("values", [{"auc": math.nan}, {}])
def test_nan_or_absent_value_fails_a_floor(values):
    with pytest.raises(AssertionError, match=re.escape("auc = nan is below the floor 0.500")):
        check_floors("c1", values, {"auc": 0.5})


def test_a_floor_on_the_interval_low_end():
    check_floors("c1", {"auc": 0.55}, {"auc_ci_low": 0.5}, ci={"auc": [0.52, 0.58]})
    with pytest.raises(AssertionError, match=re.escape("auc_ci_low = 0.480")):
        check_floors("c1", {"auc": 0.55}, {"auc_ci_low": 0.5}, ci={"auc": [0.48, 0.6]})
    with pytest.raises(AssertionError, match=re.escape("auc_ci_low = nan")):
        check_floors("c1", {"auc": 0.55}, {"auc_ci_low": 0.5}, ci={})


def test_at_chance_holds_and_fails_when_the_model_does_the_task():
    check_at_chance("c", coverage=0.0, auc=0.5, auc_ci=[0.5, 0.5], max_coverage=0.05)
    check_at_chance("c", coverage=0.04, auc=0.52, auc_ci=[0.48, 0.55], max_coverage=0.05)
    with pytest.raises(AssertionError, match=r"(?s)interval excludes 0.5.*give it floors") as e:
        check_at_chance("c", coverage=0.0, auc=0.76, auc_ci=[0.7, 0.8], max_coverage=0.05)
    # what the report's verdict table shows: the metric, its value, the bound at chance
    assert e.value.failures == [{"metric": "auc", "value": 0.76, "bound": 0.5, "kind": "chance"}]
    with pytest.raises(AssertionError, match=re.escape("coverage = 0.300 is above 0.050")) as e:
        check_at_chance("c", coverage=0.3, auc=0.5, auc_ci=[0.45, 0.55], max_coverage=0.05)
    assert e.value.failures == [
        {"metric": "coverage", "value": 0.3, "bound": 0.05, "kind": "chance"}
    ]
    with pytest.raises(AssertionError, match=re.escape("excludes 0.5")):
        check_at_chance(
            "c", coverage=0.0, auc=math.nan, auc_ci=[math.nan, math.nan], max_coverage=0.05
        )


# -- floors per case --------------------------------------------------------------------------

CONFIG = """
[dataset]
path = "topics"
sample = 60

[[models]]
spec = "local:gemma-3-270m"
methods = ["generation", "exact"]

[grid]
templates = ["simple", "task", "question"]
label_sets = ["normal", "verbose"]

[expectations.ranking.floors.generation]
auc = 0.60
mrr = 0.50

[expectations.ranking.floors.exact]
auc = 0.70

[[expectations.ranking.overrides]]
cases = ["*-generation-question-*"]
auc = 0.56
drop = ["mrr"]

[[expectations.ranking.overrides]]
cases = ["*-generation-question-verbose"]
auc = 0.58

[expectations.at_chance]
cases = ["*-generation-task-*"]
why = "answers in other words"
max_coverage = 0.02
{extra}
"""


def _config(tmp_path, extra=""):
    path = tmp_path / "evals.toml"
    path.write_text(CONFIG.replace("{extra}", extra))
    cfg = load_eval_config(path)
    return cfg, {c.id: c for c in cfg.cases()}


def test_overrides_apply_only_to_the_cases_they_name_in_order(tmp_path):
    cfg, cases = _config(tmp_path)
    gen = "local-gemma-3-270m-generation"
    assert cfg.floors("ranking", cases[f"{gen}-simple-normal"]) == {"auc": 0.60, "mrr": 0.50}
    assert cfg.floors("ranking", cases[f"{gen}-question-normal"]) == {"auc": 0.56}
    assert cfg.floors("ranking", cases[f"{gen}-question-verbose"]) == {"auc": 0.58}
    exact = cases["local-gemma-3-270m-exact-question-normal"]
    assert cfg.floors("ranking", exact) == {"auc": 0.70}
    assert cfg.floors("thresholds", exact) == {}


def test_a_case_at_chance_has_no_floors_and_says_why(tmp_path):
    cfg, cases = _config(tmp_path)
    task = cases["local-gemma-3-270m-generation-task-normal"]
    assert cfg.at_chance(task) == ("answers in other words", 0.02)
    assert cfg.floors("ranking", task) == {}
    assert cfg.at_chance(cases["local-gemma-3-270m-exact-task-normal"]) is None


@pytest.mark.parametrize(
    "extra",
    [
        "[expectations.thresholds.floors.generation]\nbest_f1 = 0.0",
        "[[expectations.thresholds.overrides]]\ncases = ['*']\naverage_precision = 0",
    ],
)
def test_a_vacuous_floor_is_rejected(tmp_path, extra):
    with pytest.raises(ConfigError, match="vacuous floor"):
        _config(tmp_path, extra)


def test_unknown_regression_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="tolerance: unknown key"):
        _config(tmp_path, "[expectations.regression]\ntolerance = 0.02")
    cfg, _ = _config(tmp_path, "[expectations.regression]\nalpha = 0.01\nmin_effect = 0.05")
    assert cfg.expect("regression", "alpha") == 0.01


# -- chance -----------------------------------------------------------------------------------


def test_chance_distribution_matches_theory_for_one_true_label_in_ten():
    truth = np.zeros((60, 10), dtype=bool)
    truth[np.arange(60), np.arange(60) % 10] = True
    d = chance_distribution(truth, k=3, n_sim=2000, seed=0)
    assert d["top1_acc"].mean() == pytest.approx(0.1, abs=0.005)
    assert d["topk_acc"].mean() == pytest.approx(0.3, abs=0.005)
    assert d["mrr"].mean() == pytest.approx(sum(1 / r for r in range(1, 11)) / 10, abs=0.005)
    assert d["auc"].mean() == pytest.approx(0.5, abs=0.005)
    # best F1 at chance is near predicting everything: 2 * 0.1 / 1.1
    assert d["best_f1"].mean() == pytest.approx(2 * 0.1 / 1.1, abs=0.02)
    assert d["average_precision"].mean() == pytest.approx(0.1, abs=0.03)
    assert d["average_precision"].mean() > 0.1  # a random ranking beats the prevalence a bit


def test_weak_floors_are_reported_strong_ones_not(tmp_path):
    extra = "[expectations.thresholds.floors.exact]\nbest_f1 = 0.34\naverage_precision = 0.5"
    cfg, cases = _config(tmp_path, extra)
    ds = cfg.load_dataset()
    exact = [c for c in cases.values() if c.method == "exact"]
    lines = weak_floors(cfg, exact, ds)
    assert len(lines) == len(exact)  # best F1 0.34: chance reaches it; AUC 0.70 and AP 0.5 not
    assert all("best_f1 = 0.340 is cleared by a scorer at chance" in ln for ln in lines)
    gen = [cases["local-gemma-3-270m-generation-simple-normal"]]
    assert weak_floors(cfg, gen, ds) == []  # auc 0.60, mrr 0.50: above chance's 95%
    mrr_only = textwrap.dedent("""
        [[expectations.ranking.overrides]]
        cases = ["*-generation-simple-normal"]
        mrr = 0.45
    """)
    cfg, cases = _config(tmp_path, mrr_only)
    weak = weak_floors(cfg, [cases["local-gemma-3-270m-generation-simple-normal"]], ds)
    assert len(weak) == 1 and "mrr = 0.450" in weak[0]
