from __future__ import annotations

from collections.abc import Sequence

from logprob_eval.backends.base import Backend
from logprob_eval.experiments.synthetic import generate_dataset
from logprob_eval.scoring.records import LabelScore


class Writer(Backend):
    """Returns scripted drafts; counts calls."""

    provider = "writer"
    methods = ("generation",)

    def __init__(self, drafts: list[str]) -> None:
        super().__init__("w", method="generation")
        self.drafts = drafts
        self.calls = 0

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        raise NotImplementedError

    def complete(self, prompt: str, **kwargs: object) -> str:
        self.calls += 1
        return self.drafts[(self.calls - 1) % len(self.drafts)]


def test_generation_filters_names_and_caches_by_seed(tmp_path):
    drafts = [
        "The players ran onto the pitch.",
        "This is about Sports and Art.",
        "A chef roasted the lamb.\nextra line",
        "The players ran onto the pitch.",
    ]
    w = Writer(drafts)
    ds = generate_dataset(w, 3, seed=5, cache_dir=tmp_path)
    texts = [ex.text for ex in ds]
    assert "This is about Sports and Art." not in texts
    assert all("\n" not in t for t in texts)
    assert len(set(texts)) == len(texts)
    assert all(1 <= len(ex.labels) <= 3 for ex in ds)
    again = Writer(drafts)
    cached = generate_dataset(again, 3, seed=5, cache_dir=tmp_path)
    assert again.calls == 0
    assert [e.text for e in cached] == texts
