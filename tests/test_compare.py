"""Run comparison (logprob_eval.compare and `logprob-eval compare`) on two made-up runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from logprob_eval.cli import main
from logprob_eval.compare import comparison
from logprob_eval.errors import ConfigError
from logprob_eval.experiments.table import to_frame

from .test_metrics import frame


def _run(tmp_path, name, shift_first: int, *, extra_config: bool = False, drop: str = ""):
    """40 texts, 5 labels; the true label outscores the rest except in the first
    ``shift_first`` texts, where label L4 wins."""
    rng = np.random.default_rng(0)
    table = {}
    for i in range(40):
        true = i % 4
        row = {f"L{j}": (float(-2 - rng.random()), j == true) for j in range(5)}
        row[f"L{true}"] = (-0.5, True)
        if i < shift_first:
            row["L4"] = (-0.1, False) if true != 4 else row["L4"]
        table[f"t{i:02d}"] = row
    if drop:
        del table[drop]
    rows = frame(table)
    if extra_config:
        rows += frame(table, template="other")
    folder = tmp_path / name
    folder.mkdir()
    to_frame(rows).to_csv(folder / "scores.csv", index=False)
    return folder


def test_flipped_texts_regressions_and_what_is_in_one_run_only(tmp_path):
    a = _run(tmp_path, "a", 0, extra_config=True, drop="t39")
    b = _run(tmp_path, "b", 12, drop="t38")
    res = comparison(a, b)
    assert res["configs_only_a"] == ["m:x/exact/other/normal"] and res["configs_only_b"] == []
    c = res["configs"]["m:x/exact/t/normal"]
    assert (c["only_a"], c["only_b"], c["n_shared"]) == (["t38"], ["t39"], 38)
    flipped = {f["example_id"]: f for f in c["flipped"]}
    assert sorted(flipped) == [f"t{i:02d}" for i in range(12)]
    f = flipped["t01"]
    assert f["why"] == "top label L1 -> L4" and f["true"] == ["L1"]
    assert tuple(f["ranking_a"][0]) == ("L1", -0.5)
    assert tuple(f["ranking_b"][0]) == ("L4", -0.1)
    top1 = c["metrics"]["top1_acc"]
    assert top1["diff"] == pytest.approx(-12 / 38)
    assert top1["mcnemar"]["lost"] == 12 and top1["mcnemar"]["gained"] == 0
    assert "top1_acc" in c["regressions"]


def test_cli_compare_writes_markdown_and_json(tmp_path, capsys):
    a, b = _run(tmp_path, "a", 0), _run(tmp_path, "b", 12)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "Flipped texts: 12" in out and "**regression**" in out
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert data["configs"]["m:x/exact/t/normal"]["regressions"]
    assert (tmp_path / "cmp" / "comparison.md").read_text().startswith("# Run comparison")


def test_compare_a_folder_without_scores_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match=re.escape("holds no scores.csv")):
        comparison(tmp_path, tmp_path)
    assert main(["compare", str(tmp_path), str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "holds no scores.csv" in capsys.readouterr().err
