"""reports/ keeps the newest N runs, and deletes only folders logprob-eval created."""

from __future__ import annotations

import argparse
import os

import pytest

from logprob_eval.reporting.retention import RUN_MARKER, keep_count, mark_run, prune_runs


def make_runs(root, n):
    runs = []
    for i in range(n):
        run = root / f"run-{i:02d}"
        run.mkdir(parents=True)
        mark_run(run)
        (run / "scores.csv").write_text("x\n")
        runs.append(run)
    return runs


def test_keeps_the_newest_and_never_touches_what_it_did_not_create(tmp_path):
    runs = make_runs(tmp_path, 12)
    (tmp_path / "my-notes").mkdir()  # the user's own folder and file
    (tmp_path / "my-notes" / "n.txt").write_text("mine")
    (tmp_path / "README.md").write_text("mine")
    old_unmarked = tmp_path / "run-19990101-000000-0001"  # looks like a run, has no marker
    old_unmarked.mkdir()
    deleted = prune_runs(tmp_path, 10, current=runs[-1])
    assert sorted(p.name for p in deleted) == ["run-00", "run-01"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([r.name for r in runs[2:]] + ["my-notes", "README.md", old_unmarked.name])


def test_order_is_creation_time_not_name(tmp_path):
    a, b, c = make_runs(tmp_path, 3)
    (a / RUN_MARKER).write_text("3\n")  # a is the newest despite its name
    (b / RUN_MARKER).write_text("1\n")
    (c / RUN_MARKER).write_text("2\n")
    assert prune_runs(tmp_path, 1, current=a) == [c, b]  # newest first: a, c, b
    assert a.exists() and not b.exists() and not c.exists()


def test_latest_and_current_are_never_deleted_and_zero_keeps_all(tmp_path):
    runs = make_runs(tmp_path, 5)
    os.symlink(runs[0].name, tmp_path / "latest")  # latest points at the oldest
    assert prune_runs(tmp_path, 0, current=runs[4]) == []
    deleted = prune_runs(tmp_path, 1, current=runs[2])
    assert sorted(p.name for p in deleted) == ["run-01", "run-03"]
    assert runs[0].exists() and runs[2].exists() and runs[4].exists()
    assert (tmp_path / "latest").resolve() == runs[0].resolve()


@pytest.mark.parametrize("value", ["-1", "ten"])
def test_a_bad_keep_value_says_what_to_give(value):
    with pytest.raises(argparse.ArgumentTypeError, match="give 0 \\(keep all\\) or more"):
        keep_count(value)
    assert keep_count("0") == 0
