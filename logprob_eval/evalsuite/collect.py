"""A suite's config file collected as its tests: ``pytest FOLDER`` on a folder holding an
``evals.toml`` runs every built-in check the config declares, with no test module to copy.

The checks are the modules of :mod:`logprob_eval.evalsuite.suite` (ranking, stability,
thresholds, regression, method agreement, agreement across servers); each becomes one
collector under the config file, so their ids read
``evals/evals.toml::ranking::test_ranking[CASE]``. The plugin's
``pytest_generate_tests`` parametrizes them over the config's cases like any test module's.
Test modules beside the config stay possible, for custom assertions through the fixtures.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

__all__ = ["CHECK_MODULES", "SuiteFile"]

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
