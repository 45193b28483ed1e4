"""The pytest plugin (``pytest11`` entry point ``logprob_eval``): options, markers, fixtures,
the case matrix and the run's report. Thin: the work is in :mod:`logprob_eval.evalsuite`,
imported when first needed.

Record mode comes from pytest-recording's ``--record-mode`` (default ``none``: replay
only; a case without a cassette skips, a request without a recording fails the case).
Precedence for the config file: ``--llm-config`` > an ``evals.toml`` in (or above) a path
argument > ini ``llm_config`` > ``evals/evals.toml``. The config file itself is collected as
the suite's built-in checks (:mod:`logprob_eval.evalsuite.collect`; ini
``llm_builtin_checks = false`` leaves only the test modules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .evalsuite.session import run_of

_STALE_KEY = pytest.StashKey[tuple[str, str]]()  # a test's stale cassette, its case id
_FAILURES_KEY = pytest.StashKey[list[dict[str, Any]]]()  # a failed check's, for the report

METHODS = ("exact", "generation", "forced")


def pytest_addoption(parser: pytest.Parser) -> None:
    from .reporting.retention import keep_count  # small and pytest-free

    group = parser.getgroup("logprob-eval", "LLM label log-prob evaluation")
    group.addoption(
        "--llm-config",
        default=None,
        help="eval suite config (TOML); default: ini llm_config or evals/evals.toml",
    )
    group.addoption(
        "--llm-model",
        action="append",
        default=None,
        help="only cases of this model spec (repeatable), e.g. local:gemma-3-270m",
    )
    group.addoption(
        "--llm-method", choices=METHODS, default=None, help="only cases of this scoring method"
    )
    group.addoption(
        "--update-baselines",
        action="store_true",
        default=False,
        help="rewrite evals/baselines/ from this run's metrics",
    )
    group.addoption(
        "--llm-report-dir", default="reports", help="where the run's report goes (default: reports)"
    )
    group.addoption(
        "--llm-no-report", action="store_true", default=False, help="do not write a report"
    )
    group.addoption(
        "--llm-keep-reports",
        type=keep_count,
        default=10,
        metavar="N",
        help="keep the newest N run folders in the report dir, 0 keeps all (default: 10); "
        "only folders logprob-eval created are ever deleted",
    )
    group.addoption(
        "--llm-compare-to",
        default=None,
        metavar="DIR",
        help="compare this run with an earlier report folder (paired tests, flipped texts); "
        "writes comparison.md/.json into this run's report",
    )
    parser.addini("llm_config", "eval suite config file", default="evals/evals.toml")
    parser.addini(
        "llm_cassette_dir",
        "cassette directory (default: cassettes/ beside the config file)",
        default="",
    )
    parser.addini(
        "llm_builtin_checks",
        "collect the config file as the suite's built-in checks (default: true)",
        type="bool",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    from .evalsuite.collect import MARKERS  # pytest and the suite's light modules only

    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    run = run_of(config)
    config.pluginmanager.register(run.outcomes, "logprob_eval_outcomes")
    if run.requested and not hasattr(config, "workerinput"):
        run.validate()  # an xdist worker runs what its controller checked


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """The suite's config file, collected as its built-in checks."""
    run = run_of(parent.config)
    if file_path.suffix != ".toml" or not parent.config.getini("llm_builtin_checks"):
        return None
    if not run.requested or file_path.resolve() != run.config_path.resolve():
        return None
    from .evalsuite.collect import SuiteFile

    return SuiteFile.from_parent(parent, path=file_path)  # type: ignore[no-any-return]


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """Floors a scorer at chance clears more than 1 time in 20 on the suite's texts (under
    xdist, the controller lists them once a worker has collected; workers print nothing)."""
    run = run_of(config)
    return run.weak_floor_lines() if run.requested else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from .evalsuite.collect import parametrize
    from .evalsuite.matrix import CASE_PARAMS

    if not set(metafunc.fixturenames) & set(CASE_PARAMS):
        return
    try:
        cases = run_of(metafunc.config).cases
    except Exception as exc:  # a broken config: say so once, at collection
        raise pytest.UsageError(f"logprob-eval: {exc}") from None
    parametrize(metafunc, cases)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A suite run freezes what collection left alive (``Session.freeze``). Under xdist, the
    tests of one case run next to each other (:func:`.evalsuite.matrix.case_order`)."""
    run = run_of(config)
    if run.requested:
        run.freeze()
    if hasattr(config, "workerinput"):
        from .evalsuite.matrix import case_order

        items.sort(key=case_order)


@pytest.fixture(scope="session")
def llm_config(request: pytest.FixtureRequest) -> Any:
    """The eval suite's configuration (models, grid, dataset, expectations)."""
    return run_of(request.config).suite


@pytest.fixture(scope="session")
def llm_runner(request: pytest.FixtureRequest, llm_config: Any) -> Iterator[Any]:
    """Scores cases through their cassettes (or live when recording); one per process."""
    from .evalsuite.results import worker_share_dir
    from .evalsuite.runner import RECORD_MODES, SuiteRunner

    mode = request.config.getoption("--record-mode", default=None) or "none"
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"--record-mode={mode!r}: choose one of {RECORD_MODES}")
    run = run_of(request.config)
    run.runner = SuiteRunner(
        llm_config,
        cassette_dir=run.cassette_dir,
        record_mode=mode,
        root=request.config.rootpath,
        share_dir=worker_share_dir(request.config),
    )
    yield run.runner
    run.runner.close()


@pytest.fixture(scope="session")
def llm_dataset(llm_runner: Any) -> Any:
    """The dataset sample every case scores."""
    return llm_runner.dataset


@pytest.fixture
def llm_scores(llm_runner: Any) -> Callable[[Any], Any]:
    """``llm_scores(case)`` -> the tidy frame of that case (skips or fails with a reason)."""
    return llm_runner.frame  # type: ignore[no-any-return]


@pytest.fixture
def llm_metrics(llm_runner: Any) -> Callable[[Any], Any]:
    """``llm_metrics(case)`` -> its metrics with bootstrap intervals (a
    :class:`~logprob_eval.evalsuite.casemetrics.CaseMetrics`): ranking, threshold sweep and
    transfer, computed once per process and shown as they are in the run's report (skips
    like ``llm_scores``)."""
    from .evalsuite.casemetrics import CaseMetrics

    def get(case: Any) -> Any:
        return CaseMetrics.of(case.id, llm_runner.analysis(case))

    return get


@pytest.fixture
def update_baselines(request: pytest.FixtureRequest) -> bool:
    """True when ``--update-baselines`` asks to rewrite the stored baselines."""
    return bool(request.config.getoption("--update-baselines"))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """The runner's expected errors as one-line outcomes: a case without a cassette (or a
    model without log-probs) skips; a stale or corrupt cassette, a failed recording and a
    failed check (unless ``--tb`` asks for tracebacks) fail with their message alone."""
    from .errors import CheckFailed, LogprobsUnsupportedError
    from .evalsuite.cassettes import (  # light: no numpy/pandas at collection
        CassetteCorruptError,
        CassetteMissError,
        NoCassetteError,
        RecordingFailedError,
    )

    skip = fail = ""
    try:
        return (yield)
    except (NoCassetteError, LogprobsUnsupportedError) as exc:
        skip = str(exc)
    except CassetteMissError as exc:
        fail = str(exc)
        if exc.case is not None:  # for the run's closing line on stale cassettes
            pyfuncitem.stash[_STALE_KEY] = (exc.cassette, exc.case.id)
    except (CassetteCorruptError, RecordingFailedError) as exc:
        fail = str(exc)
    except CheckFailed as exc:
        if pyfuncitem.config.option.tbstyle != "auto":
            raise
        pyfuncitem.stash[_FAILURES_KEY], fail = exc.failures, str(exc)
    if skip:  # outside the handlers: no chained traceback
        pytest.skip(skip)
    pytest.fail(fail, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Tag each report of a suite test with its case and, on failure, what failed (plain
    attributes: xdist carries them to the controller, see :mod:`.evalsuite.outcomes`)."""
    from .evalsuite.matrix import CASE_PARAMS

    report = yield
    params = getattr(getattr(item, "callspec", None), "params", {})
    if any(p in params for p in CASE_PARAMS):
        case = params.get("llm_case")
        first = case or next(
            (g[0] for p in CASE_PARAMS[1:] if isinstance(g := params.get(p), list | tuple)),
            None,
        )
        report.llm_case = {
            "case": item.callspec.id,  # type: ignore[attr-defined]
            "config": case.config if case is not None else None,
            "model": first.model.report_name if first is not None else "",
            "test": getattr(item, "originalname", item.name),
        }
        if call.excinfo is not None and report.failed:
            failures = getattr(call.excinfo.value, "failures", None)
            report.llm_failures = item.stash.get(_FAILURES_KEY, failures)
            report.llm_message = str(call.excinfo.value)[:2000]
            report.llm_stale = item.stash.get(_STALE_KEY, None)
    return report


# -- the run's results, from every process to the report (see evalsuite/results.py) ---------
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A worker hands its results to the controller; the controller (or a serial run)
    writes the report."""
    from .evalsuite import results

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        results.hand_over(run_of(session.config), workeroutput)
    else:
        results.write_report(run_of(session.config), exitstatus)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    from .evalsuite.results import share_dir

    share_dir(run_of(node.config), node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """The floors a scorer at chance clears, listed by the controller once (its workers
    collect silently)."""
    run = run_of(node.config)
    reporter = node.config.pluginmanager.get_plugin("terminalreporter")
    if run.requested and reporter is not None and not run.floors_listed:
        run.floors_listed = True
        for line in run.weak_floor_lines():
            reporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    from .evalsuite.results import receive

    receive(run_of(node.config), getattr(node, "workeroutput", {}))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from .evalsuite.results import terminal_summary

    terminal_summary(terminalreporter, run_of(config))
