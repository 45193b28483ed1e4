"""The eval suite's configuration (``evals/evals.toml`` or ``[tool.logprob_eval]``) and the
matrix of cases it expands to.

A *case* is one model x method x template x label set; its id is readable and safe as a
file name (``local-gemma-3-270m-exact-simple-normal``) and names its cassette.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.datasets import BUILTIN_DATASETS, Dataset
from ..data.prompts import LabelSet, Template, load_prompt_config, read_config_file
from ..errors import ConfigError
from .schema import validate_suite_config

__all__ = ["Case", "EvalConfig", "ModelEntry", "load_eval_config", "suite_arg"]

_OVERRIDE_KEYS = ("cases", "why", "drop")


def _check_floor_values(expectations: Mapping[str, Any], where: str) -> None:
    """A floor at or below 0 holds for every value: it checks nothing (vacuous)."""
    for section, sec in expectations.items():
        if not isinstance(sec, Mapping):
            continue
        tables = [(f"floors.{m}", f) for m, f in sec.get("floors", {}).items()]
        tables += [(f"overrides[{i}]", o) for i, o in enumerate(sec.get("overrides", []))]
        for name, table in tables:
            for metric, value in table.items():
                if metric in _OVERRIDE_KEYS or not isinstance(value, int | float):
                    continue
                if value <= 0:
                    raise ConfigError(
                        f"{where}: [expectations.{section}.{name}] {metric} = {value!r} is a "
                        "vacuous floor (every value clears it); give a floor a chance scorer "
                        "does not reach, drop it (drop = [...]) or declare the case at chance"
                    )


@dataclass(frozen=True)
class ModelEntry:
    spec: str
    methods: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return self.spec.split(":", 1)[0]

    @property
    def server(self) -> str | None:
        """The server the suite starts for this model (``local:``: ``logprob-eval``; a spec
        ending in ``@llama-server``...: that one), else None (a URL, or an API)."""
        from .schema import started_server

        return "logprob-eval" if self.provider == "local" else started_server(self.spec)

    @property
    def one_token_batches(self) -> bool:
        return bool(self.options.get("one_token_batches"))

    @property
    def label(self) -> str:
        """The model as the report's configs name it: the spec, marked when the suite's
        server evaluates one token per batch (the same spec may be served both ways)."""
        return f"{self.spec} 1tok" if self.one_token_batches else self.spec

    @property
    def report_name(self) -> str:
        """The model as the report groups cases: its spec without a URL (a server the suite
        starts stays named, with its batching)."""
        return self.label if self.server is not None else self.spec.split("@")[0]

    @property
    def slug(self) -> str:
        """The spec as the start of a case id: without a URL, with a started server's name
        and ``1tok`` for one-token batches (``openai-compatible-gemma-3-270m-llama-server``)."""
        base, _, tail = self.spec.partition("@")
        if self.provider != "local" and self.server is not None:
            base = f"{base}-{tail}"
        if self.one_token_batches:
            base += "-1tok"
        return re.sub(r"[^A-Za-z0-9.]+", "-", base).strip("-")


@dataclass(frozen=True)
class Case:
    """One cell of the matrix."""

    model: ModelEntry
    method: str
    template: Template
    label_set: LabelSet

    @property
    def id(self) -> str:
        return f"{self.model.slug}-{self.method}-{self.template.name}-{self.label_set.name}"

    @property
    def config(self) -> str:
        from ..experiments.table import config_id

        return config_id(self.model.label, self.method, self.template.name, self.label_set.name)


@dataclass(frozen=True)
class EvalConfig:
    path: Path
    models: tuple[ModelEntry, ...]
    templates: Mapping[str, Template]
    label_sets: Mapping[str, LabelSet]
    grids: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]  # method -> (templates, sets)
    dataset: Mapping[str, Any]
    expectations: Mapping[str, Any]

    @property
    def baseline_dir(self) -> Path:
        """Where the suite's baselines live: ``baselines/`` beside the config file."""
        return self.path.parent / "baselines"

    def cases(self, method: str | None = None) -> list[Case]:
        out = []
        for m in self.models:
            for meth in m.methods:
                if method is not None and meth != method:
                    continue
                tpls, sets = self.grids.get(meth, self.grids["default"])
                tpls = tuple(m.options.get("templates", tpls))
                sets = tuple(m.options.get("label_sets", sets))
                for t in tpls:
                    for ls in sets:
                        out.append(Case(m, meth, self.templates[t], self.label_sets[ls]))
        return out

    def floors(self, section: str, case: Case) -> dict[str, float]:
        """Floors of ``section`` for ``case``: ``[expectations.SECTION.floors.METHOD]``,
        then every ``[[expectations.SECTION.overrides]]`` whose ``cases`` globs match the
        case id, in order (later ones win; ``drop = [metric, ...]`` removes a floor).
        A case declared at chance (:meth:`at_chance`) has no floors: it asserts chance."""
        sec = self.expectations.get(section, {})
        if not isinstance(sec, Mapping) or self.at_chance(case) is not None:
            return {}
        out = {k: float(v) for k, v in sec.get("floors", {}).get(case.method, {}).items()}
        for ov in sec.get("overrides", []):
            if any(fnmatch.fnmatchcase(case.id, pat) for pat in ov.get("cases", [])):
                out.update({k: float(v) for k, v in ov.items() if k not in _OVERRIDE_KEYS})
                for metric in ov.get("drop", []):
                    out.pop(metric, None)
        return out

    def load_dataset(self, root: str | Path = ".") -> Dataset:
        """The ``[dataset]`` sample every case scores (a relative path is from the config
        file's folder, else from ``root``)."""
        from ..data.datasets import load_dataset

        raw = str(self.dataset.get("path", "topics"))
        path: str | Path = raw
        if raw not in BUILTIN_DATASETS and not Path(raw).is_absolute():
            beside = self.path.parent / raw
            path = beside if beside.exists() else Path(root) / raw
        labels = self.dataset.get("labels")
        ds = load_dataset(
            path,
            label_names=tuple(labels) if labels else None,
            text_column=str(self.dataset.get("text_column") or "text"),
            labels_column=self.dataset.get("labels_column"),
            id_column=str(self.dataset.get("id_column") or "id"),
        )
        n = self.dataset.get("sample")
        if n:
            if n > len(ds):
                raise ConfigError(
                    f"{self.path}: dataset.sample = {n} but {ds.source} has {len(ds)} texts; "
                    f"use a sample between 1 and {len(ds)} (or remove it for all texts)"
                )
            ds = ds.sample(int(n), seed=int(self.dataset.get("seed", 0)))
        return ds

    def check_label_sets(self, dataset: Dataset, cases: list[Case]) -> None:
        """Every label set a case uses phrases exactly the labels of ``dataset``."""
        for name in sorted({c.label_set.name for c in cases}):
            try:
                self.label_sets[name].check_covers(
                    dataset.label_names,
                    source=dataset.source,
                    fix=f"give [label_sets.{name}] one phrase per label of the dataset "
                    '(label = "phrase"), or leave it out of [grid] label_sets',
                )
            except ConfigError as exc:
                raise ConfigError(f"{self.path}: {exc}") from None

    def at_chance(self, case: Case) -> tuple[str, float] | None:
        """(why, max coverage) when ``[expectations.at_chance]`` names the case, else None."""
        sec = self.expectations.get("at_chance", {})
        if not isinstance(sec, Mapping):
            return None
        if any(fnmatch.fnmatchcase(case.id, pat) for pat in sec.get("cases", [])):
            return str(sec.get("why", "")), float(sec.get("max_coverage", 0.05))
        return None

    def expect(self, section: str, key: str, default: Any = None) -> Any:
        sec = self.expectations.get(section, {})
        return sec.get(key, default) if isinstance(sec, Mapping) else default


def suite_arg(folder: Path) -> str:
    """A suite folder as a user types it after ``pytest``: relative to the current
    directory when inside it, else absolute."""
    folder = Path(folder).resolve()
    here = Path.cwd().resolve()
    return str(folder.relative_to(here)) if folder.is_relative_to(here) else str(folder)


def _names(value: Any, known: Mapping[str, Any], kind: str, where: str) -> tuple[str, ...]:
    if value == "all":
        return tuple(known)
    for v in value:
        if v not in known:
            close = difflib.get_close_matches(v, list(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{where}: unknown {kind[:-1].replace('_', ' ')} {v!r}; {hint}known: "
                f"{', '.join(known)}"
            )
    return tuple(value)


def load_eval_config(path: str | Path) -> EvalConfig:
    """Read the suite's TOML file and validate it against :mod:`.schema` (unknown keys,
    ranges, backend options), then the names it uses (templates, label sets). A folder
    stands for the ``evals.toml`` in it, as on pytest's command line."""
    path = Path(path)
    if path.is_dir() and (path / "evals.toml").is_file():
        path = path / "evals.toml"
    where = str(path)
    data = read_config_file(path, what="eval config", fix="pass --llm-config PATH")
    suite = validate_suite_config(data, where)
    prompts = load_prompt_config(data)
    models = []
    for i, m in enumerate(suite.models):
        opts = m.model_dump(exclude_unset=True)
        del opts["spec"]
        opts.pop("methods", None)
        for key, known in (("templates", prompts.templates), ("label_sets", prompts.label_sets)):
            if opts.get(key) is not None:
                opts[key] = _names(opts[key], known, key, f"{where}: models[{i}].{key}")
        models.append(ModelEntry(m.spec, tuple(m.methods), opts))
    if not models:
        raise ConfigError(f'{where}: no [[models]] declared; add at least one (spec = "...")')
    grid = suite.grid
    declared_sets = list(suite.label_sets)
    default = (
        _names(grid.templates, prompts.templates, "templates", f"{where}: grid.templates"),
        _names(
            grid.label_sets if grid.label_sets is not None else declared_sets or ["normal"],
            prompts.label_sets,
            "label_sets",
            f"{where}: grid.label_sets",
        ),
    )
    grids: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {"default": default}
    for meth in ("exact", "generation", "forced"):
        sub = getattr(grid, meth)
        if sub is not None:
            grids[meth] = (
                _names(
                    sub.templates if sub.templates is not None else default[0],
                    prompts.templates,
                    "templates",
                    f"{where}: grid.{meth}.templates",
                ),
                _names(
                    sub.label_sets if sub.label_sets is not None else default[1],
                    prompts.label_sets,
                    "label_sets",
                    f"{where}: grid.{meth}.label_sets",
                ),
            )
    _check_floor_values(data.get("expectations", {}), where)
    return EvalConfig(
        path,
        tuple(models),
        dict(prompts.templates),
        dict(prompts.label_sets),
        grids,
        suite.dataset.model_dump(),
        suite.expectations.model_dump(exclude_none=True),
    )
