"""The package's layers: a module imports only from its own package or a layer below it
(imports inside functions count too). Read from the source with ``ast``; nothing is run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "logprob_eval"

LAYERS = [
    {"errors", "redact", "cache"},  # what every layer may use
    {"scoring", "data"},  # a label's log-prob from tokens; texts, labels and prompts
    {"server"},  # the local model's server, third-party servers the tests start
    {"backends"},  # one module per provider, and the job runner
    {"experiments"},  # metrics, intervals, thresholds, stability
    {"reporting"},  # a run's folder, comparisons
    {"evalsuite"},  # the pytest suite's machinery (config, runner, cassettes, checks)
    {"cli", "plugin", "__init__"},  # the entry points and the public API
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str:
    """``logprob_eval.scoring.matcher`` -> ``scoring``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import of the package in ``path`` (under ``root``,
    the folder holding the package)."""
    package = list(path.relative_to(root).parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "logprob_eval":  # from logprob_eval import a, b: the modules named
                out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            elif target.startswith("logprob_eval."):
                out.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("logprob_eval.")]
    return out


def upward(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """The imports of ``path`` from its own layer's other packages or from a higher layer."""
    mine = _part(".".join(path.relative_to(root).with_suffix("").parts))
    return [
        f"line {line}: {target}"
        for line, target in _imports(path, root)
        if _part(target) != mine and LAYER.get(_part(target), len(LAYERS)) >= LAYER[mine]
    ]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_top_level_name_has_a_layer():
    names = {p.stem if p.parent == PACKAGE else p.relative_to(PACKAGE).parts[0] for p in MODULES}
    assert names <= set(LAYER), f"give these a layer: {sorted(names - set(LAYER))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down(path):
    assert not upward(path), f"{path.relative_to(PACKAGE)} imports upward: {upward(path)}"


def test_an_upward_or_sideways_import_is_found_also_inside_a_function(tmp_path):
    module = tmp_path / "logprob_eval" / "scoring" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from ..errors import ConfigError\nfrom .records import Position\n"
        "def f():\n    from ..reporting.report import write_report\n"
        "    from logprob_eval import data\n"
    )
    assert upward(module, tmp_path) == [
        "line 4: logprob_eval.reporting.report",
        "line 5: logprob_eval.data",
    ]
