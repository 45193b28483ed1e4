"""The run's report opened in a real browser (headless Chromium over DevTools): a small
suite with one failing case writes it through the plugin, then the page must show the
verdict first, load every image, resolve every anchor and fetch nothing from the network.
Skips where the Debian package ``chromium`` is absent (``.ci/run`` installs it)."""

from __future__ import annotations

import json

import pytest
from werkzeug import Request, Response

from .browser import Chromium, find_chromium
from .helpers import fake_echo_completions

pytest_plugins = ["pytester"]

CONFIG = """
[dataset]
path = "topics"
sample = 12
seed = 1

[[models]]
spec = "openai-compatible:fake@{url}"
methods = ["exact"]

[grid]
templates = ["simple", "question", "json"]
label_sets = ["normal", "simple"]
"""

# the question template is held to an impossible AUC floor: its two cases fail
EVAL_TEST = """
from logprob_eval.evalsuite.checks import check_floors

def test_ranking(llm_case, llm_metrics):
    m = llm_metrics(llm_case).ranking
    floor = 1.01 if llm_case.template.name == "question" else 0.0
    check_floors(llm_case.id, m.as_dict(), {"auc": floor})
"""
FAILING = [
    "openai-compatible-fake-exact-question-normal",
    "openai-compatible-fake-exact-question-simple",
]


@pytest.fixture
def report(pytester, httpserver, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def handler(request: Request) -> Response:
        body = fake_echo_completions(json.loads(request.get_data()))
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/completions").respond_with_handler(handler)
    pytester.makefile(".toml", evals=CONFIG.format(url=httpserver.url_for("/v1")))
    pytester.makeini(
        "[pytest]\nllm_config = evals.toml\nllm_cassette_dir = cassettes\n"
        "llm_builtin_checks = false\n"
    )
    pytester.makepyfile(test_evals=EVAL_TEST)
    result = pytester.runpytest_subprocess("--record-mode=once")
    result.assert_outcomes(passed=4, failed=2)
    run = (pytester.path / "reports" / "latest").resolve()
    for case in FAILING:  # the terminal summary points at each failing case's anchor
        result.stdout.fnmatch_lines([f"*failed: {run / 'report.html'}#case-{case}"])
    return run / "report.html"


def test_report_in_headless_chromium(report, tmp_path):
    exe = find_chromium()
    if exe is None:
        pytest.skip("no chromium on PATH: install the Debian package (apt-get install chromium)")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    with Chromium(exe, profile) as browser:
        browser.open(report.as_uri())
        shot = browser.screenshot(tmp_path / "report-top.png")

        images = browser.evaluate(
            "Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])"
        )
        assert len(images) >= 3
        assert [src for src, width in images if width <= 0] == []  # every image loaded

        # the verdict comes first, and shows both failing cases as failing
        first_h2 = browser.evaluate("document.querySelector('h2').id")
        assert first_h2 == "verdict"
        verdicts = browser.evaluate(
            "Object.fromEntries(Array.from(document.querySelectorAll('table.verdict > tbody > tr'))"
            ".map(r => [r.id, r.children[1].textContent]))"
        )
        assert {k: v for k, v in verdicts.items() if v == "FAIL"} == {
            f"case-{c}": "FAIL" for c in FAILING
        }
        assert len(verdicts) == 6
        detail = browser.evaluate(f"document.getElementById('case-{FAILING[0]}').innerText")
        assert "auc" in detail and "floor 1.010" in detail

        # every in-page link resolves to an element
        dangling = browser.evaluate(
            "Array.from(document.querySelectorAll('a[href^=\"#\"]'))"
            ".map(a => decodeURIComponent(a.getAttribute('href').slice(1)))"
            ".filter(id => !document.getElementById(id))"
        )
        assert dangling == []
        # the failing cases' worst texts are there, with rankings
        rankings = browser.evaluate(
            f"document.getElementById('texts-{FAILING[0]}').nextElementSibling"
            ".querySelectorAll('ol').length"
        )
        assert rankings >= 1

        # opening a case's anchor scrolls to its row
        browser.open("about:blank")
        browser.open(f"{report.as_uri()}#case-{FAILING[1]}")
        target = browser.evaluate(
            "(() => { const t = document.querySelector(':target');"
            " const r = t.getBoundingClientRect();"
            " return [t.id, window.scrollY > 0, r.bottom > 0 && r.top < window.innerHeight];"
            " })()"
        )
        assert target == [f"case-{FAILING[1]}", True, True]  # scrolled to, and in view

        # nothing but the report's own files was fetched
        urls = browser.requested_urls()
        assert urls and all(u.startswith("file://") for u in urls), urls
    assert shot.stat().st_size > 10_000  # the screenshot artifact is kept under tmp_path
