"""Datasets as users have them: the notebook's pandas-written file, every accepted label-cell
format, the label-column rule (including its ambiguous cases) and every file format."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from logprob_eval.data.dataset_files import LABEL_COLUMN_NAMES, find_labels_column, parse_label_cell
from logprob_eval.data.datasets import Dataset, load_dataset
from logprob_eval.data.prompts import TOPICS as STUDY_TOPICS
from logprob_eval.errors import DatasetError

TEXTS = ["A goal in extra time.", 'Votes, "ballots" and a vaccine', "Old ruins near the lab"]
TOPICS = [["Sports"], ["Politics", "Health"], ["History", "Science"]]


def notebook_csv(path, *, index=True):
    """The notebook's file: pandas writes the list column as Python literals."""
    pd.DataFrame({"text": TEXTS, "topics": TOPICS}).to_csv(path, index=index)
    return path


@pytest.mark.parametrize("index", [True, False], ids=["with-index", "index-false"])
def test_the_notebooks_file_loads_unchanged(tmp_path, index):
    path = notebook_csv(tmp_path / "synthetic_dataset.csv", index=index)
    assert "['Politics', 'Health']" in path.read_text()  # really the pandas spelling
    ds = load_dataset(path)
    assert [ex.text for ex in ds] == TEXTS
    assert [list(ex.labels) for ex in ds] == TOPICS
    assert ds.labels_from == "column 'topics' (a label column name)"


@pytest.mark.parametrize(
    ("cell", "labels"),
    [
        ('["Art", "Food"]', ["Art", "Food"]),  # JSON
        ("['Art', 'Food']", ["Art", "Food"]),  # Python literal, as pandas writes a list
        ("('Art', 'Food')", ["Art", "Food"]),  # Python tuple literal
        ("['Art', \"Food's\"]", ["Art", "Food's"]),  # mixed quotes: only a literal reads it
        ("Art;Food", ["Art", "Food"]),
        ("Art | Food", ["Art", "Food"]),
        ("Art, Food", ["Art", "Food"]),
        ("Art", ["Art"]),
        (["Art", " Food "], ["Art", "Food"]),  # a real list (JSONL, Parquet)
        (None, []),
    ],
)
def test_each_label_cell_format(cell, labels):
    assert parse_label_cell(cell) == labels


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("['Art', ", "neither JSON nor a Python literal"),
        ("[Art, Food]", "neither JSON nor a Python literal"),
        ("['Art', 3]", "must be a list of strings"),
        ("[{'a': 1}]", "must be a list of strings"),
        ("('Art')", "must be a list of strings"),  # a parenthesised string, not a tuple
        (3, "got int"),
    ],
)
def test_unreadable_cells_say_why(cell, reason):
    out = parse_label_cell(cell)
    assert isinstance(out, str) and reason in out


def test_a_literal_cell_never_runs_code(tmp_path):
    marker = tmp_path / "ran"
    cell = f"[__import__('pathlib').Path({str(marker)!r}).touch()]"
    assert "neither JSON nor a Python literal" in parse_label_cell(cell)
    assert not marker.exists()


def test_python_literal_cells_are_validated_like_any_other(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,topics\nx,\"['Art', 'Cooking']\"\ny,\"['art']\"\n", encoding="utf-8")
    with pytest.raises(DatasetError) as ei:
        load_dataset(p, label_names=STUDY_TOPICS)
    msg = str(ei.value)
    assert "row 1, column 'topics': has label 'Cooking', which is not among the declared" in msg
    assert "(Technology, Sports, Politics, Art" in msg
    assert "row 2" not in msg  # 'art' is Art, case-insensitively


@pytest.mark.parametrize("name", LABEL_COLUMN_NAMES)
def test_every_documented_label_column_name_is_found(name):
    col, why = find_labels_column(
        ["id", "text", name.upper()], text_column="text", id_column="id", src="s"
    )
    assert col == name.upper()
    assert "label column name" in why


def test_the_only_other_column_is_the_labels():
    col, why = find_labels_column(
        ["", "id", "text", "tags"], text_column="text", id_column="id", src="s"
    )
    assert col == "tags"
    assert why == "column 'tags' (the only column besides the text)"
    col, _ = find_labels_column(
        ["Unnamed: 0", "text", "y"], text_column="text", id_column="id", src="s"
    )
    assert col == "y"


def test_several_label_columns_are_ambiguous_and_listed(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,topics,label\nx,Art,Food\n", encoding="utf-8")
    with pytest.raises(
        DatasetError,
        match=r"several columns could hold the labels: "
        r"'topics', 'label'.*--labels-column",
    ):
        load_dataset(p)
    assert load_dataset(p, labels_column="label")[0].labels == ("Food",)


def test_several_unnamed_candidates_are_ambiguous_and_listed(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,tags,source\nx,Art,web\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"several could hold the labels: 'tags', 'source'"):
        load_dataset(p)
    ds = load_dataset(p, labels_column="tags")
    assert ds[0].labels == ("Art",)
    assert ds.labels_from == "column 'tags' (as given)"


def test_no_candidate_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("id,text\n1,x\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"has no label column \(columns: id, text\)"):
        load_dataset(p)


def test_custom_text_and_id_columns(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("key\tsentence\tcategory\nk1\tx\tart|food\nk2\ty\tTravel\n", encoding="utf-8")
    ds = load_dataset(p, text_column="sentence", id_column="key", label_names=STUDY_TOPICS)
    assert [(ex.id, ex.text, ex.labels) for ex in ds] == [
        ("k1", "x", ("Art", "Food")),  # declared labels: matched case-insensitively
        ("k2", "y", ("Travel",)),
    ]


def test_pandas_unnamed_index_column_gives_the_ids(tmp_path):
    """DataFrame.to_csv writes its index as a first column with an empty header: the ids
    are that index (here not 0..n-1, as after filtering rows), not 1-based row numbers."""
    df = pd.DataFrame({"text": TEXTS, "topics": TOPICS}, index=[10, 11, 14])
    path = tmp_path / "d.csv"
    df.to_csv(path)
    assert path.read_text().startswith(",text,topics\n")  # the header pandas writes
    assert [ex.id for ex in load_dataset(path)] == ["10", "11", "14"]
    again = tmp_path / "again.csv"  # read by pandas and written again: 'Unnamed: 0'
    pd.read_csv(path).to_csv(again, index=False)
    assert again.read_text().startswith("Unnamed: 0,text,topics\n")
    assert [ex.id for ex in load_dataset(again)] == ["10", "11", "14"]
    named = tmp_path / "named.csv"  # a named id column wins over the index
    df.assign(id=["a", "b", "c"]).to_csv(named)
    assert [ex.id for ex in load_dataset(named)] == ["a", "b", "c"]
    plain = tmp_path / "plain.csv"  # no index, no id: row numbers, as before
    df.to_csv(plain, index=False)
    assert [ex.id for ex in load_dataset(plain)] == ["1", "2", "3"]


def test_an_id_column_named_but_missing_is_an_error_not_row_numbers(tmp_path):
    """A misspelt --id-column must not fall back to the index or the row numbers in
    silence (the baselines and flips would then pin other ids); "id", the default, may be
    absent, as in every file without ids."""
    path = tmp_path / "d.csv"
    pd.DataFrame({"text": TEXTS, "topics": TOPICS, "ticket": ["x", "y", "z"]}).to_csv(path)
    with pytest.raises(DatasetError, match=r"no column 'ticket_id'.*--id-column"):
        load_dataset(path, labels_column="topics", id_column="ticket_id")
    assert [ex.id for ex in load_dataset(path, labels_column="topics", id_column="ticket")] == [
        "x",
        "y",
        "z",
    ]
    assert [ex.id for ex in load_dataset(path, labels_column="topics", id_column="id")] == [
        "0",
        "1",
        "2",
    ]


def frame():
    return pd.DataFrame({"id": ["a", "b", "c"], "text": TEXTS, "topics": TOPICS})


def write_csv(df, p):
    df.to_csv(p, index=False)


def write_tsv(df, p):
    df.assign(topics=[";".join(t) for t in TOPICS]).to_csv(p, sep="\t", index=False)


def write_jsonl(df, p):
    p.write_text("\n".join(json.dumps(r) for r in df.to_dict("records")), encoding="utf-8")


def write_parquet(df, p):
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (in the dev extra)")
    df.to_parquet(p)


@pytest.mark.parametrize(
    ("suffix", "writer"),
    [
        (".csv", write_csv),
        (".tsv", write_tsv),
        (".jsonl", write_jsonl),
        (".parquet", write_parquet),
    ],
)
def test_every_file_format(tmp_path, suffix, writer):
    p = tmp_path / f"d{suffix}"
    writer(frame(), p)
    ds = load_dataset(p)
    assert [ex.id for ex in ds] == ["a", "b", "c"]
    assert [list(ex.labels) for ex in ds] == TOPICS
    assert ds.labels_from.startswith("column 'topics'")


def test_a_file_that_is_not_parquet(tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (in the dev extra)")
    p = tmp_path / "d.parquet"
    p.write_text("text,labels\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        load_dataset(p)


def test_records_use_the_same_rule():
    ds = Dataset.from_records([{"text": "x", "Category": "['Art']"}])
    assert ds[0].labels == ("Art",)
    assert ds.labels_from == "column 'Category' (a label column name)"
