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

import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

METHODS = ("exact", "generation", "forced")
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
_FRAMES_KEY = "logprob_eval_frames"
_COMPUTED_KEY = "logprob_eval_computed"
_SHARE_KEY = "logprob_eval_share_dir"
_STATE_KEY = pytest.StashKey[dict[str, Any]]()
_STALE_KEY = pytest.StashKey[tuple[str, str]]()  # a test's stale cassette, its case id


def _state(config: pytest.Config) -> dict[str, Any]:
    """Per-session state, kept on the config (never module-global)."""
    return config.stash.setdefault(_STATE_KEY, {})


def pytest_addoption(parser: pytest.Parser) -> None:
    from .retention import keep_count  # small and pytest-free

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
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    from .evalsuite.outcomes import OutcomeLog  # small and pytest-free

    _state(config)["outcomes"] = OutcomeLog()
    config.pluginmanager.register(_state(config)["outcomes"], "logprob_eval_outcomes")
    if _suite_requested(config) and not hasattr(config, "workerinput"):
        _validate(config)  # an xdist worker runs what its controller checked


def _report_dir(config: pytest.Config) -> Path:
    return Path(config.rootpath) / config.getoption("--llm-report-dir")


def _suite_requested(config: pytest.Config) -> bool:
    """True when this run collects the eval suite: ``--llm-config`` was given, or a path
    argument lies in (or is) the folder of the suite's config file."""
    if config.getoption("--llm-config"):
        return True
    suite = _config_path(config).parent.resolve()
    for arg in config.args:
        path = (Path(config.invocation_params.dir) / arg.split("::", 1)[0]).resolve()
        if path == suite or suite in path.parents:
            return True
    return False


def _validate(config: pytest.Config) -> None:
    """The config file, the case selection and the dataset's labels, checked once before
    collection: a problem is one usage error (exit 4), not a collection error per module."""
    from .errors import LogprobEvalError

    try:
        if not config.getoption("--llm-no-report"):
            from .outputs import prepare_dir

            prepare_dir(_report_dir(config), flag="--llm-report-dir")
        cases = _selected_cases(config)
        if config.getoption("--llm-compare-to"):
            from .compare import scores_path

            scores_path(Path(config.getoption("--llm-compare-to")))
        dataset = _eval_config(config).load_dataset(config.rootpath)
        _eval_config(config).check_label_sets(dataset, cases)
    except LogprobEvalError as exc:
        raise pytest.UsageError(f"logprob-eval: {exc}") from None
    _check_recording_can_connect(config, cases)


def _check_recording_can_connect(config: pytest.Config, cases: list[Any]) -> None:
    """Recording with the network blocked can only fail: say so at once, with the fix."""
    mode = config.getoption("--record-mode", default=None) or "none"
    blocked = config.getoption("--block-network", default=False)
    if mode == "none" or not blocked or config.getoption("--allowed-hosts", default=None):
        return
    servers = sorted({c.model.spec for c in cases})
    raise pytest.UsageError(
        f"logprob-eval: --record-mode={mode} records from the model servers, but "
        f"--block-network blocks every connection, so no case could reach its server "
        f"({', '.join(servers)}). Drop --block-network to record (pytest {_suite_arg(config)} "
        f"--record-mode={mode}), or allow the server's host, e.g. --allowed-hosts=127.0.0.1 "
        "for the local model"
    )


SUITE_FILE = "evals.toml"


def _config_path(config: pytest.Config) -> Path:
    state = _state(config)
    if "config_path" not in state:
        raw = config.getoption("--llm-config")
        found = None if raw else _suite_file_of_args(config)
        if found is not None:
            state["config_path"] = found
        else:
            path = Path(raw or config.getini("llm_config"))
            state["config_path"] = path if path.is_absolute() else Path(config.rootpath) / path
    return Path(state["config_path"])


def _suite_file_of_args(config: pytest.Config) -> Path | None:
    """The ``evals.toml`` nearest at or above the first path argument that has one."""
    for arg in config.args:
        path = (Path(config.invocation_params.dir) / arg.split("::", 1)[0]).resolve()
        for folder in (path if path.is_dir() else path.parent, *path.parents):
            if (folder / SUITE_FILE).is_file():
                return folder / SUITE_FILE
    return None


def _suite_arg(config: pytest.Config) -> str:
    from .evalsuite.config import suite_arg

    return suite_arg(_config_path(config).parent)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """The suite's config file, collected as its built-in checks."""
    config = parent.config
    if file_path.suffix != ".toml" or not config.getini("llm_builtin_checks"):
        return None
    if not _suite_requested(config) or file_path.resolve() != _config_path(config).resolve():
        return None
    from .evalsuite.collect import SuiteFile

    return SuiteFile.from_parent(parent, path=file_path)  # type: ignore[no-any-return]


def _eval_config(config: pytest.Config) -> Any:
    state = _state(config)
    if "eval_config" not in state:
        from .evalsuite.config import load_eval_config

        state["eval_config"] = load_eval_config(_config_path(config))
    return state["eval_config"]


def _selected_cases(config: pytest.Config) -> list[Any]:
    """The cases ``--llm-model`` / ``--llm-method`` select; selecting nothing is an error
    that lists what there is."""
    from .errors import ConfigError

    cfg = _eval_config(config)
    models = config.getoption("--llm-model") or []
    method = config.getoption("--llm-method")
    specs = {m.spec: m for m in cfg.models}

    def chosen(spec: str, wanted: str) -> bool:
        return wanted in (spec, spec.split("@")[0])

    for wanted in models:
        if not any(chosen(spec, wanted) for spec in specs):
            raise ConfigError(
                f"--llm-model {wanted} selects no model of {cfg.path}; available: "
                f"{', '.join(specs)}"
            )
    cases = [
        c for c in cfg.cases(method) if not models or any(chosen(c.model.spec, w) for w in models)
    ]
    if not cases:
        offered = sorted(
            {
                meth
                for m in cfg.models
                for meth in m.methods
                if not models or any(chosen(m.spec, w) for w in models)
            }
        )
        raise ConfigError(
            f"--llm-method {method} selects no case"
            + (f" of --llm-model {', '.join(models)}" if models else "")
            + f"; available methods: {', '.join(offered)}"
        )
    return cases


def _marks(case: Any) -> list[Any]:
    marks = [pytest.mark.live]
    provider = _MARKER_OF.get(case.model.provider, case.model.provider)
    if provider in MARKERS:
        marks.append(getattr(pytest.mark, provider))
    if case.model.server is not None and provider != "local":
        from .server.thirdparty import SERVER_MARKS

        marks.append(getattr(pytest.mark, SERVER_MARKS[case.model.server]))
    return marks


def _groups(cases: list[Any], vary: str) -> dict[str, list[Any]]:
    """Cases that differ only in ``vary`` ("template" or "label_set")."""
    out: dict[str, list[Any]] = {}
    for c in cases:
        fixed = c.label_set.name if vary == "template" else c.template.name
        slug = c.id.rsplit(f"-{c.template.name}-{c.label_set.name}", 1)[0]
        out.setdefault(f"{slug}-{fixed}-across-{vary}s", []).append(c)
    return {k: v for k, v in out.items() if len(v) > 1}


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """Floors a scorer at chance clears more than 1 time in 20 on the suite's texts
    (simulated where the collection is reported; under xdist, see
    ``pytest_xdist_node_collection_finished``)."""
    if not _suite_requested(config):
        return []
    return _weak_floor_lines(config)


def _weak_floor_lines(config: pytest.Config) -> list[str]:
    from .evalsuite.power import weak_floors

    suite = _eval_config(config)
    weak = weak_floors(suite, _selected_cases(config), suite.load_dataset(config.rootpath))
    if not weak:
        return []
    head = f"logprob-eval: {len(weak)} floor(s) a scorer at chance clears more than 1 time in 20:"
    return [head, *(f"  {w}" for w in weak)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = set(metafunc.fixturenames)
    wanted = names & {
        "llm_case",
        "llm_template_group",
        "llm_label_group",
        "llm_method_pair",
        "llm_server_pair",
        "llm_forced_pair",
    }
    if not wanted:
        return
    try:
        cases = _selected_cases(metafunc.config)
    except Exception as exc:  # a broken config: say so once, at collection
        raise pytest.UsageError(f"logprob-eval: {exc}") from None
    if "llm_case" in names:
        metafunc.parametrize("llm_case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in cases])
    for fixture, vary in (("llm_template_group", "template"), ("llm_label_group", "label_set")):
        if fixture in names:
            groups = _groups(cases, vary)
            metafunc.parametrize(
                fixture,
                [pytest.param(g, id=k, marks=_marks(g[0])) for k, g in groups.items()]
                or [
                    _nothing_to_compare(
                        f"no two cases differ only in their {vary.replace('_', ' ')}: add a "
                        f"second one to [grid] {vary}s to check rank agreement across them"
                    )
                ],
            )
    if "llm_server_pair" in names:
        metafunc.parametrize(
            "llm_server_pair",
            [
                pytest.param(p, id=f"{p[0].id}-vs-{p[1].model.slug}", marks=_marks(p[1]))
                for p in _server_pairs(cases)
            ]
            or [
                _nothing_to_compare(
                    "no config is scored on two servers the suite starts (spec = "
                    '"MODEL@llama-server", "@llama-cpp-python" or "@logprob-eval")'
                )
            ],
        )
    if "llm_forced_pair" in names:
        metafunc.parametrize(
            "llm_forced_pair",
            [
                pytest.param(p, id=f"{p[0].id}-vs-{p[1].model.slug}-exact", marks=_marks(p[0]))
                for p in _forced_pairs(cases)
            ]
            or [
                _nothing_to_compare(
                    "no forced case has an exact case of the same config: give one model methods = "
                    '["forced"] and one (same GGUF and batching, a server with echo) ["exact"]'
                )
            ],
        )
    if "llm_method_pair" in names:
        metafunc.parametrize(
            "llm_method_pair",
            [pytest.param(p, id=_pair_id(p), marks=_marks(p[0])) for p in _method_pairs(cases)]
            or [
                _nothing_to_compare(
                    "no case is scored by both methods: give a model methods = "
                    '["generation", "exact"] to check the generation bounds against exact scores'
                )
            ],
        )


def _method_pairs(cases: list[Any]) -> list[tuple[Any, Any]]:
    """(generation case, exact case) of one model, template and label set."""
    exact = {
        (c.model.label, c.template.name, c.label_set.name): c for c in cases if c.method == "exact"
    }
    return [
        (g, exact[(g.model.label, g.template.name, g.label_set.name)])
        for g in cases
        if g.method == "generation" and (g.model.label, g.template.name, g.label_set.name) in exact
    ]


def _forced_pairs(cases: list[Any]) -> list[tuple[Any, Any]]:
    """(forced case, exact case) of one model name, template, label set and batching: the
    exact case may be on another server (the forced method is for servers without echo)."""

    def key(c: Any) -> tuple[Any, ...]:
        name = c.model.spec.split(":", 1)[1].split("@", 1)[0]
        return (name, c.model.one_token_batches, c.template.name, c.label_set.name)

    exact: dict[tuple[Any, ...], Any] = {}
    for c in cases:
        if c.method == "exact":
            exact.setdefault(key(c), c)
    return [(f, exact[key(f)]) for f in cases if f.method == "forced" and key(f) in exact]


def _pair_id(pair: tuple[Any, Any]) -> str:
    """A method pair's test id, which is also its cassette's name."""
    return str(pair[0].id.replace("-generation-", "-methods-"))


def _nothing_to_compare(reason: str) -> Any:
    """The one parameter of a comparison with nothing to compare: it skips and says why
    (an empty parameter set would reach the hooks as pytest's NOTSET)."""
    return pytest.param(
        None,
        id="nothing-to-compare",
        marks=pytest.mark.skip(reason=f"nothing to compare: {reason}"),
    )


def _server_pairs(cases: list[Any]) -> list[tuple[Any, Any]]:
    """Cases of one model, method, template and label set on two servers the suite starts,
    both with one-token batches or both with default batching. Not the forced method: its
    intervals depend on whether a server takes token ids or text (text-mode bounds are
    looser), so its cases are compared with the exact method instead (forced pairs)."""
    by_config: dict[tuple[str, ...], list[Any]] = {}
    for c in cases:
        if c.model.server is None or c.method == "forced":
            continue
        name = c.model.spec.split(":", 1)[1].split("@", 1)[0]
        by_config.setdefault((name, c.method, c.template.name, c.label_set.name), []).append(c)
    return [
        (a, b)
        for group in by_config.values()
        for i, a in enumerate(group)
        for b in group[i + 1 :]
        if a.model.one_token_batches == b.model.one_token_batches
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the tests of one case run next to each other (see
    :func:`~logprob_eval.evalsuite.runspeed.case_order`); a serial run keeps the files'
    order."""
    if not hasattr(config, "workerinput"):
        return
    from .evalsuite.runspeed import case_order

    items.sort(
        key=lambda item: case_order(
            getattr(getattr(item, "callspec", None), "params", {}),
            "llm_case",
            _CASE_PARAMS[1:],
        )
    )


@pytest.fixture(scope="session")
def llm_config(request: pytest.FixtureRequest) -> Any:
    """The eval suite's configuration (models, grid, dataset, expectations)."""
    return _eval_config(request.config)


@pytest.fixture(scope="session")
def llm_runner(request: pytest.FixtureRequest, llm_config: Any) -> Iterator[Any]:
    """Scores cases through their cassettes (or live when recording); one per process."""
    from .evalsuite.runner import RECORD_MODES, SuiteRunner

    mode = request.config.getoption("--record-mode", default=None) or "none"
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"--record-mode={mode!r}: choose one of {RECORD_MODES}")
    runner = SuiteRunner(
        llm_config,
        cassette_dir=request.config.getini("llm_cassette_dir")
        or _config_path(request.config).parent / "cassettes",
        record_mode=mode,
        root=request.config.rootpath,
        share_dir=getattr(request.config, "workerinput", {}).get(_SHARE_KEY),
    )
    _state(request.config)["runner"] = runner
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def llm_dataset(llm_runner: Any) -> Any:
    """The dataset sample every case scores."""
    return llm_runner.dataset


@pytest.fixture
def llm_scores(llm_runner: Any) -> Callable[[Any], Any]:
    """``llm_scores(case)`` -> the tidy frame of that case (skips or fails with a reason)."""
    return llm_runner.frame  # type: ignore[no-any-return]


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """The runner's expected errors as one-line outcomes: a case without a cassette (or a
    model without log-probs) skips; a stale or corrupt cassette and a failed recording
    fail with their message, without a traceback."""
    from .errors import LogprobsUnsupportedError
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
    if skip:  # outside the handlers: no chained traceback
        pytest.skip(skip)
    pytest.fail(fail, pytrace=False)


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


# -- the run's report -------------------------------------------------------------------------
_CASE_PARAMS = (
    "llm_case",
    "llm_template_group",
    "llm_label_group",
    "llm_method_pair",
    "llm_server_pair",
    "llm_forced_pair",
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Tag each report of a suite test with its case and, on failure, what failed (plain
    attributes: xdist carries them to the controller)."""
    report = yield
    params = getattr(getattr(item, "callspec", None), "params", {})
    if any(p in params for p in _CASE_PARAMS):
        case = params.get("llm_case")
        first = case or next(
            (g[0] for p in _CASE_PARAMS[1:] if isinstance(g := params.get(p), list | tuple)),
            None,
        )
        report.llm_case = {
            "case": item.callspec.id,  # type: ignore[attr-defined]
            "config": case.config if case is not None else None,
            "model": _model_name(first.model) if first is not None else "",
            "test": getattr(item, "originalname", item.name),
        }
        if call.excinfo is not None and report.failed:
            report.llm_failures = getattr(call.excinfo.value, "failures", None)
            report.llm_message = str(call.excinfo.value)[:2000]
            report.llm_stale = item.stash.get(_STALE_KEY, None)
    return report


def _model_name(model: Any) -> str:
    """A model as the report groups cases: its spec without a URL (a server the suite
    starts is named, with its batching)."""
    return str(model.label) if model.server is not None else str(model.spec.split("@")[0])


def _frames_of_this_process(config: pytest.Config) -> dict[str, Any]:
    runner = _state(config).get("runner")
    return runner.all_frames() if runner is not None else {}


def _computed_in_this_process(config: pytest.Config) -> str:
    """What the tests computed that the report shows, as JSON, in every process alike (so
    serial equals -n N): per-case analyses and pair agreements."""
    runner = _state(config).get("runner")
    if runner is None:
        return json.dumps({"analyses": {}, "pairs": [], "servers": []})
    analyses = {c: a.as_json() for c, a in runner.all_analyses().items()}
    pairs = [p.as_json() for p in runner.all_pairs().values()]
    servers = list(runner.server_pairs.values())
    return json.dumps({"analyses": analyses, "pairs": pairs, "servers": servers})


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Iterator[None]:
    """A worker hands its cases to the controller; the controller (or a serial run) writes
    the report in a thread while the other sessionfinish hooks run: under xdist those wait
    for the workers' processes to exit, a wait the report no longer adds to."""
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand its cases to the controller
        import pickle  # a process of this run reads it back, with this code

        workeroutput[_FRAMES_KEY] = pickle.dumps(_frames_of_this_process(config))
        workeroutput[_COMPUTED_KEY] = _computed_in_this_process(config)
        return (yield)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="logprob-eval-report") as pool:
        report = pool.submit(_write_report, config, exitstatus)
        try:
            return (yield)
        finally:
            report.result()  # its errors are the session's, as before


def _write_report(config: pytest.Config, exitstatus: int) -> None:
    state = _state(config)
    if "report_imports" in state:
        state.pop("report_imports").join()
    from .evalsuite.runspeed import freeze_long_lived_objects

    freeze_long_lived_objects()  # the modules and the frames the report reads
    if "share_dir" in state:
        import shutil

        shutil.rmtree(state.pop("share_dir"), ignore_errors=True)
    frames = {**state.pop("worker_frames", {}), **_frames_of_this_process(config)}
    if not frames or config.getoption("--llm-no-report"):
        return
    from .evalsuite.reporting import write_run_report
    from .evalsuite.runner import analysis_options

    started = time.perf_counter()
    interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
    state["interrupted"] = interrupted
    computed = [_computed_in_this_process(config), *state.pop("worker_computed", [])]
    computed_json = [json.loads(c) for c in computed]
    suite = _eval_config(config)
    state["report"] = write_run_report(
        frames,
        _report_dir(config),
        interrupted=interrupted,
        analyses=[c["analyses"] for c in computed_json],
        pairs=[p for c in computed_json for p in c["pairs"]],
        options=analysis_options(suite),
        outcomes=state["outcomes"].sorted(),
        texts={ex.id: ex.text for ex in suite.load_dataset(config.rootpath)},
        keep=config.getoption("--llm-keep-reports"),
        baselines=suite.baseline_dir,
        case_configs={c.id: c.config for c in suite.cases()},
        compare_to=Path(other) if (other := config.getoption("--llm-compare-to")) else None,
        servers=[s for c in computed_json for s in c.get("servers", [])],
    )
    state["report_seconds"] = time.perf_counter() - started
    if other:
        state["comparison"] = state["report"].run_dir / "comparison.md"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist workers of one run share the cases they scored through one temporary folder
    (see ``SuiteRunner.share_dir``); the controller removes it at the end."""
    state = _state(node.config)
    if "share_dir" not in state:
        import tempfile

        state["share_dir"] = tempfile.mkdtemp(prefix="logprob-eval-run-")
    node.workerinput[_SHARE_KEY] = state["share_dir"]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Once a worker has collected (its imports done), the controller, idle while its
    workers run the tests, imports what the report needs, and lists the floors a scorer
    at chance clears (a serial run lists them with its collection; workers print nothing)."""
    state = _state(node.config)
    if "share_dir" in state and "report_imports" not in state:
        from .evalsuite.runspeed import import_in_background

        state["report_imports"] = import_in_background(_load_report_modules)
        reporter = node.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            for line in _weak_floor_lines(node.config):
                reporter.write_line(line)


def _load_report_modules() -> None:
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401

    from .evalsuite import reporting  # noqa: F401


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    output = getattr(node, "workeroutput", {})
    if output.get(_FRAMES_KEY):
        import pickle

        frames = _state(node.config).setdefault("worker_frames", {})
        for case_id, frame in pickle.loads(output[_FRAMES_KEY]).items():
            frames.setdefault(case_id, frame)  # a case two workers read: the same frame
    if output.get(_COMPUTED_KEY):
        _state(node.config).setdefault("worker_computed", []).append(output[_COMPUTED_KEY])


def pytest_collection_finish(session: pytest.Session) -> None:
    if _suite_requested(session.config):
        from .evalsuite.runspeed import freeze_long_lived_objects

        freeze_long_lived_objects()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _suite_requested(config):
        import atexit

        from .evalsuite.runspeed import freeze_long_lived_objects

        atexit.register(freeze_long_lived_objects)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = _state(config).get("report")
    outcomes = _state(config)["outcomes"].sorted()
    if not report and not outcomes:
        return
    tr = terminalreporter
    tr.section("logprob-eval")
    if not report:
        _skips_line(tr, outcomes)
        _stale_line(tr, config, outcomes)
        return
    from .evalsuite.reporting import summary_lines

    suite = _eval_config(config)
    floors = {
        k: suite.expect("stability", f"{k.rstrip('s')}_tau") for k in ("templates", "label_sets")
    }
    for line in summary_lines(report.table, report.tau_groups, floors):
        tr.write_line(line)
    run_dir = report.run_dir
    seconds = _state(config).get("report_seconds", math.nan)
    tr.write_line(f"report: {run_dir / 'report.html'} (written in {seconds:.1f} s)")
    if _state(config).get("interrupted"):
        tr.write_line("the run was interrupted: the report is marked so; reports/latest not moved")
    for case in report.failing:
        tr.write_line(f"  failed: {run_dir / 'report.html'}#case-{case}")
    comparison = _state(config).get("comparison")
    if comparison is not None:
        tr.write_line(f"comparison: {comparison}")
    _skips_line(tr, outcomes)
    _stale_line(tr, config, outcomes)


def _stale_line(tr: Any, config: pytest.Config, outcomes: list[dict[str, Any]]) -> None:
    """Every stale case in one line, with one command that re-records them all."""
    found = dict(sorted(tuple(o["stale"]) for o in outcomes if o.get("stale")))
    if not found:
        return
    from .evalsuite.runner import record_all_command

    shown = ", ".join(found)
    suite_config = _eval_config(config)
    by_id = {c.id: c for c in suite_config.cases()}
    stale = {name: by_id[case] for name, case in found.items() if case in by_id}
    for pair in _method_pairs(suite_config.cases()):  # its cassette's prompts are the cases'
        if any(c.id in stale for c in pair):
            stale.setdefault(_pair_id(pair), pair[0])
    suite = _suite_arg(config)
    tr.write_line(
        f"stale cassettes ({shown.count(',') + 1}): {shown}; re-record them all with "
        f"`{record_all_command(stale, suite=suite)}`"
    )


def _skips_line(tr: Any, outcomes: list[dict[str, Any]]) -> None:
    from .evalsuite.outcomes import not_checked_line, skips_line

    for line in (skips_line(outcomes), not_checked_line(outcomes)):
        if line:
            tr.write_line(line)
