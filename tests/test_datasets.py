from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logprob_eval.data.datasets import Dataset, builtin_path, load_dataset
from logprob_eval.data.prompts import TOPICS
from logprob_eval.errors import DatasetError

TOPIC_WORDS = re.compile(
    r"\b(tech\w*|sport\w*|politic\w*|art|arts|artist\w*|artwork\w*|scien\w*|health\w*|"
    r"educat\w*|travel\w*|\w*food\w*|histor\w*)\b",
    re.IGNORECASE,
)


def test_builtin_dataset_is_valid_balanced_and_never_names_a_topic():
    ds = load_dataset("topics")
    assert len(ds) >= 150
    assert all(1 <= len(ex.labels) <= 3 for ex in ds)
    counts = ds.label_counts()
    assert set(counts) == set(TOPICS)
    assert max(counts.values()) <= 1.2 * min(counts.values())
    offenders = [ex.text for ex in ds if TOPIC_WORDS.search(ex.text)]
    assert offenders == []
    sizes = Counter(len(ex.labels) for ex in ds)
    assert sizes[1]
    assert sizes[2]
    assert sizes[3]


def test_builtin_path_points_into_the_package():
    assert builtin_path("topics").name == "topics.csv"
    with pytest.raises(DatasetError, match="no built-in dataset"):
        builtin_path("nope")


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_with_delimited_and_json_labels(tmp_path):
    p = write(
        tmp_path,
        "d.csv",
        'text,labels\nA goal.,Sports\n"Votes, and more",politics; history\n'
        'Paint,"[""Art"", ""Food""]"\n',
    )
    ds = load_dataset(p, label_names=TOPICS)
    assert [ex.labels for ex in ds] == [("Sports",), ("Politics", "History"), ("Art", "Food")]
    own = load_dataset(p)  # no labels declared: the file's own, as it spells them
    assert own.label_names == ("Sports", "politics", "history", "Art", "Food")
    assert [ex.id for ex in ds] == ["1", "2", "3"]


def test_jsonl_with_list_labels(tmp_path):
    p = write(
        tmp_path,
        "d.jsonl",
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "a", "text": "x", "labels": ["Art"]},
                {"id": "b", "text": "y", "labels": "Food|Travel"},
            ]
        ),
    )
    ds = load_dataset(p)
    assert [ex.id for ex in ds] == ["a", "b"]
    assert ds[1].labels == ("Food", "Travel")


def test_every_problem_is_reported_with_row_and_column(tmp_path):
    p = write(tmp_path, "d.csv", "text,labels\n,Art\nfine,Cooking\nfine,Art\nx,\n")
    with pytest.raises(DatasetError) as ei:
        load_dataset(p, label_names=TOPICS)
    msg = str(ei.value)
    assert "4 invalid row(s) of 4" in msg
    assert "row 1, column 'text': is empty" in msg
    assert "row 2, column 'labels': has label 'Cooking', which is not among" in msg
    assert "row 3, column 'text': duplicates row 2" in msg
    assert "row 4, column 'labels': is empty" in msg
    assert ei.value.row == 1
    assert ei.value.column == "text"


def test_wrong_types_in_jsonl(tmp_path):
    p = write(tmp_path, "d.jsonl", '{"text": 5, "labels": ["Art"]}\n{"text": "a", "labels": 3}\n')
    with pytest.raises(
        DatasetError,
        match=r"(?s)row 1, column 'text': must be a string.*"
        r"row 2, column 'labels': must be a list",
    ):
        load_dataset(p)


def test_a_missing_column_names_pandas_index_column_as_such(tmp_path):
    # pandas' to_csv writes its index under an empty header; a list of columns that starts
    # with ", message" reads like a typo, so the index is named
    p = write(tmp_path, "t.csv", ",message,intents\n0,hi,billing\n")
    with pytest.raises(DatasetError, match=r"columns: \(pandas' index\), message, intents\)"):
        load_dataset(p)
    p = write(tmp_path, "u.csv", "Unnamed: 0,message\n0,hi\n")
    with pytest.raises(DatasetError, match=r"columns: Unnamed: 0 \(pandas' index\), message\)"):
        load_dataset(p, text_column="message")


def test_missing_column_file_and_bad_json(tmp_path):
    with pytest.raises(DatasetError, match=r"no column 'txt'.*columns: text, topics.*text-column"):
        load_dataset(write(tmp_path, "a.csv", "text,topics\nx,Art\n"), text_column="txt")
    with pytest.raises(DatasetError, match=r"no column 'labels'.*columns: text, topics"):
        load_dataset(write(tmp_path, "a2.csv", "text,topics\nx,Art\n"), labels_column="labels")
    assert load_dataset(write(tmp_path, "b.csv", "text,topics\nx,Art\n"), labels_column="topics")[
        0
    ].labels == ("Art",)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "none.csv")
    with pytest.raises(DatasetError, match="line 2: invalid JSON"):
        load_dataset(write(tmp_path, "c.jsonl", '{"text": "a", "labels": ["Art"]}\n{oops\n'))
    with pytest.raises(DatasetError, match=r"unsupported extension '\.txt'.*\.parquet"):
        load_dataset(write(tmp_path, "d.txt", "x"))


def test_sampling_and_splits_are_deterministic_by_seed():
    ds = load_dataset("topics")
    a, b = ds.sample(40, seed=3), ds.sample(40, seed=3)
    assert [e.id for e in a] == [e.id for e in b]
    assert [e.id for e in a] != [e.id for e in ds.sample(40, seed=4)]
    dev, test = ds.split(0.5, seed=1)
    assert len(dev) + len(test) == len(ds)
    assert not {e.id for e in dev} & {e.id for e in test}
    assert [e.id for e in dev] == [e.id for e in ds.split(0.5, seed=1)[0]]
    with pytest.raises(DatasetError, match="dev_fraction"):
        ds.split(1.0)


def test_write_csv_round_trips(tmp_path):
    ds = load_dataset("topics").sample(10, seed=0)
    again = load_dataset(ds.write_csv(tmp_path / "out" / "d.csv"))
    assert again.examples == ds.examples


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["text", "labels", "id", "x"]),
            st.none()
            | st.integers()
            | st.text(max_size=12)
            | st.lists(st.text(max_size=8), max_size=3),
        ),
        max_size=6,
    )
)
def test_arbitrary_rows_raise_only_dataset_errors(rows):
    try:
        ds = Dataset.from_records(rows)
    except DatasetError as exc:
        msg = str(exc)
        assert any(w in msg for w in ("row", "no rows", "ids", "column")), msg
    else:
        assert all(ex.text.strip() and ex.labels for ex in ds)
