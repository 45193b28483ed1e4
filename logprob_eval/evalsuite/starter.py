"""``logprob-eval init``: a commented starter ``evals.toml`` written from the user's data.

The file it writes is a complete suite (``pytest FOLDER`` runs it): the labels found in the
data, declared and phrased each as itself; the local model with both methods; two templates
worded for any labels; and floors a little above what a scorer at chance reaches on these
texts (the 95% quantile of :func:`~..experiments.chance.chance_distribution`, plus a
margin), so that a passing run shows the model does better than guessing. The file is read
back through the suite's own loader before it is kept: what ``init`` writes, ``pytest``
accepts.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..data.datasets import Dataset, load_dataset
from ..errors import ConfigError
from ..experiments.chance import chance_distribution
from .config import load_eval_config

__all__ = ["STARTER_TEMPLATES", "starter_k", "write_starter"]

STARTER_TEMPLATES = {
    "listed": "Text: {text}\nLabels: {labels}\nLabel:",
    "question": "{text}\n\nWhich of these labels fits the text above: {labels}?\nAnswer:",
}
"""Two templates for any labels, ending where a base model writes the label."""

_MARGIN = 0.02  # above the chance quantile: "a little above chance"
_SAMPLE = 200  # texts per case at most: recording time grows with it


def starter_k(n_labels: int) -> int:
    """The top-k of the ranking checks: a third of the labels, 1 to 3."""
    return max(1, min(3, round(n_labels / 3)))


def _chance_floors(dataset: Dataset, k: int) -> dict[str, float]:
    truth = np.array([[lab in ex.labels for lab in dataset.label_names] for ex in dataset])
    dist = chance_distribution(truth, k=k, n_sim=2000, seed=0)

    def floor(metric: str) -> float:
        q = float(np.quantile(dist[metric], 0.95)) + _MARGIN
        return min(0.99, math.ceil(q * 100) / 100)

    return {m: floor(m) for m in ("auc", "topk_acc", "mrr", "best_f1", "average_precision")}


def _toml(value: object) -> str:
    """A TOML string or list of strings (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def render_starter(
    dataset: Dataset,
    data_path: str,
    *,
    text_column: str,
    labels_column: str | None,
    id_column: str,
) -> str:
    labels = dataset.label_names
    k = starter_k(len(labels))
    f = _chance_floors(dataset, k)
    n = len(dataset)
    columns = [f"text_column = {_toml(text_column)}"]
    columns.append(
        f"labels_column = {_toml(labels_column)}"
        if labels_column
        else f"# labels_column: {dataset.labels_from}"
    )
    columns.append(f"id_column = {_toml(id_column)}")
    phrases = "\n".join(f"{_toml(lab)} = {_toml(lab)}" for lab in labels)
    templates = "\n".join(f"{name} = {_toml(text)}" for name, text in STARTER_TEMPLATES.items())
    return f"""\
# An eval suite for a label log-prob classifier, written by `logprob-eval init` from
# {data_path} ({n} texts, {len(labels)} labels). `pytest <this folder>` runs every check
# declared here; see the README ("Your own classifier") for record, replay and the gate.

[dataset]
path = {_toml(data_path)}
{chr(10).join(columns)}
# the labels: a text's labels must be among them; every label set phrases each of them
labels = {_toml(list(labels))}
sample = {min(n, _SAMPLE)}           # texts per case, drawn by seed
seed = 0
dev_fraction = 0.5     # threshold transfer: tune on this share, test on the rest

# The embedded local model (needs the [local] extra to record; replay needs nothing).
# Other models: spec = "openai:gpt-4.1-mini", "ollama:llama3.2",
# "openai-compatible:NAME@http://host:port/v1" (see the README's backends).
[[models]]
spec = "local:gemma-3-270m"
methods = ["generation", "exact"]
top_logprobs = 20
max_tokens = 8
first_answer_only = true

# How the labels are worded in the prompt and matched in the answer: label = "phrase".
# Add a second table (e.g. [label_sets.described]) to check rankings across phrasings.
[label_sets.as_is]
{phrases}

# {{text}} is the text to classify, {{labels}} the label set's phrases joined by ", ".
[templates]
{templates}

[grid]
templates = {_toml(list(STARTER_TEMPLATES))}
label_sets = ["as_is"]

# Floors a little above what a scorer at chance reaches 19 times in 20 on these texts
# (95% quantile + {_MARGIN}). Raise them to what the model really does once recorded; a
# floor left out is not checked.
[expectations.ranking]
k = {k}

[expectations.ranking.floors.exact]
auc = {f["auc"]}
topk_acc = {f["topk_acc"]}
mrr = {f["mrr"]}

[expectations.ranking.floors.generation]
auc = {f["auc"]}

[expectations.thresholds.floors.exact]
best_f1 = {f["best_f1"]}
average_precision = {f["average_precision"]}

[expectations.stability]
template_tau = 0.2       # mean per-text Kendall tau between the two templates

[expectations.regression]
alpha = 0.05             # new recordings: fail on a significant drop ...
min_effect = 0.02        # ... larger than this
"""


def write_starter(
    folder: str | Path,
    data: str | Path,
    *,
    text_column: str = "text",
    labels_column: str | None = None,
    id_column: str = "id",
    force: bool = False,
) -> tuple[Path, Dataset]:
    """Write ``FOLDER/evals.toml`` for the dataset ``data``; (its path, the dataset)."""
    folder = Path(folder)
    target = folder / "evals.toml"
    if target.exists() and not force:
        raise ConfigError(f"{target} exists; edit it, remove it, or pass --force to overwrite it")
    dataset = load_dataset(
        data, text_column=text_column, labels_column=labels_column, id_column=id_column
    )
    if len(dataset.label_names) < 2:
        raise ConfigError(
            f"dataset {dataset.source} has {len(dataset.label_names)} label "
            f"({', '.join(dataset.label_names)}); a classifier needs at least two: check "
            "--labels-column"
        )
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(Path(data).resolve(), folder.resolve())
    text = render_starter(
        dataset,
        Path(rel).as_posix(),
        text_column=text_column,
        labels_column=labels_column,
        id_column=id_column,
    )
    tmp = target.with_name(".evals.toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:  # what init writes, the suite accepts
        cfg = load_eval_config(tmp)
        cfg.check_label_sets(cfg.load_dataset(folder), cfg.cases())
    except Exception:
        tmp.unlink(missing_ok=True)
        if created:
            folder.rmdir()  # no empty folder left behind
        raise
    tmp.replace(target)
    return target, dataset
