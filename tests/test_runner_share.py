"""Under xdist, a case one worker scored is read back by the others, never replayed twice;
recording never shares."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pandas as pd
import pytest

from logprob_eval.backends.jobs import ScoreRow
from logprob_eval.evalsuite.cassettes import NoCassetteError
from logprob_eval.evalsuite.config import load_eval_config
from logprob_eval.evalsuite.runner import SuiteRunner
from logprob_eval.experiments.table import to_frame

CONFIG = """
[dataset]
path = "topics"
sample = 4

[[models]]
spec = "openai-compatible:fake@http://127.0.0.1:9/v1"
methods = ["exact"]
"""


@pytest.fixture
def case_and_config(tmp_path):
    (tmp_path / "evals.toml").write_text(CONFIG)
    cfg = load_eval_config(tmp_path / "evals.toml")
    return cfg.cases()[0], cfg


def test_a_shared_case_is_read_back_not_replayed(tmp_path, case_and_config):
    case, cfg = case_and_config
    share = tmp_path / "share"
    share.mkdir()
    row = ScoreRow("t1", "m", "exact", "simple", "normal", "Art", "Art", -1.5, "exact", True)
    frame = to_frame([row])
    (share / f"{case.id}.frame.pickle").write_bytes(pickle.dumps(frame))
    runner = SuiteRunner(
        cfg, cassette_dir=tmp_path / "none", record_mode="none", root=tmp_path, share_dir=share
    )
    # no cassette exists: replaying would have raised
    pd.testing.assert_frame_equal(runner.frame(case), frame)
    assert runner.all_frames() == {}  # the worker that scored it hands it to the report
    alone = SuiteRunner(cfg, cassette_dir=tmp_path / "none", record_mode="none", root=tmp_path)
    with pytest.raises(NoCassetteError):
        alone.frame(case)


def test_an_analysis_is_shared_too(tmp_path, case_and_config):
    case, cfg = case_and_config
    share = tmp_path / "share"
    share.mkdir()
    model, template, label_set = case.model.spec, case.template.name, case.label_set.name
    rows = [
        ScoreRow(
            f"t{i}",
            model,
            "exact",
            template,
            label_set,
            lab,
            lab,
            -float(j + i),
            "exact",
            j == i % 2,
        )
        for i in range(6)
        for j, lab in enumerate(["Art", "Food"])
    ]
    (share / f"{case.id}.frame.pickle").write_bytes(pickle.dumps(to_frame(rows)))
    first = SuiteRunner(
        cfg, cassette_dir=tmp_path, record_mode="none", root=tmp_path, share_dir=share
    )
    computed = first.analysis(case)
    written = json.loads((share / f"{case.id}.analysis.json").read_text())
    assert written == json.loads(json.dumps(computed.as_json()))
    as_json = computed.as_json()  # every field, as a deep copy would give them
    assert as_json["sweep"] == dataclasses.asdict(computed.sweep)
    assert as_json["ranking"] == dataclasses.asdict(computed.ranking)
    second = SuiteRunner(
        cfg, cassette_dir=tmp_path, record_mode="none", root=tmp_path, share_dir=share
    )
    assert second.analysis(case).as_json() == written
    # the case's rows under every score transform are shared too (for the stability pairs):
    # read back, the other worker's pair needs no frame of its own
    assert (share / f"{case.id}.transformed.pickle").is_file()
    third = SuiteRunner(
        cfg, cassette_dir=tmp_path, record_mode="none", root=tmp_path, share_dir=share
    )
    pair = third.pair_agreement(case, case)
    assert pair.agreement.kendall_tau == pytest.approx(1.0)  # a case agrees with itself
    assert case.id not in third._frames


def test_recording_never_shares(tmp_path, case_and_config):
    _, cfg = case_and_config
    runner = SuiteRunner(
        cfg, cassette_dir=tmp_path, record_mode="once", root=tmp_path, share_dir=tmp_path
    )
    assert runner.share_dir is None
