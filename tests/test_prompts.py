from __future__ import annotations

import pytest

from logprob_eval.data.prompts import (
    LABEL_SETS,
    TEMPLATES,
    TOPICS,
    LabelSet,
    Template,
    get_label_set,
    get_template,
    load_prompt_config,
)
from logprob_eval.errors import ConfigError, UnknownNameError

STUDY_TEMPLATES = [
    "simple",
    "instruction",
    "question",
    "cot",
    "json",
    "role",
    "task",
    "constrained",
    "natural",
]


def test_the_nine_templates_and_three_phrasings_exist():
    assert list(TEMPLATES) == STUDY_TEMPLATES
    assert set(LABEL_SETS) == {"simple", "normal", "verbose"}


@pytest.mark.parametrize("name", STUDY_TEMPLATES)
def test_every_template_renders_text_and_labels(name):
    prompt = get_template(name).render("A goal in the last minute.", LABEL_SETS["normal"])
    assert "A goal in the last minute." in prompt
    assert "Technology, Sports, Politics" in prompt
    assert "{" not in prompt.replace('{"topic"', "")


def test_phrasings_map_to_the_same_canonical_labels():
    for ls in LABEL_SETS.values():
        assert ls.canonical == TOPICS
    assert LABEL_SETS["simple"].phrase("Technology") == "tech"
    assert LABEL_SETS["verbose"].phrase("History") == "article about history"
    assert LABEL_SETS["verbose"].to_canonical("article about food") == "Food"


def test_template_without_text_is_rejected():
    with pytest.raises(ConfigError, match=r"no \{text\} placeholder"):
        Template("bad", "Topics: {labels}\nTopic:")


@pytest.mark.parametrize(
    "text", ["{text} {topics}", "{text} {0}", "{text} {text.upper}", "{text} {}"]
)
def test_unknown_placeholder_is_rejected(text):
    with pytest.raises(ConfigError, match="unknown placeholder"):
        Template("bad", text)


def test_broken_brace_is_rejected():
    with pytest.raises(ConfigError, match="literal braces"):
        Template("bad", "{text} {")


def test_unknown_names_list_the_choices():
    with pytest.raises(UnknownNameError, match="unknown template 'fancy': choose one of"):
        get_template("fancy")
    with pytest.raises(UnknownNameError, match="simple"):
        get_label_set("shouty")


def test_label_set_rejects_duplicate_phrases():
    with pytest.raises(ConfigError, match="share the phrase"):
        LabelSet("x", {"A": "same", "B": "Same"})


def test_user_templates_and_label_sets_from_toml(tmp_path):
    cfg = tmp_path / "pyproject.toml"
    cfg.write_text(
        '[tool.logprob_eval.templates]\nterse = "{text}\\nLabel:"\n'
        '[tool.logprob_eval.label_sets.caps]\nSports = "SPORTS"\nArt = "ART"\n'
    )
    pc = load_prompt_config(cfg)
    assert pc.templates["terse"].render("hi") == "hi\nLabel:"
    assert pc.label_sets["caps"].phrases == ("SPORTS", "ART")
    assert "simple" in pc.templates  # built-ins stay


def test_bad_user_template_in_toml_names_it(tmp_path):
    cfg = tmp_path / "evals.toml"
    cfg.write_text('[templates]\nbroken = "Labels: {labels}"\n')
    with pytest.raises(ConfigError, match="'broken'"):
        load_prompt_config(cfg)


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("[templates\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_prompt_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_prompt_config(tmp_path / "nope.toml")
