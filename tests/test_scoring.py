from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import pandas as pd
import pytest

from logprob_eval.backends.base import Backend
from logprob_eval.backends.jobs import RetryPolicy, make_jobs, score_jobs
from logprob_eval.data.datasets import load_dataset
from logprob_eval.data.prompts import LABEL_SETS, TEMPLATES
from logprob_eval.errors import (
    BackendError,
    BackendUnavailableError,
    LogprobsUnsupportedError,
    RateLimitedError,
    ResponseFormatError,
)
from logprob_eval.experiments.table import to_frame
from logprob_eval.scoring.records import LabelScore

FAST = RetryPolicy(attempts=4, base=0.001, cap=0.01)


class ScriptedBackend(Backend):
    """Scores by a script: per prompt, a list of exceptions to raise before succeeding."""

    provider = "scripted"
    methods = ("generation",)

    def __init__(self, failures: dict[str, list[Exception]] | None = None) -> None:
        super().__init__("m", method="generation")
        self.failures = failures or {}
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        with self.lock:
            n = self.calls.get(prompt, 0)
            self.calls[prompt] = n + 1
        script = self.failures.get(prompt, [])
        if n < len(script):
            raise script[n]
        return {lab: LabelScore(lab, -float(i + 1), "exact") for i, lab in enumerate(labels)}


@pytest.fixture
def jobs():
    ds = load_dataset("topics").sample(6, seed=0)
    return make_jobs(ds, [TEMPLATES["simple"], TEMPLATES["json"]], [LABEL_SETS["normal"]])


@pytest.mark.parametrize("concurrency", [1, 3])  # 1 runs in this thread, 3 on a pool
def test_rows_are_tidy_and_in_job_order(jobs, concurrency):
    rows = score_jobs(ScriptedBackend(), jobs, concurrency=concurrency)
    assert len(rows) == len(jobs) * 10
    assert [r.example_id for r in rows[::10]] == [j.example.id for j in jobs]
    first = rows[0]
    assert (first.model, first.method, first.template, first.label_set) == (
        "scripted:m",
        "generation",
        "simple",
        "normal",
    )
    assert first.label == "Technology" and first.phrase == "Technology"
    true = {r.label for r in rows[:10] if r.is_true}
    assert true == set(jobs[0].example.labels)
    assert [r.lower for r in rows[:3]] == [-1.0, -2.0, -3.0]  # exact: lower == logprob


def test_row_as_dict_holds_every_field(jobs):
    import dataclasses

    for row in score_jobs(ScriptedBackend(), jobs[:1], concurrency=1):
        assert row.as_dict() == dataclasses.asdict(row)
        assert list(row.as_dict()) == [f.name for f in dataclasses.fields(row)]


def test_rows_carry_the_lower_end_of_a_bound(jobs, tmp_path):
    class Bounds(ScriptedBackend):
        def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
            return {lab: LabelScore(lab, -1.0, "upper_bound", lower=-1.5) for lab in labels}

    rows = score_jobs(Bounds(), jobs[:1], concurrency=1)
    assert {(r.logprob, r.lower, r.status) for r in rows} == {(-1.0, -1.5, "upper_bound")}
    df = to_frame(rows)
    df.to_csv(tmp_path / "scores.csv", index=False)
    back = pd.read_csv(tmp_path / "scores.csv")
    assert set(back["lower"]) == {-1.5}


def test_transient_failures_are_retried(jobs):
    p0, p1 = jobs[0].prompt, jobs[1].prompt
    backend = ScriptedBackend(
        {
            p0: [RateLimitedError("429", retry_after=0.001), BackendUnavailableError("503")],
            p1: [BackendUnavailableError("timeout")] * 3,
        }
    )
    rows = score_jobs(backend, jobs, concurrency=2, retry=FAST)
    assert all(r.status == "exact" for r in rows)
    assert backend.calls[p0] == 3 and backend.calls[p1] == 4


@pytest.mark.parametrize("concurrency", [1, 2])
def test_permanent_failures_are_recorded_on_their_rows(jobs, concurrency):
    backend = ScriptedBackend(
        {
            jobs[0].prompt: [BackendError("HTTP 400: bad")],
            jobs[1].prompt: [ResponseFormatError("field 'x' is missing")],
            jobs[2].prompt: [BackendUnavailableError("503")] * 10,
        }
    )
    rows = score_jobs(backend, jobs, concurrency=concurrency, retry=FAST)
    by_job = [rows[i : i + 10] for i in range(0, len(rows), 10)]
    assert {r.status for r in by_job[0]} == {"error"} and "HTTP 400" in by_job[0][0].error
    assert "field 'x'" in by_job[1][0].error
    assert "503" in by_job[2][0].error and backend.calls[jobs[2].prompt] == FAST.attempts
    assert all(math.isnan(r.logprob) for r in by_job[0])
    assert all(r.status == "exact" for job in by_job[3:] for r in job)


def test_unsupported_logprobs_stops_the_run_and_keeps_finished_work(jobs):
    backend = ScriptedBackend({jobs[3].prompt: [LogprobsUnsupportedError("no logprobs")]})
    seen: dict[int, list] = {}
    with pytest.raises(LogprobsUnsupportedError):
        score_jobs(backend, jobs, concurrency=1, on_result=lambda i, rows: seen.update({i: rows}))
    assert sorted(seen) == [0, 1, 2]


def test_secrets_never_reach_row_errors(jobs):
    key = "sk-" + "x" * 30
    backend = ScriptedBackend({jobs[0].prompt: [BackendError(f"bad key {key}")]})
    rows = score_jobs(backend, jobs, retry=FAST)
    assert key not in rows[0].error and "[REDACTED]" in rows[0].error


def test_retry_policy_honours_retry_after():
    assert RetryPolicy(cap=5).delay(0, 3.0) == 3.0
    assert RetryPolicy(cap=5).delay(0, 60.0) == 5.0
    assert 0 < RetryPolicy(base=1, cap=5).delay(10, None) <= 5


class KeyedBackend(Backend):
    """Every (prompt, label phrase) gets its own score, so a row can be checked against it."""

    provider = "keyed"
    methods = ("generation",)

    def __init__(self) -> None:
        super().__init__("m", method="generation")
        self.given: dict[tuple[str, str], float] = {}

    def value(self, prompt: str, phrase: str) -> float:
        return -1.0 - (sum(map(ord, prompt)) % 97) / 10.0 - (sum(map(ord, phrase)) % 89) / 1000.0

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        out = {}
        for lab in labels:
            self.given[(prompt, lab)] = self.value(prompt, lab)
            out[lab] = LabelScore(lab, self.given[(prompt, lab)], "exact", variants=(lab,))
        return out


def test_every_row_carries_the_backend_score_of_its_own_text_and_label(jobs):
    backend = KeyedBackend()
    rows = score_jobs(backend, jobs, concurrency=3)
    by_id = {j.example.id: j for j in jobs if j.template.name == "simple"}
    checked = 0
    for r in rows:
        if r.template != "simple":
            continue
        prompt = by_id[r.example_id].prompt
        assert r.logprob == backend.given[(prompt, r.phrase)], (r.example_id, r.label)
        assert r.phrase == LABEL_SETS["normal"].mapping[r.label]
        checked += 1
    assert checked == 6 * 10
    assert len({r.logprob for r in rows}) > len(rows) // 2  # distinct: a swap would show
