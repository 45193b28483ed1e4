"""Project-level pytest defaults for this repository (the plugin itself ships in the package:
``logprob_eval.plugin``, registered as a ``pytest11`` entry point).

Cassettes live in the top-level ``cassettes/`` and the suite's config in ``evals/evals.toml``
(see ``[tool.pytest.ini_options]``); here: hypothesis profiles for tests/ and evals/.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
