from __future__ import annotations

import math

import numpy as np
import pytest

from logprob_eval.errors import UnknownNameError
from logprob_eval.experiments import apply_transforms, split_content_free
from logprob_eval.experiments.table import to_frame
from logprob_eval.experiments.transforms import CONTENT_FREE_PREFIX

from .test_metrics import frame


def _df():
    real = {
        "e1": {"A": (-1.0, True), "B": (-2.0, False), "C": (-4.0, False)},
        "e2": {"A": (-3.0, False), "B": (-0.5, True), "C": (-2.5, False)},
    }
    cf = {
        f"{CONTENT_FREE_PREFIX}{t}": {"A": (-0.5, False), "B": (-2.0, False), "C": (-3.0, False)}
        for t in ("N/A", "")
    }
    return to_frame(frame(real) + frame(cf))


def test_renorm_sums_to_one():
    real, _ = split_content_free(_df())
    out, _ = apply_transforms(real, ["renorm"])
    sums = np.exp(out["score_renorm"]).groupby(out["example_id"]).sum()
    assert sums.to_numpy() == pytest.approx([1.0, 1.0])


def test_contextual_calibration_divides_out_the_content_free_prior():
    real, cf = split_content_free(_df())
    out, notes = apply_transforms(real, ["renorm", "contextual"], cf)
    assert not notes
    p = np.exp(np.array([-0.5, -2.0, -3.0]))
    p_cf = p / p.sum()
    e1 = out[out["example_id"] == "e1"].sort_values("label")
    q = np.exp(e1["score_renorm"].to_numpy()) / p_cf
    assert np.exp(e1["score_contextual"].to_numpy()) == pytest.approx(q / q.sum())
    # the prior favoured A: calibration moves mass away from A
    assert e1["score_contextual"].iloc[0] < e1["score_renorm"].iloc[0]


def test_pmi_subtracts_the_domain_premise():
    real, cf = split_content_free(_df())
    out, _ = apply_transforms(real, ["pmi"], cf)
    e2 = out[out["example_id"] == "e2"].sort_values("label")
    assert e2["score_pmi"].to_numpy() == pytest.approx([-3.0 + 0.5, -0.5 + 2.0, -2.5 + 3.0])


def test_length_normalisation_uses_token_counts():
    df = _df()
    df["n_tokens"] = 2
    out, _ = apply_transforms(df, ["length"])
    assert out["score_length"].iloc[0] == pytest.approx(-0.5)


def test_missing_content_free_rows_give_nan_with_a_note():
    real, _ = split_content_free(_df())
    out, notes = apply_transforms(real, ["contextual", "pmi"])
    assert out["score_contextual"].isna().all() and "content-free" in notes["contextual"]
    assert out["score_pmi"].isna().all()


def test_unknown_transform():
    with pytest.raises(UnknownNameError, match="unknown transform 'magic'"):
        apply_transforms(_df(), ["magic"])


def test_error_rows_stay_nan():
    rows = frame({"e": {"A": (math.nan, True), "B": (math.nan, False)}}, status="error")
    out, _ = apply_transforms(to_frame(rows), ["raw", "renorm"])
    assert out["score_raw"].isna().all() and out["score_renorm"].isna().all()
