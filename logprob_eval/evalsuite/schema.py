"""The schema of the eval suite's configuration (``evals/evals.toml`` or
``[tool.logprob_eval]``), validated with pydantic.

Every table forbids unknown keys: a typo is an error that names its dotted path and the
nearest valid key (``expectations.rankng: unknown key; did you mean 'ranking'?``), never a
setting silently ignored. Floors must lie within their metric's range. A model entry's
extra keys are options of its backend, checked against that backend's constructor.
All problems are collected and raised as one :class:`~logprob_eval.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError

__all__ = ["SuiteConfig", "backend_options", "started_server", "validate_suite_config"]

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Tau = Annotated[float, Field(ge=-1.0, le=1.0)]
Names = list[str] | Literal["all"]

#: keys of a ``[[models]]`` entry that the suite reads itself (the rest go to the backend)
SUITE_MODEL_KEYS = (
    "spec",
    "methods",
    "templates",
    "label_sets",
    "first_answer_only",
    "batch",
    "batch_poll_interval",
    "batch_cache_dir",
    "one_token_batches",
    "sample",
)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetTable(_Table):
    path: str = "topics"
    sample: Annotated[int, Field(ge=1)] | None = None
    seed: int = 0
    dev_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    text_column: str = "text"
    labels_column: str | None = None  # None: the rule in logprob_eval.data.dataset_files
    id_column: str = "id"
    # the label names; None: the labels the file holds (the built-in topics: the ten topics)
    labels: Annotated[list[str], Field(min_length=2)] | None = None


class ModelTable(BaseModel):
    """One ``[[models]]`` entry; keys beyond the suite's own are backend options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    spec: str
    methods: list[Literal["exact", "generation", "forced"]] = ["generation"]
    templates: Names | None = None
    label_sets: Names | None = None
    first_answer_only: bool = False
    # record through the provider's Batch API (openai: / openai-responses:); see runner
    batch: bool = False
    batch_poll_interval: Annotated[float, Field(gt=0.0)] = 30.0
    batch_cache_dir: str | None = None
    # a server the suite starts (local:, or spec "...@SERVER" with SERVER one of
    # logprob_eval.server.thirdparty.SERVERS): every token evaluated in its own batch
    one_token_batches: bool = False
    # texts per case of this model: the first N of the [dataset] sample (slow servers)
    sample: Annotated[int, Field(ge=1)] | None = None


class SubGrid(_Table):
    templates: Names | None = None
    label_sets: Names | None = None


class GridTable(_Table):
    templates: Names = ["simple"]
    label_sets: Names | None = None  # None: the config's own [label_sets], else ["normal"]
    exact: SubGrid | None = None
    generation: SubGrid | None = None
    forced: SubGrid | None = None


RankingMetric = Literal["top1_acc", "topk_acc", "mrr", "auc", "coverage", "auc_ci_low"]
ThresholdMetric = Literal["best_f1", "average_precision", "transfer_kept"]


class RankingFloors(_Table):
    top1_acc: Unit | None = None
    topk_acc: Unit | None = None
    mrr: Unit | None = None
    auc: Unit | None = None
    coverage: Unit | None = None
    auc_ci_low: Unit | None = None  # the AUC's interval lies above this


class RankingOverride(RankingFloors):
    cases: Annotated[list[str], Field(min_length=1)]
    why: str = ""
    drop: list[RankingMetric] = []  # floors of the method that do not apply here


class RankingTable(_Table):
    k: Annotated[int, Field(ge=1)] = 3
    floors: dict[Literal["exact", "generation", "forced"], RankingFloors] = {}
    overrides: list[RankingOverride] = []


class ThresholdFloors(_Table):
    best_f1: Unit | None = None
    average_precision: Unit | None = None
    transfer_kept: Unit | None = None


class ThresholdOverride(ThresholdFloors):
    cases: Annotated[list[str], Field(min_length=1)]
    why: str = ""
    drop: list[ThresholdMetric] = []


class ThresholdsTable(_Table):
    floors: dict[Literal["exact", "generation", "forced"], ThresholdFloors] = {}
    overrides: list[ThresholdOverride] = []


class StabilityTable(_Table):
    template_tau: Tau | None = None
    label_set_tau: Tau | None = None


class MethodAgreementTable(_Table):
    tolerance: Annotated[float, Field(ge=0.0)] = 0.01
    min_compared: Annotated[int, Field(ge=0)] = 1


class ServerAgreementOverride(_Table):
    cases: Annotated[list[str], Field(min_length=1)]  # globs on either case's id
    why: str = ""
    tolerance: Annotated[float, Field(gt=0.0)]


class ServerAgreementTable(_Table):
    """The same config on two servers the suite starts, both with one-token batches."""

    tolerance: Annotated[float, Field(gt=0.0)] = 1e-4  # nats, every row
    overrides: list[ServerAgreementOverride] = []


class ForcedAgreementTable(_Table):
    """The forced method against the exact method on the same config (same GGUF and
    batching, the exact case on a server with echo)."""

    tolerance: Annotated[float, Field(gt=0.0)] = 1e-4  # nats, every row marked exact
    min_exact_share: Unit = 0.95  # of the forced rows
    overrides: list[ServerAgreementOverride] = []


class RegressionTable(_Table):
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.05
    min_effect: Annotated[float, Field(ge=0.0)] = 0.02


class AtChanceTable(_Table):
    """Cases where the model does not do the task: asserted at chance, no floors."""

    cases: list[str] = []
    why: str = ""
    max_coverage: Unit = 0.05


class ExpectationsTable(_Table):
    ranking: RankingTable = RankingTable()
    thresholds: ThresholdsTable = ThresholdsTable()
    stability: StabilityTable = StabilityTable()
    method_agreement: MethodAgreementTable = MethodAgreementTable()
    server_agreement: ServerAgreementTable = ServerAgreementTable()
    forced_agreement: ForcedAgreementTable = ForcedAgreementTable()
    regression: RegressionTable = RegressionTable()
    at_chance: AtChanceTable = AtChanceTable()


class SuiteConfig(_Table):
    """The whole file."""

    dataset: DatasetTable = DatasetTable()
    models: list[ModelTable] = []
    grid: GridTable = GridTable()
    templates: dict[str, str] = {}
    label_sets: dict[str, dict[str, str]] = {}
    expectations: ExpectationsTable = ExpectationsTable()


# -- errors a person can act on -------------------------------------------------------------


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_class(tp: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X``, ``X | None``, ``list[X]``,
    ``dict[str, X]``), if any."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    origin = get_origin(tp)
    if origin is Annotated:
        return _model_class(get_args(tp)[0])
    if origin in (Union, types.UnionType, list, dict):
        for arg in get_args(tp):
            found = _model_class(arg)
            if found is not None:
                return found
    return None


def _table_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class of the table at ``loc`` (list indexes and dict keys skipped)."""
    cls: type[BaseModel] | None = SuiteConfig
    for part in loc:
        if cls is None:
            return None
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(str(part))
        if field is None:  # a dict key (a method name, a label set name...)
            continue
        cls = _model_class(field.annotation)
    return cls


def _did_you_mean(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"valid keys: {', '.join(valid)}" if valid else "no keys are allowed here"


def _messages(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            table = _table_at(loc[:-1])
            valid = list(table.model_fields) if table is not None else []
            out.append(f"{_dotted(loc)}: unknown key; {_did_you_mean(str(loc[-1]), valid)}")
        elif err["type"] == "literal_error" and loc and loc[-1] == "[key]":  # a dict's key
            valid = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            out.append(
                f"{_dotted(loc[:-2])}.{loc[-2]}: unknown key; {_did_you_mean(str(loc[-2]), valid)}"
            )
        else:
            shown = repr(err.get("input"))[:60]
            out.append(f"{_dotted(loc)} = {shown}: {err['msg']}")
    return out


def _backend_class(provider: str) -> Any:
    import importlib

    from ..backends import PROVIDERS

    module, name = PROVIDERS[provider]
    return getattr(importlib.import_module(module), name)


def backend_options(provider: str) -> list[str]:
    """The keyword options the backend of ``provider`` accepts (its constructor's, up the
    class hierarchy while a constructor forwards ``**kwargs``)."""
    cls = _backend_class(provider)
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names += [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def _model_option_messages(models: list[ModelTable]) -> list[str]:
    from ..backends import OPENAI_APIS, PROVIDERS

    out = []
    for i, m in enumerate(models):
        provider = m.spec.split(":", 1)[0]
        if provider not in PROVIDERS:
            known = ", ".join(sorted(PROVIDERS))
            out.append(f"models[{i}].spec = {m.spec!r}: unknown provider; choose one of {known}")
            continue
        # the suite sets these itself; "cache" makes no sense for a recorded case
        valid = [
            *SUITE_MODEL_KEYS,
            *(o for o in backend_options(provider) if o not in ("method", "cache", "session")),
            *(("api",) if provider in OPENAI_APIS.values() else ()),  # get_backend's own
        ]
        api = (m.model_extra or {}).get("api")
        if api is not None and api not in OPENAI_APIS:
            out.append(f"models[{i}].api = {api!r}: choose one of {', '.join(OPENAI_APIS)}")
        out += _batch_messages(i, m, provider)
        if m.one_token_batches and provider != "local" and started_server(m.spec) is None:
            out.append(
                f"models[{i}].one_token_batches: applies only to a server the suite starts "
                "(local:MODEL, or a spec ending in @llama-server, @llama-cpp-python or "
                "@logprob-eval); remove it"
            )
        for key in m.model_extra or {}:
            if key not in valid:
                out.append(
                    f"models[{i}].{key}: unknown option for {provider}; {_did_you_mean(key, valid)}"
                )
    return out


def started_server(spec: str) -> str | None:
    """The server the suite starts for ``spec`` when it ends in ``@SERVER`` (a name from
    :data:`~logprob_eval.server.thirdparty.SERVERS` in place of a URL), else None."""
    from ..server.thirdparty import SERVERS

    tail = spec.rsplit("@", 1)[1] if "@" in spec else None
    return tail if tail in SERVERS else None


def _has_batch_api(provider: str) -> bool:
    """True when the provider's backend plans batch requests (``Backend.batch_request``)."""
    from ..backends import Backend

    return bool(_backend_class(provider).batch_request is not Backend.batch_request)


def _batch_messages(i: int, m: ModelTable, provider: str) -> list[str]:
    """``batch = true`` only where a batch API exists; its settings only with it."""
    if not m.batch:
        unused = [k for k in ("batch_poll_interval", "batch_cache_dir") if k in m.model_fields_set]
        return [
            f"models[{i}].{k}: applies only with batch = true; add it or remove {k}" for k in unused
        ]
    if _has_batch_api(provider):
        return []
    from ..backends import PROVIDERS

    with_batch = ", ".join(f"{p}:" for p in PROVIDERS if _has_batch_api(p))
    return [
        f"models[{i}].batch = true: {provider} has no batch API; remove it (batch recording "
        f"exists for {with_batch} models)"
    ]


def validate_suite_config(data: Mapping[str, Any], where: str) -> SuiteConfig:
    """``data`` validated against :class:`SuiteConfig`; one ConfigError listing every
    problem otherwise."""
    try:
        cfg = SuiteConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems = _messages(exc)
    else:
        problems = _model_option_messages(cfg.models)
        if not problems:
            return cfg
    raise ConfigError(f"{where}: invalid configuration:\n  " + "\n  ".join(problems))
