"""Gemini, OpenAI Responses and Anthropic cases in an eval suite, end to end (pytester):
skip with the record command, record against loopback stand-ins, replay offline, and no
key anywhere. The stand-ins answer with bodies written from the providers' API reference
(``api_bodies.py``); they are not models.
"""

from __future__ import annotations

import json

import pytest

from .api_bodies import GEMINI_GENERATE, OPENAI_RESPONSES

pytest_plugins = ["pytester"]

EVAL_TEST = """
from logprob_eval.experiments import ranking_metrics, split_content_free

def test_ranking(llm_case, llm_scores):
    df, _ = split_content_free(llm_scores(llm_case))
    m = ranking_metrics(df, llm_case.config)
    assert m.n_examples == 6
    assert m.n_errors == 0
"""

CONFIG = """
[dataset]
path = "topics"
sample = 6
seed = 1

[[models]]
spec = "gemini:gemini-2.0-flash"
methods = ["generation"]
base_url = "{url}/v1beta"
top_logprobs = 20
max_tokens = 8

[[models]]
spec = "openai-responses:gpt-4.1-mini"
methods = ["generation"]
base_url = "{url}/v1"
max_tokens = 16

[[models]]
spec = "anthropic:claude-sonnet-4-5"
methods = ["generation"]

[grid]
templates = ["simple"]
label_sets = ["normal"]
"""

GEMINI_KEY = "AIza" + "SyRECORD0fake1fake2fake3fake4fake5"
OPENAI_KEY = "sk-proj-" + "Rsp" * 12


@pytest.fixture
def suite(pytester, httpserver, monkeypatch):
    for var in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "HYPOTHESIS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    httpserver.expect_request("/v1beta/models/gemini-2.0-flash:generateContent").respond_with_json(
        GEMINI_GENERATE
    )
    httpserver.expect_request("/v1/responses").respond_with_json(OPENAI_RESPONSES)
    url = httpserver.url_for("").rstrip("/")
    pytester.makefile(".toml", evals=CONFIG.format(url=url))
    pytester.makeini(
        "[pytest]\nllm_config = evals.toml\nllm_cassette_dir = cassettes\n"
        "llm_builtin_checks = false\n"
    )
    pytester.makepyfile(test_evals=EVAL_TEST)
    return pytester


def test_cases_skip_with_their_record_command_or_anthropics_reason(suite, httpserver):
    result = suite.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines_random(
        [
            "*no cassette for gemini-gemini-2.0-flash-generation-simple-normal*record with "
            "`GEMINI_API_KEY=... pytest . -m gemini -k "
            "gemini-gemini-2.0-flash-generation-simple-normal --record-mode=once`*",
            "*no cassette for openai-responses-gpt-4.1-mini-generation-simple-normal*"
            "`OPENAI_API_KEY=... pytest . -m openai -k *--record-mode=once`*",
            "*logprobs unsupported for anthropic:claude-sonnet-4-5: Anthropic's API returns no*",
        ]
    )
    assert httpserver.log == []
    only = suite.runpytest_subprocess("-m", "gemini", "--collect-only", "-q")
    only.stdout.fnmatch_lines(["*1/3 tests collected (2 deselected)*"])


def test_record_then_replay_offline_and_no_key_anywhere(suite, httpserver, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    rec = suite.runpytest_subprocess("--record-mode=once", "-m", "gemini or openai")
    rec.assert_outcomes(passed=2, deselected=1)
    # the keys really went out, in their headers ...
    headers = [r.headers for r, _ in httpserver.log]
    assert any(h.get("x-goog-api-key") == GEMINI_KEY for h in headers)
    assert any(h.get("Authorization") == f"Bearer {OPENAI_KEY}" for h in headers)
    # ... and are nowhere the run left anything
    assert GEMINI_KEY not in rec.stdout.str() + rec.stderr.str()
    assert OPENAI_KEY not in rec.stdout.str() + rec.stderr.str()
    files = [p for p in suite.path.rglob("*") if p.is_file() and p.suffix != ".pyc"]
    for path in files:
        text = path.read_text(errors="replace")
        assert GEMINI_KEY not in text and OPENAI_KEY not in text, path
    cassettes = sorted((suite.path / "cassettes").glob("*.json"))
    assert [c.stem for c in cassettes] == [
        "gemini-gemini-2.0-flash-generation-simple-normal",
        "openai-responses-gpt-4.1-mini-generation-simple-normal",
    ]
    gemini = json.loads(cassettes[0].read_text())
    request = gemini["interactions"][0]["request"]
    assert request["body"]["json"]["generationConfig"]["responseLogprobs"] is True
    assert [k.lower() for k in request["headers"]] == ["content-type"]  # x-goog-api-key dropped
    sent = len(httpserver.log)

    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    replay = suite.runpytest_subprocess("-m", "gemini or openai", "--block-network")
    replay.assert_outcomes(passed=2, deselected=1)
    assert len(httpserver.log) == sent  # replay sends nothing, and needs no key


def test_config_schema_knows_the_new_providers_options(tmp_path):
    from logprob_eval.errors import ConfigError
    from logprob_eval.evalsuite.config import load_eval_config

    def load(model: str):
        path = tmp_path / "e.toml"
        path.write_text(f'[dataset]\npath = "topics"\n\n[[models]]\n{model}\n')
        return load_eval_config(path)

    ok = load('spec = "openai:gpt-4.1-mini"\napi = "responses"\nmax_tokens = 16')
    assert ok.models[0].options["api"] == "responses"
    load('spec = "gemini:gemini-2.0-flash"\ntop_logprobs = 5\nthinking_budget = 0')
    load('spec = "anthropic:claude-sonnet-4-5"')
    with pytest.raises(ConfigError, match=r"models\[0\]\.api = 'batch': choose one of chat"):
        load('spec = "openai:gpt-4.1-mini"\napi = "batch"')
    with pytest.raises(ConfigError, match=r"models\[0\]\.api: unknown option for gemini"):
        load('spec = "gemini:gemini-2.0-flash"\napi = "responses"')
    with pytest.raises(ConfigError, match=r"models\[0\]\.logprobs: unknown option for gemini"):
        load('spec = "gemini:gemini-2.0-flash"\nlogprobs = 5')
