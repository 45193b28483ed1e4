"""The suite's cases and the comparisons between them, as the checks are parametrized
(pytest-free).

* :func:`select_cases`: the cases of ``--llm-model`` / ``--llm-method``;
* :func:`groups`: cases that differ only in their template (or label set): rank agreement;
* :func:`method_pairs`: a generation case and the exact case of the same config;
* :func:`server_pairs`: one config on two servers the suite starts;
* :func:`forced_pairs`: a forced case and the exact case of the same config, on any server;
* :func:`case_order`: the order of the tests under xdist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

__all__ = [
    "CASE_PARAMS",
    "case_order",
    "forced_pairs",
    "groups",
    "method_pairs",
    "pair_id",
    "select_cases",
    "server_pairs",
]

CASE_PARAMS = (
    "llm_case",
    "llm_template_group",
    "llm_label_group",
    "llm_method_pair",
    "llm_server_pair",
    "llm_forced_pair",
)
"""The fixtures a suite test is parametrized by: one case, then those spanning cases."""


def select_cases(suite: Any, models: list[str], method: str | None) -> list[Any]:
    """The cases of the given model specs (a spec with or without its ``@...``) and method;
    selecting nothing is an error that lists what there is."""
    specs = [m.spec for m in suite.models]

    def chosen(spec: str) -> bool:
        return not models or any(w in (spec, spec.split("@")[0]) for w in models)

    for wanted in models:
        if not any(wanted in (s, s.split("@")[0]) for s in specs):
            raise ConfigError(
                f"--llm-model {wanted} selects no model of {suite.path}; available: "
                f"{', '.join(specs)}"
            )
    cases = [c for c in suite.cases(method) if chosen(c.model.spec)]
    if not cases:
        offered = sorted({meth for m in suite.models if chosen(m.spec) for meth in m.methods})
        raise ConfigError(
            f"--llm-method {method} selects no case"
            + (f" of --llm-model {', '.join(models)}" if models else "")
            + f"; available methods: {', '.join(offered)}"
        )
    return cases


def groups(cases: list[Any], vary: str) -> dict[str, list[Any]]:
    """Cases that differ only in ``vary`` ("template" or "label_set"), by group id."""
    out: dict[str, list[Any]] = {}
    for c in cases:
        fixed = c.label_set.name if vary == "template" else c.template.name
        slug = c.id.rsplit(f"-{c.template.name}-{c.label_set.name}", 1)[0]
        out.setdefault(f"{slug}-{fixed}-across-{vary}s", []).append(c)
    return {k: v for k, v in out.items() if len(v) > 1}


def method_pairs(cases: list[Any]) -> list[tuple[Any, Any]]:
    """(generation case, exact case) of one model, template and label set."""

    def key(c: Any) -> tuple[str, str, str]:
        return (c.model.label, c.template.name, c.label_set.name)

    exact = {key(c): c for c in cases if c.method == "exact"}
    return [(g, exact[key(g)]) for g in cases if g.method == "generation" and key(g) in exact]


def pair_id(pair: tuple[Any, Any]) -> str:
    """A method pair's test id, which is also its cassette's name."""
    return str(pair[0].id.replace("-generation-", "-methods-"))


def server_pairs(cases: list[Any]) -> list[tuple[Any, Any]]:
    """Cases of one model, method, template and label set on two servers the suite starts,
    both with one-token batches or both with default batching. Not the forced method: its
    intervals depend on whether a server takes token ids or text (text-mode bounds are
    looser), so its cases are compared with the exact method instead (:func:`forced_pairs`)."""
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


def forced_pairs(cases: list[Any]) -> list[tuple[Any, Any]]:
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


def case_order(item: Any) -> tuple[int, str]:
    """Sort key of a test item by its parameters, for xdist (which hands out contiguous
    runs of tests): the tests of one case first, by case id, so the worker that scored a
    case runs its other checks from memory and two workers seldom replay one cassette at
    once; then the tests that score nothing; last those spanning cases, which by then read
    the cases back. Sorting is stable: within a case, the files' order."""
    params: Mapping[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
    case = params.get(CASE_PARAMS[0])
    if case is not None:
        return 0, case.id
    if any(p in params for p in CASE_PARAMS[1:]):
        return 2, ""
    return 1, ""
