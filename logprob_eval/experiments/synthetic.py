"""Synthetic multi-label data through any backend, cached to CSV by seed.

The study's recipe: for each text draw 1-3 topics at random and ask the model for one
short sentence about them without naming them. A draft that names a topic, is empty or
repeats an earlier one is redrawn (up to ``tries`` times) and otherwise dropped. The CSV is
the cache: a rerun with the same backend, size and seed loads it and sends nothing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

from ..backends.base import Backend
from ..data.datasets import Dataset, Example, load_dataset
from ..data.prompts import TOPICS
from ..errors import DatasetError

__all__ = ["GENERATION_PROMPT", "cache_path", "generate_dataset"]

GENERATION_PROMPT = (
    "Write one short, concrete sentence about {topics}. Do not use the words {names}.\nSentence:"
)


def cache_path(cache_dir: str | Path, spec: str, n: int, seed: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", spec).strip("-")
    return Path(cache_dir) / f"synthetic-{slug}-n{n}-seed{seed}.csv"


def _clean(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.strip().strip('"').strip()


def generate_dataset(
    backend: Backend,
    n: int,
    *,
    seed: int = 0,
    topics: Sequence[str] = TOPICS,
    cache_dir: str | Path = "data",
    tries: int = 3,
) -> Dataset:
    """``n`` generated texts (fewer if drafts keep failing), loaded from cache when present."""
    path = cache_path(cache_dir, backend.spec, n, seed)
    if path.is_file():
        return load_dataset(path, label_names=topics)
    rng = random.Random(seed)
    names = re.compile(r"\b(" + "|".join(re.escape(t) for t in topics) + r")\b", re.IGNORECASE)
    examples: list[Example] = []
    seen: set[str] = set()
    for i in range(n):
        labels = rng.sample(list(topics), rng.randint(1, min(3, len(topics))))
        prompt = GENERATION_PROMPT.format(
            topics=" and ".join(x.lower() for x in labels),
            names=", ".join(x.lower() for x in labels),
        )
        for attempt in range(tries):
            text = _clean(backend.complete(prompt, seed=seed * 1000 + i * 10 + attempt))
            if text and not names.search(text) and text.casefold() not in seen:
                seen.add(text.casefold())
                examples.append(Example(f"s{i:04d}", text, tuple(labels)))
                break
    if not examples:
        raise DatasetError(
            f"{backend.spec} produced no usable text in {n} x {tries} drafts; try another model"
        )
    ds = Dataset(tuple(examples), tuple(topics), str(path))
    ds.write_csv(path)
    return ds
