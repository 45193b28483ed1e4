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
        "logprob_eval.data.datasets, logprob_eval.data.prompts; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_experiments_exports_resolve_and_chance_stays_light():
    import logprob_eval.experiments as experiments

    for name in experiments.__all__:
        assert callable(getattr(experiments, name)) or name == "TRANSFORMS", name
    assert set(experiments.__all__) <= set(dir(experiments))
    # the collection-time floor check imports experiments.chance: numpy only, no scipy/pandas
    code = (
        "import sys; import logprob_eval.experiments.chance; "
        "print(sorted(m for m in ('pandas', 'scipy', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
