"""The scale work of issue 24: each faster path against the straightforward one it replaces."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from logprob_eval.evalsuite.baselines import recordings_digest
from logprob_eval.evalsuite.cassette_reader import read_interactions
from logprob_eval.experiments import chance, intervals
from logprob_eval.experiments.intervals import (
    average_precision_statistic,
    best_f1_statistic,
    jackknife,
    mean_statistic,
)

ROOT = Path(__file__).resolve().parents[1]
CASSETTE = ROOT / "cassettes" / "local-gemma-3-270m-exact-question-normal.json"


def _data(seed: int, n: int, n_lab: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, n_lab))
    if seed % 2:
        s = s.round(1)  # ties across texts
    s[rng.random((n, n_lab)) < 0.15] = -np.inf  # missing scores
    return s, rng.random((n, n_lab)) < 0.3


def _direct_jackknife(stat, n):
    keep = np.arange(n)
    return np.asarray(stat(np.array([np.delete(keep, i) for i in range(n)])))


@pytest.mark.parametrize("seed", range(12))
def test_leave_one_out_values_equal_the_direct_jackknife(seed):
    n = 3 + 7 * seed
    s, y = _data(seed, n)
    values = np.random.default_rng(seed).random((3, n))
    values[values < 0.2] = np.nan
    for stat in (
        best_f1_statistic(s, y),
        average_precision_statistic(s, y),
        mean_statistic(values[0]),
        mean_statistic(values),  # rows: several config pairs' per-text taus
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = _direct_jackknife(stat, n)
        np.testing.assert_allclose(stat.leave_one_out(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_bca_interval_is_scipys(seed):
    """With the jackknife evaluated as scipy does (a plain callable), the interval is
    scipy.stats.bootstrap's (on the same values rounded to 12 decimals, as this module rounds
    them before BCa's ties) bit for bit; with the fast jackknife within 1e-12."""
    n = 10 + 9 * seed
    s, y = _data(seed, n)
    hits = (np.random.default_rng(seed).random(n) < 0.6).astype(float)
    for stat in (best_f1_statistic(s, y), average_precision_statistic(s, y), mean_statistic(hits)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (np.arange(n),),
                lambda idx, axis=-1, stat=stat: intervals._settled(stat(idx)),
                vectorized=True,
                n_resamples=2000,
                method="BCa",
                rng=np.random.default_rng(seed),
            )
        want = (res.confidence_interval.low, res.confidence_interval.high)
        if not np.isfinite(want).all():
            continue  # degenerate: both fall back to the percentile interval
        plain = intervals._bootstrap(lambda idx, stat=stat: stat(idx), n, 0.95, 2000, seed)
        assert plain[:2] == want
        fast = intervals._bootstrap(stat, n, 0.95, 2000, seed)
        assert fast[:2] == pytest.approx(want, abs=1e-12)


def test_resamples_drawn_in_batches_are_one_draw(monkeypatch):
    one = np.random.default_rng(3).integers(0, 37, (2000, 37))
    monkeypatch.setattr(intervals, "CHUNK", 37 * 7)  # 7 rows per batch
    batches = list(intervals._draws(37, 2000, 3))
    assert len(batches) > 1
    assert np.array_equal(np.concatenate(batches), one)


def test_jackknife_of_a_plain_callable_is_evaluated_directly():
    v = np.arange(10.0)
    assert jackknife(lambda idx: v[idx].mean(axis=-1), 10).tolist() == [
        (45 - i) / 9 for i in range(10)
    ]


def test_chance_simulation_in_batches_is_the_one_shot_simulation(monkeypatch):
    y = np.random.default_rng(0).random((40, 6)) < 0.3
    y[:, 0] |= ~y.any(axis=1)
    whole = chance.chance_distribution(y, n_sim=200)
    monkeypatch.setattr(chance, "CHUNK", 40 * 6 * 3)  # 3 scorers at a time
    for name, values in chance.chance_distribution(y, n_sim=200).items():
        assert np.array_equal(values, whole[name]), name


@pytest.mark.parametrize("chunk", [1, 64, 4096, 1 << 20])
def test_read_interactions_equals_json_load(chunk):
    with CASSETTE.open() as fh:
        got = list(read_interactions(fh, chunk=chunk))
    assert got == json.loads(CASSETTE.read_text())["interactions"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t[: len(t) // 2],  # truncated
        lambda t: "<<<<<<< HEAD\n" + t,  # a merge marker
        lambda t: t[:5000] + "}" + t[5000:],
        lambda t: t[: t.index('"', 7000)] + t[t.index('"', 7000) + 1 :],  # a quote lost
        lambda t: t + "\n}",  # extra data
    ],
)
def test_damage_is_reported_as_json_load_reports_it(damage):
    text = damage(CASSETTE.read_text())
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    for chunk in (50, 1 << 20):
        with pytest.raises(json.JSONDecodeError) as got:
            list(read_interactions(io.StringIO(text), chunk=chunk))
        assert (got.value.msg, got.value.lineno, got.value.colno) == (
            want.value.msg,
            want.value.lineno,
            want.value.colno,
        )


def test_a_json_document_without_interactions_is_no_cassette():
    with pytest.raises(KeyError):
        list(read_interactions(io.StringIO('{"version": 1}')))


def test_streamed_recordings_digest_is_the_whole_file_digest():
    h = hashlib.sha256()
    h.update(CASSETTE.name.encode())
    data = json.loads(CASSETTE.read_text())
    h.update(json.dumps(data["interactions"], sort_keys=True).encode())
    assert recordings_digest([CASSETTE]) == f"sha256:{h.hexdigest()}"
