"""The label matrix against the pandas pivot it replaces (a differential test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from logprob_eval.experiments.table import label_matrix


def pivot_reference(df, config, score="logprob", examples=None):
    """The straightforward pandas version (the previous implementation)."""
    part = df[df["config"] == config]
    scores = part.pivot_table(
        index="example_id", columns="label", values=score, aggfunc="first", dropna=False
    )
    truth = part.pivot_table(index="example_id", columns="label", values="is_true", aggfunc="first")
    if examples is not None:
        scores = scores.reindex(examples)
        truth = truth.reindex(examples)
    truth = truth.reindex(columns=scores.columns)
    return (
        list(scores.index),
        list(scores.columns),
        scores.to_numpy(dtype=float),
        truth.fillna(False).to_numpy(dtype=bool),
    )


rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),  # config
        st.sampled_from(["e1", "e2", "e10", "x"]),  # example
        st.sampled_from(["Art", "Food", "Sports"]),  # label
        st.one_of(st.none(), st.floats(-50, 0), st.just(-np.inf)),  # score
        st.booleans(),  # is_true
    ),
    min_size=1,
    max_size=30,
)


@given(
    rows,
    st.one_of(st.none(), st.lists(st.sampled_from(["e1", "e2", "zz"]), max_size=4, unique=True)),
)
def test_label_matrix_equals_the_pandas_pivot(data, examples):
    df = pd.DataFrame(data, columns=["config", "example_id", "label", "logprob", "is_true"])
    df["logprob"] = df["logprob"].astype(float)
    for config in ("a", "b"):
        if not (df["config"] == config).any():
            continue
        got = label_matrix(df, config, examples=examples)
        want = pivot_reference(df, config, examples=examples)
        assert got[0] == want[0]
        assert got[1] == want[1]
        np.testing.assert_array_equal(got[2], want[2])
        np.testing.assert_array_equal(got[3], want[3])
