from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from werkzeug import Request, Response

from logprob_eval.cli import build_parser, main
from logprob_eval.experiments import analyze, to_frame
from logprob_eval.reporting.report import write_report

from .helpers import fake_echo_completions

COMMANDS = ["init", "score", "stability", "thresholds", "compare", "generate", "serve"]


def echo_handler(request: Request) -> Response:
    return Response(
        json.dumps(fake_echo_completions(json.loads(request.get_data()))),
        content_type="application/json",
    )


@pytest.fixture
def fake_server(httpserver):
    httpserver.expect_request("/v1/completions").respond_with_handler(echo_handler)
    return httpserver.url_for("/v1")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_complete_help(command, capsys):
    with pytest.raises(SystemExit) as ei:
        main([command, "--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert "--help" in out
    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help"


def test_score_then_thresholds_then_report(fake_server, tmp_path, capsys):
    scores = tmp_path / "s.csv"
    rc = main(
        [
            "score",
            "--model",
            f"openai-compatible:fake@{fake_server}",
            "--templates",
            "simple,question",
            "--label-sets",
            "normal,verbose",
            "--sample",
            "12",
            "--out",
            str(scores),
            "--no-progress",
        ]
    )
    assert rc == 0
    df = pd.read_csv(scores)
    assert len(df) == 12 * 2 * 2 * 10
    assert set(df["status"]) == {"exact"}
    rc = main(["thresholds", "--scores", str(scores), "--out", str(tmp_path / "rep")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "bestF1=" in out
    latest = tmp_path / "rep" / "latest"
    assert (latest / "report.html").is_file()
    metrics = json.loads((latest / "metrics.json").read_text())
    assert set(metrics["thresholds"]) == set(metrics["configs"])


def test_stability_command_writes_every_artifact(fake_server, tmp_path):
    rc = main(
        [
            "stability",
            "--model",
            f"openai-compatible:fake@{fake_server}",
            "--templates",
            "simple,json,task",
            "--label-sets",
            "normal,simple",
            "--sample",
            "10",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert rc == 0
    run = (tmp_path / "latest").resolve()
    names = {p.name for p in run.iterdir()}
    assert {
        "scores.csv",
        "metrics.json",
        "report.html",
        "true_scores_by_template.png",
        "thresholds.png",
        "pr_curves.png",
    } <= names
    assert "true_scores_by_model.png" not in names  # one model: one box says nothing
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["transforms"]) == {"raw", "renorm", "length", "contextual", "pmi"}
    assert metrics["transforms"]["contextual"]["note"] == ""  # content-free rows were scored
    assert len(metrics["agreement"]["template"]) == 2 * 3  # 3 pairs per label set
    html = (run / "report.html").read_text()
    assert "<img src='thresholds.png'" in html and "best F1" in html
    assert "NaN" not in (run / "metrics.json").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--templates", "fancy"], "unknown template 'fancy'"),
        (["--label-sets", "shouty"], "unknown label set 'shouty'"),
        (["--data", "missing.csv"], "does not exist"),
    ],
)
def test_bad_names_exit_2_with_a_clear_message(fake_server, argv, message, capsys):
    rc = main(["score", "--model", f"openai-compatible:fake@{fake_server}", *argv, "--no-progress"])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_report_survives_all_failed_config(tmp_path):
    rows = [
        dict(
            example_id=f"e{i}",
            model="m:x",
            method="exact",
            template="t",
            label_set="n",
            label=lab,
            phrase=lab,
            logprob=math.nan,
            status="error",
            is_true=lab == "A",
            n_tokens=0,
            error="HTTP 500",
        )
        for i in range(3)
        for lab in "AB"
    ]
    df = to_frame(rows)
    summary, sweeps = analyze(df)
    run = write_report(tmp_path, df, summary, sweeps)
    assert "all 6 rows failed" in (run / "report.html").read_text()


def test_report_counts_truncated_and_sentinel_scores(tmp_path):
    notes = {
        "A": "position 0 lists a truncated distribution ... send top_p=1",
        "B": "position 0: the listed probabilities sum to 1, ... no mass is known to be left "
        "over: ...",
    }
    rows = [
        dict(
            example_id=f"e{i}",
            model="m:x",
            method="generation",
            template="t",
            label_set="n",
            label=lab,
            phrase=lab,
            logprob=-1.0 if lab == "A" else -2.0,
            status="upper_bound",
            is_true=lab == "A",
            n_tokens=1,
            note=notes[lab] if i else "a log-prob here was a provider sentinel (-9999 ...)",
        )
        for i in range(4)
        for lab in "AB"
    ]
    df = to_frame(rows)
    summary, sweeps = analyze(df)
    got = summary["configs"]["m:x/generation/t/n"]["notes"]
    assert "3 score(s) read a truncated distribution" in " ".join(got)
    assert "2 score(s) met a provider sentinel" in " ".join(got)
    assert "3 bound(s) from the smallest listed entry alone" in " ".join(got)
    run = write_report(tmp_path, df, summary, sweeps)
    assert "send top_p=1" in (run / "report.html").read_text()


def test_score_reads_the_notebooks_file_unchanged(fake_server, tmp_path, capsys):
    data = tmp_path / "synthetic_dataset.csv"
    topics = [["Sports", "Health"], ["Politics"], ["Art", "History"]]
    texts = ["A goal, then a sprain.", "Ballots were counted.", "Old frescoes restored."]
    pd.DataFrame({"text": texts, "topics": topics}).to_csv(data)  # as the notebook saves it
    out = tmp_path / "s.csv"
    argv = ["score", "--model", f"openai-compatible:fake@{fake_server}", "--data", str(data)]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"dataset {data}: 3 texts, labels from column 'topics' (a label column name)" in err
    df = pd.read_csv(out)
    truth = df[df["is_true"]].groupby("example_id")["label"].apply(sorted).to_dict()
    # the ids are the index pandas wrote (its unnamed first column), not row numbers
    assert truth == {0: ["Health", "Sports"], 1: ["Politics"], 2: ["Art", "History"]}


def test_score_takes_the_column_options(fake_server, tmp_path, capsys):
    data = tmp_path / "d.tsv"
    data.write_text("key\tsentence\tkind\tnote\nk1\tA goal.\tsports\tx\n", encoding="utf-8")
    argv = ["score", "--model", f"openai-compatible:fake@{fake_server}", "--data", str(data)]
    assert main([*argv, "--out", str(tmp_path / "s.csv"), "--no-progress"]) == 2
    assert "has no column 'text'" in capsys.readouterr().err
    argv += ["--text-column", "sentence", "--id-column", "key"]
    assert main([*argv, "--out", str(tmp_path / "s.csv"), "--no-progress"]) == 2
    assert "several could hold the labels: 'kind', 'note'" in capsys.readouterr().err
    rc = main(
        [
            *argv,
            "--labels-column",
            "kind",
            "--out",
            str(tmp_path / "s.csv"),
            "--no-progress",
        ]
    )
    assert rc == 0
    df = pd.read_csv(tmp_path / "s.csv")
    assert set(df["example_id"]) == {"k1"}
    assert df.loc[df["is_true"], "label"].tolist() == ["sports"]  # the label as the file spells it


def test_thresholds_prints_the_chosen_thresholds_with_their_f1(tmp_path, capsys):
    """Four texts, two labels (the user's). Hand-computed: over every observed score the
    micro F1 peaks at -2.5 (predicted 6 pairs, all 4 true ones: F1 = 8 / 10 = 0.8); per
    label, 'billing' separates perfectly at -1.0 (F1 1) and 'refund' peaks at -2.5
    (2 of 3 predicted true, both found: F1 0.8)."""
    from sklearn.metrics import f1_score

    table = {  # text: {label: (log-prob, true)}
        "m1": {"billing": (-1.0, True), "refund": (-3.0, False)},
        "m2": {"billing": (-2.0, False), "refund": (-1.5, True)},
        "m3": {"billing": (-0.5, True), "refund": (-2.5, True)},
        "m4": {"billing": (-4.0, False), "refund": (-0.8, False)},
    }
    from .test_metrics import frame

    rows = frame(table)
    scores = tmp_path / "scores.csv"
    to_frame(rows).to_csv(scores, index=False)
    assert main(["thresholds", "--scores", str(scores), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert (
        "  thresholds on logprob (optimistic bounds; predict every label scoring at or above):"
        in out
    )
    assert "    overall    -2.5000  F1 0.800 (micro)" in out
    assert "    billing    -1.0000  F1 1.000" in out
    assert "    refund     -2.5000  F1 0.800" in out
    for lab, thr, f1 in (("billing", -1.0, 1.0), ("refund", -2.5, 0.8)):  # and sklearn agrees
        y = [table[e][lab][1] for e in table]
        pred = [table[e][lab][0] >= thr for e in table]
        assert f1_score(y, pred) == pytest.approx(f1)
    y_all = [t for labs in table.values() for _, t in labs.values()]
    pred_all = [lp >= -2.5 for labs in table.values() for lp, _ in labs.values()]
    assert f1_score(y_all, pred_all) == pytest.approx(0.8)
