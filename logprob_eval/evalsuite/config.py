"""The eval suite's configuration (``evals/evals.toml`` or ``[tool.logprob_eval]``) and the
matrix of cases it expands to.

A *case* is one model x method x template x label set; its id is readable and safe as a
file name (``local-gemma-3-270m-exact-simple-normal``) and names its cassette.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..prompts import LabelSet, Template, load_prompt_config, read_config_file

__all__ = ["Case", "EvalConfig", "ModelEntry", "load_eval_config"]


@dataclass(frozen=True)
class ModelEntry:
    spec: str
    methods: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return self.spec.split(":", 1)[0]


@dataclass(frozen=True)
class Case:
    """One cell of the matrix."""

    model: ModelEntry
    method: str
    template: Template
    label_set: LabelSet

    @property
    def id(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", self.model.spec.split("@")[0]).strip("-")
        return f"{slug}-{self.method}-{self.template.name}-{self.label_set.name}"

    @property
    def config(self) -> str:
        from ..experiments.table import config_id

        return config_id(self.model.spec, self.method, self.template.name, self.label_set.name)


@dataclass(frozen=True)
class EvalConfig:
    path: Path
    models: tuple[ModelEntry, ...]
    templates: Mapping[str, Template]
    label_sets: Mapping[str, LabelSet]
    grids: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]  # method -> (templates, sets)
    dataset: Mapping[str, Any]
    expectations: Mapping[str, Any]

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
        case id, in order (later ones win)."""
        sec = self.expectations.get(section, {})
        if not isinstance(sec, Mapping):
            return {}
        out = {k: float(v) for k, v in sec.get("floors", {}).get(case.method, {}).items()}
        for ov in sec.get("overrides", []):
            if any(fnmatch.fnmatchcase(case.id, pat) for pat in ov.get("cases", [])):
                out.update({k: float(v) for k, v in ov.items() if k not in ("cases", "why")})
        return out

    def expect(self, section: str, key: str, default: Any = None) -> Any:
        sec = self.expectations.get(section, {})
        return sec.get(key, default) if isinstance(sec, Mapping) else default


def _names(value: Any, known: Mapping[str, Any], kind: str, where: str) -> tuple[str, ...]:
    if value == "all":
        return tuple(known)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{where}: {kind} must be a list of names or "all"')
    for v in value:
        if v not in known:
            raise ConfigError(f"{where}: unknown {kind[:-1]} {v!r}; known: {', '.join(known)}")
    return tuple(value)


def load_eval_config(path: str | Path) -> EvalConfig:
    """Read and validate the suite's TOML file."""
    path = Path(path)
    where = str(path)
    data = read_config_file(path, what="eval config", fix="pass --llm-config PATH")
    prompts = load_prompt_config(data)
    models = []
    for i, m in enumerate(data.get("models", [])):
        if not isinstance(m, Mapping) or not isinstance(m.get("spec"), str):
            raise ConfigError(f'{where}: models[{i}] needs spec = "provider:model"')
        methods = m.get("methods", ["generation"])
        if not isinstance(methods, list) or not set(methods) <= {"exact", "generation"}:
            raise ConfigError(f"{where}: models[{i}].methods must list 'exact'/'generation'")
        opts = {k: v for k, v in m.items() if k not in ("spec", "methods")}
        for key, known in (("templates", prompts.templates), ("label_sets", prompts.label_sets)):
            if key in opts:
                opts[key] = _names(opts[key], known, key, f"{where} models[{i}]")
        models.append(ModelEntry(m["spec"], tuple(methods), opts))
    if not models:
        raise ConfigError(f"{where}: no [[models]] declared; add at least one")
    grid = data.get("grid", {})
    default = (
        _names(grid.get("templates", ["simple"]), prompts.templates, "templates", where),
        _names(grid.get("label_sets", ["normal"]), prompts.label_sets, "label_sets", where),
    )
    grids: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {"default": default}
    for meth in ("exact", "generation"):
        sub = grid.get(meth)
        if isinstance(sub, Mapping):
            grids[meth] = (
                _names(
                    sub.get("templates", list(default[0])),
                    prompts.templates,
                    "templates",
                    f"{where} [grid.{meth}]",
                ),
                _names(
                    sub.get("label_sets", list(default[1])),
                    prompts.label_sets,
                    "label_sets",
                    f"{where} [grid.{meth}]",
                ),
            )
    dataset = dict(data.get("dataset", {"path": "topics"}))
    return EvalConfig(
        path,
        tuple(models),
        dict(prompts.templates),
        dict(prompts.label_sets),
        grids,
        dataset,
        dict(data.get("expectations", {})),
    )
