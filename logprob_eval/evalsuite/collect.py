"""A suite's config file collected as its tests: ``pytest FOLDER`` on a folder holding an
``evals.toml`` runs every built-in check the config declares, with no test module to copy.

The checks are the modules of :mod:`logprob_eval.evalsuite.suite` (ranking, stability,
thresholds, regression, method agreement, agreement across servers); each becomes one
collector under the config file, so their ids read
``evals/evals.toml::ranking::test_ranking[CASE]``. The plugin's
``pytest_generate_tests`` parametrizes them over the config's cases like any test module's.
Test modules beside the config stay possible, for custom assertions through the fixtures.

:func:`parametrize` gives any test that asks for a case fixture (``llm_case``, the groups
and the pairs of :mod:`.matrix`) its parameters, marked by provider and server; a
comparison with nothing to compare gets one parameter that skips and says why.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from . import matrix

__all__ = ["CHECK_MODULES", "MARKERS", "SuiteFile", "parametrize"]

MARKERS = {
    "live": "talks to a model server (local, OpenAI or Ollama) when recording",
    "local": "uses the embedded local model (local:gemma-3-270m)",
    "openai": "uses the OpenAI API (record with OPENAI_API_KEY set)",
    "ollama": "uses an Ollama server (>= 0.12.11)",
    "gemini": "uses the Gemini API (record with GEMINI_API_KEY set)",
    "anthropic": "names an Anthropic model: skips, Anthropic returns no log-probs",
    "llama_server": "served by llama.cpp's llama-server, which the suite starts when recording",
    "llama_cpp_python": "served by llama-cpp-python's server, started when recording",
}
_MARKER_OF = {"openai-responses": "openai"}  # providers marked by another provider's name

CHECK_MODULES = (
    "ranking",
    "stability",
    "thresholds",
    "regression",
    "method_agreement",
    "server_agreement",
    "forced_agreement",
)
"""The built-in checks, in the order they run."""


class _CheckModule(pytest.Module):
    """One built-in check module, collected like a test file but imported from the
    package (its path is the config file's, so ids and ``-k`` read as the suite's)."""

    def _getobj(self) -> ModuleType:  # pytest.Module imports self.path; ours is a package module
        return importlib.import_module(f"logprob_eval.evalsuite.suite.{self.name}")


class SuiteFile(pytest.File):
    """The config file: one :class:`_CheckModule` per built-in check."""

    def collect(self) -> Iterator[Any]:
        for name in CHECK_MODULES:
            yield _CheckModule.from_parent(
                self, name=name, path=self.path, nodeid=f"{self.nodeid}::{name}"
            )


def _marks(case: Any) -> list[Any]:
    marks = [pytest.mark.live]
    provider = _MARKER_OF.get(case.model.provider, case.model.provider)
    if provider in MARKERS:
        marks.append(getattr(pytest.mark, provider))
    if case.model.server is not None and provider != "local":
        from ..server.thirdparty import SERVER_MARKS

        marks.append(getattr(pytest.mark, SERVER_MARKS[case.model.server]))
    return marks


def _nothing_to_compare(reason: str) -> Any:
    """The one parameter of a comparison with nothing to compare: it skips and says why
    (an empty parameter set would reach the hooks as pytest's NOTSET)."""
    return pytest.param(
        None,
        id="nothing-to-compare",
        marks=pytest.mark.skip(reason=f"nothing to compare: {reason}"),
    )


_NOTHING = {
    "llm_template_group": "no two cases differ only in their template: add a second one to "
    "[grid] templates to check rank agreement across them",
    "llm_label_group": "no two cases differ only in their label set: add a second one to "
    "[grid] label_sets to check rank agreement across them",
    "llm_server_pair": "no config is scored on two servers the suite starts (spec = "
    '"MODEL@llama-server", "@llama-cpp-python" or "@logprob-eval")',
    "llm_forced_pair": "no forced case has an exact case of the same config: give one model "
    'methods = ["forced"] and one (same GGUF and batching, a server with echo) ["exact"]',
    "llm_method_pair": 'no case is scored by both methods: give a model methods = ["generation", '
    '"exact"] to check the generation bounds against exact scores',
}
"""Why a comparison has nothing to compare, by fixture."""


def _comparisons(fixture: str, cases: list[Any]) -> dict[str, tuple[Any, Any]]:
    """A comparison fixture's parameters: test id -> (parameter, the case it is marked as)."""
    if fixture in ("llm_template_group", "llm_label_group"):
        vary = "template" if fixture == "llm_template_group" else "label_set"
        return {k: (g, g[0]) for k, g in matrix.groups(cases, vary).items()}
    if fixture == "llm_server_pair":
        return {f"{a.id}-vs-{b.model.slug}": ((a, b), b) for a, b in matrix.server_pairs(cases)}
    if fixture == "llm_forced_pair":
        pairs = matrix.forced_pairs(cases)
        return {f"{f.id}-vs-{e.model.slug}-exact": ((f, e), f) for f, e in pairs}
    return {matrix.pair_id(p): (p, p[0]) for p in matrix.method_pairs(cases)}


def _params(fixture: str, cases: list[Any]) -> list[Any]:
    if fixture == "llm_case":
        return [pytest.param(c, id=c.id, marks=_marks(c)) for c in cases]
    found = _comparisons(fixture, cases)
    return [pytest.param(v, id=k, marks=_marks(c)) for k, (v, c) in found.items()] or [
        _nothing_to_compare(_NOTHING[fixture])
    ]


def parametrize(metafunc: pytest.Metafunc, cases: list[Any]) -> None:
    """Parametrize each case fixture ``metafunc`` asks for over ``cases``."""
    for fixture in matrix.CASE_PARAMS:
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, _params(fixture, cases))
