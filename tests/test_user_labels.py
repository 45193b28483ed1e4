"""The labels are the user's: datasets, label sets, the CLI's score and init.

The data here is hand-written for these tests: a support team's ticket intents, labels the
study never had (one of them in another script)."""

from __future__ import annotations

import json
import tomllib

import pandas as pd
import pytest
from werkzeug import Request, Response

from logprob_eval.cli import main
from logprob_eval.data.datasets import load_dataset
from logprob_eval.data.prompts import TOPICS, LabelSet, as_is
from logprob_eval.errors import ConfigError, DatasetError
from logprob_eval.evalsuite.config import load_eval_config
from logprob_eval.evalsuite.starter import starter_k, write_starter
from logprob_eval.experiments.chance import chance_distribution

from .helpers import SUPPORT_TICKETS, fake_echo_completions

TICKETS = [*SUPPORT_TICKETS, ("Wo finde ich meine Rechnung?", ["Rechnung"])]


def write_tickets(path, rows=TICKETS, index=True):
    df = pd.DataFrame({"message": [t for t, _ in rows], "intents": [i for _, i in rows]})
    df.to_csv(path, index=index)  # as pandas writes it: a list literal per cell
    return path


def test_a_datasets_labels_are_the_ones_its_file_holds(tmp_path):
    ds = load_dataset(write_tickets(tmp_path / "t.csv"), text_column="message")
    assert ds.label_names == ("refund", "billing", "bug", "account", "Rechnung")  # first seen
    assert ds.examples[0].labels == ("refund", "billing")
    assert ds.labels_from == "column 'intents' (the only column besides the text)"


def test_spellings_that_differ_in_case_are_one_label_spelt_as_first_seen(tmp_path):
    rows = [("a", ["Refund"]), ("b", ["refund", "BILLING"]), ("c", ["billing"])]
    ds = load_dataset(write_tickets(tmp_path / "t.csv", rows), text_column="message")
    assert ds.label_names == ("Refund", "BILLING")
    assert [ex.labels for ex in ds] == [("Refund",), ("Refund", "BILLING"), ("BILLING",)]


def test_declared_labels_refuse_others_and_name_the_declared_ones(tmp_path):
    path = write_tickets(tmp_path / "t.csv")
    with pytest.raises(DatasetError) as ei:
        load_dataset(path, text_column="message", label_names=["refund", "billing", "bug"])
    msg = str(ei.value)
    assert "has 3 invalid row(s) of 8 (3 problem(s)" in msg  # rows 4, 5 and 8
    assert "row 4, column 'intents': has label 'account', which is not among the declared " in msg
    assert "(refund, billing, bug)" in msg
    assert "Technology" not in msg


def test_rows_are_counted_as_rows_not_as_problems(tmp_path):
    rows = [("a", ["x", "y", "z"]), ("b", ["x"])]
    path = write_tickets(tmp_path / "t.csv", rows)
    with pytest.raises(DatasetError, match=r"has 1 invalid row\(s\) of 2 \(2 problem\(s\)"):
        load_dataset(path, text_column="message", label_names=["x", "w"])


def test_the_built_in_dataset_keeps_the_studys_topics():
    assert load_dataset("topics").label_names == TOPICS


def test_a_non_utf8_file_is_reported_by_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"text,labels\nfine,a\nstill fine,b\ncaf\xe9 au lait,a\n")
    with pytest.raises(DatasetError) as ei:
        load_dataset(path)
    assert "line 4 (column 4, counting bytes) has the byte b'\\xe9'" in str(ei.value)
    assert "re-save the file as UTF-8" in str(ei.value)


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"refund": "refund"}, "has no phrase for 'billing'"),
        (
            {"refund": "refund", "billing": "billing", "Science": "science"},
            "phrases 'Science', not a label of the dataset",
        ),
    ],
)
def test_a_label_set_phrases_exactly_the_datasets_labels(mapping, expected):
    with pytest.raises(ConfigError) as ei:
        LabelSet("mine", mapping).check_covers(["refund", "billing"], source="t.csv", fix="FIX")
    assert expected in str(ei.value)
    assert "(labels of the dataset t.csv: refund, billing); FIX" in str(ei.value)
    LabelSet("ok", {"billing": "b", "refund": "r"}).check_covers(
        ["refund", "billing"], source="t.csv", fix=""
    )  # the order does not matter


def test_as_is_phrases_each_label_as_itself():
    assert as_is(["refund", "Rechnung"]).mapping == {"refund": "refund", "Rechnung": "Rechnung"}


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def fake_server(httpserver):
    def handler(request: Request) -> Response:
        body = fake_echo_completions(json.loads(request.get_data()))
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/completions").respond_with_handler(handler)
    return httpserver.url_for("/v1")


def test_score_speaks_the_users_labels(fake_server, tmp_path, capsys):
    data = write_tickets(tmp_path / "t.csv")
    out = tmp_path / "s.csv"
    argv = ["score", "--model", f"openai-compatible:fake@{fake_server}", "--data", str(data)]
    assert main([*argv, "--text-column", "message", "--out", str(out), "--no-progress"]) == 0
    assert (
        "labels from column 'intents' (the only column besides the text): refund, billing, bug, "
        in (capsys.readouterr().err)
    )
    df = pd.read_csv(out)
    assert set(df["label"]) == {"refund", "billing", "bug", "account", "Rechnung"}
    assert set(df["label_set"]) == {"as-is"}
    truth = df[df["is_true"]].groupby("example_id")["label"].apply(sorted).to_dict()
    assert truth[df["example_id"].iloc[0]] == ["billing", "refund"]


def test_score_refuses_a_label_set_that_misses_a_label(fake_server, tmp_path, capsys):
    data = write_tickets(tmp_path / "t.csv")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[label_sets.few]\nrefund = "refund"\nbilling = "billing"\n')
    out = tmp_path / "new" / "deeper" / "s.csv"
    argv = ["score", "--model", f"openai-compatible:fake@{fake_server}", "--data", str(data)]
    rc = main([*argv, "--text-column", "message", "--config", str(cfg), "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "label set 'few' has no phrase for 'bug', 'account', 'Rechnung'" in err
    assert not (tmp_path / "new").exists()  # a failed run leaves no empty folder, at any depth


def test_a_label_set_with_an_extra_label_is_refused_by_the_suite_and_by_score(
    fake_server, tmp_path, capsys
):
    """One rule, both paths: a label set phrasing a label the dataset does not have (here
    'Science', beside every label of the dataset) is refused by the suite's loader and by
    ``score --config``, each naming the extra label."""
    data = write_tickets(tmp_path / "tickets.csv")
    labels = ["refund", "billing", "bug", "account", "Rechnung"]
    phrases = "".join(f'"{lab}" = "{lab}"\n' for lab in [*labels, "Science"])
    path, _ = write_starter(tmp_path / "s", data, text_column="message")
    text = path.read_text(encoding="utf-8")
    start = text.index("[label_sets.as_is]\n") + len("[label_sets.as_is]\n")
    end = text.index("\n\n", start) + 1
    path.write_text(text[:start] + phrases + text[end:], encoding="utf-8")
    cfg = load_eval_config(path)
    assert set(cfg.label_sets["as_is"].mapping) == {*labels, "Science"}
    with pytest.raises(ConfigError) as ei:
        cfg.check_label_sets(cfg.load_dataset(tmp_path), cfg.cases())
    assert "label set 'as_is' phrases 'Science', not a label of the dataset" in str(ei.value)

    cli_cfg = tmp_path / "c.toml"
    cli_cfg.write_text("[label_sets.more]\n" + phrases, encoding="utf-8")
    argv = ["score", "--model", f"openai-compatible:fake@{fake_server}", "--data", str(data)]
    out = ["--out", str(tmp_path / "s.csv")]
    assert main([*argv, "--text-column", "message", "--config", str(cli_cfg), *out]) == 2
    err = capsys.readouterr().err
    assert "label set 'more' phrases 'Science', not a label of the dataset" in err
    assert not (tmp_path / "s.csv").exists()


def test_init_writes_a_suite_the_suite_loader_accepts(tmp_path, capsys):
    data = write_tickets(tmp_path / "tickets.csv")
    folder = tmp_path / "support"
    assert main(["init", str(folder), "--data", str(data), "--text-column", "message"]) == 0
    out = capsys.readouterr().out
    assert "5 labels (refund, billing, bug, account, Rechnung)" in out
    assert f"pytest {folder} --record-mode=once" in out
    raw = tomllib.loads((folder / "evals.toml").read_text(encoding="utf-8"))
    assert raw["dataset"]["path"] == "../tickets.csv"
    assert raw["dataset"]["labels"] == ["refund", "billing", "bug", "account", "Rechnung"]
    assert raw["label_sets"]["as_is"] == {lab: lab for lab in raw["dataset"]["labels"]}
    assert raw["models"][0]["methods"] == ["generation", "exact"]
    assert len(raw["grid"]["templates"]) == 2
    cfg = load_eval_config(folder / "evals.toml")
    assert [c.id for c in cfg.cases("exact")] == [
        "local-gemma-3-270m-exact-listed-as_is",
        "local-gemma-3-270m-exact-question-as_is",
    ]
    ds = cfg.load_dataset(tmp_path / "elsewhere")  # the data path is the config's
    cfg.check_label_sets(ds, cfg.cases())


def test_init_floors_sit_just_above_what_chance_reaches(tmp_path):
    data = write_tickets(tmp_path / "tickets.csv")
    path, ds = write_starter(tmp_path / "s", data, text_column="message")
    expect = tomllib.loads(path.read_text())["expectations"]
    k = starter_k(len(ds.label_names))
    assert k == 2  # five labels
    truth = [[lab in ex.labels for lab in ds.label_names] for ex in ds]
    dist = chance_distribution(truth, k=k, n_sim=2000, seed=0)
    floors = {
        ("ranking", "exact", "auc"): expect["ranking"]["floors"]["exact"]["auc"],
        ("ranking", "exact", "topk_acc"): expect["ranking"]["floors"]["exact"]["topk_acc"],
        ("ranking", "exact", "mrr"): expect["ranking"]["floors"]["exact"]["mrr"],
        ("ranking", "generation", "auc"): expect["ranking"]["floors"]["generation"]["auc"],
        ("thresholds", "exact", "best_f1"): expect["thresholds"]["floors"]["exact"]["best_f1"],
        ("thresholds", "exact", "average_precision"): (
            expect["thresholds"]["floors"]["exact"]["average_precision"]
        ),
    }
    for (section, method, metric), floor in floors.items():
        q95 = float(pd.Series(dist[metric]).quantile(0.95))
        assert q95 + 0.02 <= floor <= q95 + 0.03, (section, method, metric)
        assert (dist[metric] >= floor).mean() < 0.05, (section, method, metric)


def test_init_never_overwrites_and_leaves_nothing_on_failure(tmp_path, capsys):
    data = write_tickets(tmp_path / "tickets.csv")
    folder = tmp_path / "s"
    assert main(["init", str(folder), "--data", str(data), "--text-column", "message"]) == 0
    assert main(["init", str(folder), "--data", str(data), "--text-column", "message"]) == 2
    assert "exists; edit it, remove it, or pass --force" in capsys.readouterr().err
    bad = tmp_path / "new-suite"
    assert main(["init", str(bad), "--data", str(data)]) == 2  # no column 'text'
    assert "has no column 'text'" in capsys.readouterr().err
    assert not bad.exists()


def test_the_summary_shows_each_tau_floor_or_says_there_is_none():
    from logprob_eval.evalsuite.reporting import summary_lines

    groups = {
        "m/exact/plain across templates": {"mean_kendall_tau": 0.7, "ci": [0.6, 0.8]},
        "m/exact/listed across label_sets": {"mean_kendall_tau": 0.5, "ci": [0.4, 0.6]},
    }
    lines = summary_lines([], groups, {"templates": 0.4, "label_sets": None})
    assert lines[-2].endswith("tau 0.70 [0.60, 0.80]  floor 0.40")
    assert lines[-1].endswith("tau 0.50 [0.40, 0.60]  no floor")


@pytest.mark.parametrize(
    ("group", "shown"),
    [
        (
            "openai-compatible:fake@http://127.0.0.1:5/v1/exact/plain across templates",
            "openai-compatible:fake exact plain across templates",
        ),
        ("local:gemma-3-270m/forced/normal across label_sets", None),
        ("openai-compatible:g@llama-server/generation/q across templates", None),
    ],
)
def test_a_tau_group_is_named_by_model_method_and_what_is_fixed(group, shown):
    """A URL model's own slashes do not cut the group's name short (it read as the bare
    model, so every group of that model looked the same)."""
    from logprob_eval.evalsuite.reporting import summary_lines

    line = summary_lines([], {group: {"mean_kendall_tau": 0.5, "ci": [0.4, 0.6]}})[-1]
    assert line.startswith((shown or group.replace("/", " ")) + " tau 0.50"), line


def test_labels_in_any_script_are_read_scored_and_written_as_spelt(fake_server, tmp_path):
    """Labels in Japanese, Cyrillic (one spelt in two cases: one label, as first seen) and
    Arabic, written by pandas, go through the CLI's score and come out spelt as in the file."""
    rows = [
        ("返金してください。", ["返金"]),
        ("Ошибка при входе.", ["Ошибка"]),
        ("Двойной платёж и возврат.", ["ошибка", "返金"]),
        ("الفاتورة خاطئة", ["فاتورة"]),
    ]
    data = write_tickets(tmp_path / "t.csv", rows)
    assert load_dataset(data, text_column="message").label_names == ("返金", "Ошибка", "فاتورة")
    out = tmp_path / "s.csv"
    argv = ["score", "--model", f"openai-compatible:fake@{fake_server}", "--data", str(data)]
    assert main([*argv, "--text-column", "message", "--out", str(out), "--no-progress"]) == 0
    df = pd.read_csv(out, dtype={"example_id": str})
    assert set(df["label"]) == {"返金", "Ошибка", "فاتورة"}
    truth = df[df["is_true"]].groupby("example_id")["label"].apply(sorted).to_dict()
    assert truth == {"0": ["返金"], "1": ["Ошибка"], "2": ["Ошибка", "返金"], "3": ["فاتورة"]}
