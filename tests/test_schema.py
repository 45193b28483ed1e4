"""The eval config's schema: unknown keys with the nearest valid one, ranges, backend
options, all problems at once; the same rules under ``[tool.logprob_eval]``."""

from __future__ import annotations

import pytest

from logprob_eval.errors import ConfigError
from logprob_eval.evalsuite.config import load_eval_config
from logprob_eval.evalsuite.schema import backend_options, validate_suite_config

GOOD = {
    "models": [{"spec": "local:gemma-3-270m", "methods": ["exact"], "max_tokens": 4}],
    "expectations": {"ranking": {"floors": {"exact": {"auc": 0.7}}}},
}


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate_suite_config(data, "cfg.toml")
    head, *lines = str(err.value).splitlines()
    assert head == "cfg.toml: invalid configuration:"
    return [ln.strip() for ln in lines]


def test_a_valid_config_passes_and_keeps_values():
    cfg = validate_suite_config(GOOD, "cfg.toml")
    assert cfg.expectations.ranking.floors["exact"].auc == 0.7
    assert cfg.models[0].model_extra == {"max_tokens": 4}
    assert cfg.dataset.sample is None
    assert (cfg.expectations.regression.alpha, cfg.expectations.regression.min_effect) == (
        0.05,
        0.02,
    )


def test_every_problem_is_listed_with_its_path_and_nearest_key():
    data = {
        **GOOD,
        "datset": {},
        "expectations": {"rankng": {}, "thresholds": {"floors": {"exact": {"bestf1": 0.5}}}},
    }
    assert sorted(problems(data)) == [
        "datset: unknown key; did you mean 'dataset'?",
        "expectations.rankng: unknown key; did you mean 'ranking'?",
        "expectations.thresholds.floors.exact.bestf1: unknown key; did you mean 'best_f1'?",
    ]


def test_a_key_far_from_every_valid_one_lists_them():
    assert problems({"expectations": {"stability": {"xyz": 1}}}) == [
        "expectations.stability.xyz: unknown key; valid keys: template_tau, label_set_tau"
    ]


@pytest.mark.parametrize(
    ("section", "metric", "value"),
    [
        ("ranking", "auc", 1.7),
        ("ranking", "mrr", -0.1),
        ("thresholds", "transfer_kept", 1.2),
    ],
)
def test_floors_must_lie_in_their_metric_range(section, metric, value):
    data = {"expectations": {section: {"floors": {"generation": {metric: value}}}}}
    (line,) = problems(data)
    assert line.startswith(f"expectations.{section}.floors.generation.{metric} = {value}: ")


def test_override_floors_are_checked_too():
    data = {"expectations": {"ranking": {"overrides": [{"cases": ["*"], "acu": 0.5}]}}}
    assert problems(data) == [
        "expectations.ranking.overrides[0].acu: unknown key; did you mean 'auc'?"
    ]


def test_tau_floors_may_be_negative_but_not_below_minus_one():
    ok = {"expectations": {"stability": {"template_tau": -0.2}}}
    assert validate_suite_config(ok, "c").expectations.stability.template_tau == -0.2
    assert problems({"expectations": {"stability": {"template_tau": -1.5}}})[0].startswith(
        "expectations.stability.template_tau = -1.5"
    )


def test_model_options_are_checked_against_the_backend():
    data = {"models": [{"spec": "ollama:llama3.2", "top_logprob": 5, "endpoint": "chat"}]}
    assert problems(data) == [
        "models[0].top_logprob: unknown option for ollama; did you mean 'top_logprobs'?"
    ]
    assert problems({"models": [{"spec": "olama:x"}]})[0].startswith(
        "models[0].spec = 'olama:x': unknown provider"
    )


def test_backend_options_follow_forwarded_kwargs():
    local = backend_options("local")
    assert {"server_options", "normalize", "top_logprobs", "timeout", "match_options"} <= set(local)
    assert "host" not in local and "host" in backend_options("ollama")


def test_pyproject_tool_table(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "x"\n[tool.logprob_eval]\n[[tool.logprob_eval.models]]\n'
        'spec = "local:gemma-3-270m"\n[tool.logprob_eval.grd]\n'
    )
    with pytest.raises(ConfigError, match=r"grd: unknown key; did you mean 'grid'\?"):
        load_eval_config(path)


def test_a_folder_stands_for_its_evals_toml_and_else_is_named(tmp_path):
    (tmp_path / "evals.toml").write_text('[[models]]\nspec = "local:gemma-3-270m"\n')
    assert load_eval_config(tmp_path).path == tmp_path / "evals.toml"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"'.*empty' is a folder, not a TOML file; pass"):
        load_eval_config(tmp_path / "empty")


def test_unknown_names_in_the_grid_suggest_the_nearest(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text('[[models]]\nspec = "local:gemma-3-270m"\n[grid]\ntemplates = ["questoin"]\n')
    with pytest.raises(ConfigError, match="unknown template 'questoin'; did you mean 'question'"):
        load_eval_config(path)


def test_label_sets_must_cover_the_dataset(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(
        '[[models]]\nspec = "local:gemma-3-270m"\n[grid]\nlabel_sets = ["few"]\n'
        '[label_sets.few]\nSports = "sport"\nArt = "art"\n'
    )
    cfg = load_eval_config(path)
    with pytest.raises(ConfigError, match=r"label set 'few' has no phrase for 'Technology'"):
        cfg.check_label_sets(cfg.load_dataset(tmp_path), cfg.cases())


def test_a_sample_larger_than_the_dataset_is_an_error(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text('[dataset]\nsample = 500\n[[models]]\nspec = "local:gemma-3-270m"\n')
    with pytest.raises(ConfigError, match=r"dataset.sample = 500 but .* has 160 texts"):
        load_eval_config(path).load_dataset(tmp_path)
