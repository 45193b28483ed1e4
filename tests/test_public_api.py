from __future__ import annotations

import subprocess
import sys

import logprob_eval


def test_exported_names_exist():
    for name in logprob_eval.__all__:
        assert hasattr(logprob_eval, name), name


def test_library_imports_without_pytest():
    code = (
        "import sys; sys.modules['pytest'] = None; import logprob_eval, "
        "logprob_eval.datasets, logprob_eval.prompts; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
