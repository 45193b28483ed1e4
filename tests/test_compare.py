"""Run comparison (logprob_eval.reporting.compare, `logprob-eval compare`) on two made-up runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from logprob_eval.cli import main
from logprob_eval.errors import ConfigError
from logprob_eval.experiments.table import read_scores, to_frame
from logprob_eval.reporting.compare import comparison, shorten

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


LABELS = ["billing", "refund", "shipping", "account", "other"]


def _tickets(drop_true_to: dict[int, int], ids=range(40)) -> dict:
    """{id: {label: (score, is_true)}}: the true label first, except where
    ``drop_true_to`` moves it to that rank (labels above it scored higher)."""
    table = {}
    for i in ids:
        true = LABELS[i % 5]
        others = [lb for lb in LABELS if lb != true]
        order = others[:]
        order.insert(drop_true_to.get(i, 1) - 1, true)  # the ranking, best first
        table[str(i)] = {lb: (-1.0 - r, lb == true) for r, lb in enumerate(order)}
    return table


def _words(i: int) -> str:
    return f"Message {i}: I was charged twice for my order last week and I want my money back"


def _report_folder(tmp_path, name, table, k):
    from logprob_eval.evalsuite.reporting import write_run_report

    df = to_frame(frame(table))
    run = write_run_report(
        {"case": df},
        tmp_path / name,
        options={"k": k},
        texts={str(i): _words(i) for i in range(40)},
        keep=0,
    ).run_dir
    return run


def test_compare_of_report_folders_uses_their_k_and_shows_the_words(tmp_path, capsys):
    """The suite's k (2, recorded in the runs' metrics.json) decides top-k and is named:
    8 texts fall from rank 1 to rank 3 (a top-2 loss, no top-3 loss), 4 to rank 2 (a top-1
    loss only). Flipped texts show their words (shortened) beside the id."""
    a = _report_folder(tmp_path, "a", _tickets({}), 2)
    b = _report_folder(
        tmp_path, "b", _tickets({**dict.fromkeys(range(8), 3), 8: 2, 9: 2, 10: 2, 11: 2}), 2
    )
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "(k = 2: the k the runs' reports were computed with)" in out
    assert re.search(r"\| top-2 \| 1\.000 \| 0\.800 \| -0\.200 \[", out)  # 8 of 40 lost
    assert "top-k" not in out
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    c = data["configs"]["m:x/exact/t/normal"]
    assert data["k"] == 2 and c["metrics"]["topk_acc"]["diff"] == pytest.approx(-0.2)
    assert c["metrics"]["top1_acc"]["diff"] == pytest.approx(-12 / 40)
    flips = {f["example_id"]: f for f in c["flipped"]}
    assert list(flips) == [str(i) for i in range(12)]  # natural order: 2 before 10
    assert flips["3"]["text"] == _words(3)
    assert "true label fell out of the top 2" in flips["3"]["why"]
    assert '- `3` "Message 3: I was charged twice for my order last week and I…"' in out
    # the same runs with --k 3: no top-3 loss, and the output says top-3
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c3"), "--k", "3"]) == 0
    out3 = capsys.readouterr().out
    assert (
        re.search(r"\| top-3 \| 1\.000 \| 1\.000 \| \+0\.000 \[", out3) and "(k = 3: --k)" in out3
    )


def test_compare_takes_k_from_the_suite_config(tmp_path, capsys):
    a, b = _run(tmp_path, "a", 0), _run(tmp_path, "b", 12)  # scores tables: no k recorded
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "d")]) == 0
    assert "(k = 3: the default; pass --config" in capsys.readouterr().out
    cfg = tmp_path / "evals.toml"
    cfg.write_text(
        '[[models]]\nspec = "local:gemma-3-270m"\nmethods = ["exact"]\n'
        "[expectations.ranking]\nk = 2\n",
        encoding="utf-8",
    )
    assert (
        main(["compare", str(a), str(b), "--out", str(tmp_path / "e"), "--config", str(cfg)]) == 0
    )
    out = capsys.readouterr().out
    assert f"(k = 2: [expectations.ranking] k of {cfg})" in out and "| top-2 |" in out


def test_compare_refuses_runs_computed_with_different_k(tmp_path, capsys):
    a = _report_folder(tmp_path, "a", _tickets({}), 2)
    b = _report_folder(tmp_path, "b", _tickets({}), 3)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "x")]) == 2
    assert "different k (2, 3); pass --k N" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_compare_when_the_runs_texts_differ(tmp_path, capsys):
    """Numeric ids (a pandas index), read back from the scores tables as numbers: the
    shared texts are compared, the others counted and named; a config whose texts are all
    different says there is nothing to compare. Both files are written."""
    a_tab = _tickets({}, ids=[i for i in range(40) if i not in (5, 7)])
    b_tab = _tickets({0: 3}, ids=[i for i in range(40) if i != 12])
    a_rows = frame(a_tab) + frame(_tickets({}, ids=range(10)), template="u")
    b_rows = frame(b_tab) + frame(_tickets({}, ids=range(10, 20)), template="u")
    for name, rows in (("a.csv", a_rows), ("b.csv", b_rows)):
        to_frame(rows).to_csv(tmp_path / name, index=False)
    data_file = tmp_path / "tickets.csv"
    import pandas as pd

    pd.DataFrame(
        {"text": [_words(i) for i in range(40)], "labels": [LABELS[i % 5] for i in range(40)]}
    ).to_csv(data_file)  # pandas' unnamed index column: the ids 0..39
    out_dir = tmp_path / "cmp"
    rc = main(
        [
            "compare",
            str(tmp_path / "a.csv"),
            str(tmp_path / "b.csv"),
            "--out",
            str(out_dir),
            "--data",
            str(data_file),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "37 shared texts (1 only in A, 2 only in B); regressions: none" in out
    assert "Texts only in A (1, not compared): `12`" in out
    assert "Texts only in B (2, not compared): `5`, `7`" in out
    assert (
        "## m:x/exact/u/normal\n\n0 shared texts (10 only in A, 10 only in B): no text to compare"
        in out
    )
    assert '- `0` "Message 0: I was charged twice' in out  # words from --data, by index
    data = json.loads((out_dir / "comparison.json").read_text(), parse_constant=_no_constant)
    c = data["configs"]["m:x/exact/t/normal"]
    assert (c["only_a"], c["only_b"], c["n_shared"]) == (["12"], ["5", "7"], 37)
    none = data["configs"]["m:x/exact/u/normal"]  # nothing shared: no numbers, not NaNs
    assert (none["n_shared"], none["metrics"], none["regressions"]) == (0, {}, [])
    assert (out_dir / "comparison.md").is_file()


def _no_constant(name):
    raise AssertionError(f"comparison.json holds {name}, which is not JSON")


def test_a_comparison_that_cannot_be_rendered_writes_no_file(tmp_path, monkeypatch):
    import logprob_eval.reporting.compare as cmp

    a, b = _run(tmp_path, "a", 0), _run(tmp_path, "b", 12)
    monkeypatch.setattr(cmp, "to_markdown", lambda result: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cmp.compare_runs(a, b, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("short text", "short text"),
        ("  spread\nover   lines ", "spread over lines"),
        ("word " * 20, "word " * 11 + "word…"),
        ("abc " * 13 + "abcdefghij", ("abc " * 13).rstrip() + "…"),
        ("x" * 80, "x" * 59 + "…"),
    ],
)
def test_shorten(text, short):
    assert shorten(text) == short and len(shorten(text)) <= 60


def test_ids_that_look_like_numbers_stay_text(tmp_path):
    """A scores table's ids are read as text ("007" stays "007"), so an earlier run read
    from its file and this run in memory share their texts (as --llm-compare-to needs)."""
    table = _tickets({}, ids=range(12))
    padded = {f"{int(e):03d}": row for e, row in table.items()}
    now = to_frame(frame(padded))
    now.to_csv(tmp_path / "scores.csv", index=False)
    res = comparison(tmp_path / "scores.csv", now, texts={"007": "seven"})
    c = res["configs"]["m:x/exact/t/normal"]
    assert (c["n_shared"], c["only_a"], c["only_b"]) == (12, [], [])
    assert set(read_scores(tmp_path / "scores.csv")["example_id"]) == set(padded)
