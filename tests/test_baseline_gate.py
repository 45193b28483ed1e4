"""The baseline gate (evalsuite.baselines, checks.check_baseline) on synthetic paired data:
same recordings pin every number both ways; new recordings fail only on a significant drop
larger than min_effect; a missing or outdated baseline fails with the command to fix it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from logprob_eval.evalsuite.baselines import Baseline, gate, load_baseline, recordings_digest
from logprob_eval.evalsuite.checks import CheckFailed, check_baseline

LABELS = [f"L{j}" for j in range(10)]
N = 60


def run(
    auc: np.ndarray,
    *,
    digest: str = "sha256:aaa",
    top1: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> Baseline:
    """A case's outcomes made up directly: per-text AUCs (and top-1 hits), fixed scores."""
    rng = np.random.default_rng(0)
    sc = rng.normal(size=(N, 10)) if scores is None else scores
    truth = np.zeros((N, 10), dtype=bool)
    truth[np.arange(N), np.arange(N) % 10] = True
    hits = (np.arange(N) % 2 == 0).astype(float) if top1 is None else top1
    per_text = {
        f"t{i:03d}": {
            "best_true_rank": 1.0 if hits[i] else 2.0,
            "top1": float(hits[i]),
            "topk": 1.0,
            "rr": 1.0 if hits[i] else 0.5,
            "auc": float(auc[i]),
            "top_label": LABELS[i % 10] if hits[i] else "L9",
            "true": [LABELS[i % 10]],
            "scores": [float(x) for x in sc[i]],
        }
        for i in range(N)
    }
    metrics = {
        "top1_acc": float(hits.mean()),
        "topk_acc": 1.0,
        "mrr": float(np.where(hits > 0, 1.0, 0.5).mean()),
        "auc": float(auc.mean()),
    }
    return Baseline("case-x", digest, 3, metrics, LABELS, per_text)


def base_auc() -> np.ndarray:
    return np.random.default_rng(1).uniform(0.6, 1.0, N)


def test_identical_runs_pass_with_either_digest():
    a = run(base_auc())
    assert gate(run(base_auc()), a).passed
    same_data = gate(run(base_auc(), digest="sha256:new"), a)
    assert same_data.passed and same_data.mode == "new recordings"
    assert same_data.comparisons["auc"].result.diff == 0.0


def test_uniform_shift_of_a_tenth_in_auc_fails_on_new_recordings():
    a = run(base_auc())
    noise = np.random.default_rng(2).normal(0, 0.05, N)
    worse = gate(run(base_auc() - 0.1 + noise, digest="sha256:new"), a)
    assert not worse.passed
    assert any(f.startswith("  auc:") for f in worse.failures)
    c = worse.comparisons["auc"]
    assert c.result.diff == pytest.approx(-0.1 + noise.mean())
    assert c.result.high < 0 and c.result.p_value < 0.05
    exact_shift = gate(run(base_auc() - 0.1, digest="sha256:new"), a)  # no noise at all
    assert not exact_shift.passed


def test_shift_within_noise_passes_and_is_reported_with_its_interval():
    a = run(base_auc())
    noise = np.random.default_rng(3).normal(0, 0.1, N)
    noisy = gate(run(base_auc() - 0.01 + noise, digest="sha256:new"), a)
    assert noisy.passed
    c = noisy.comparisons["auc"]
    assert c.result.low < 0 < c.result.high and not c.regression
    assert any("auc:" in line and "[" in line for line in noisy.lines)


def test_significant_drop_smaller_than_min_effect_passes_larger_fails():
    a = run(base_auc())
    small = gate(run(base_auc() - 0.015, digest="sha256:new"), a, min_effect=0.02)
    assert small.comparisons["auc"].result.high < 0 and small.passed
    assert not gate(run(base_auc() - 0.025, digest="sha256:new"), a, min_effect=0.02).passed


def _zero_mean_noise(seed: int, sd: float) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sd, N)
    return noise - noise.mean()  # the mean difference is exactly the shift


def test_drop_larger_than_min_effect_whose_interval_reaches_zero_passes():
    """The other side of the rule: AUC drops by 0.04 (twice min_effect) on average, but the
    texts disagree so much that the interval reaches above zero: not significant, passes.
    A gate that read the interval's low end (below zero here) would fail this case."""
    a = run(base_auc())
    res = gate(run(base_auc() - 0.04 + _zero_mean_noise(7, 0.25), digest="sha256:new"), a)
    c = res.comparisons["auc"]
    assert c.result.diff == pytest.approx(-0.04)
    assert c.result.low < 0 < c.result.high and c.result.p_value >= 0.05
    assert not c.regression and res.passed


def test_significant_drop_larger_than_min_effect_fails_with_agreeing_numbers():
    a = run(base_auc())
    res = gate(run(base_auc() - 0.04 + _zero_mean_noise(7, 0.05), digest="sha256:new"), a)
    c = res.comparisons["auc"]
    assert c.result.diff == pytest.approx(-0.04)
    assert c.result.high < 0 and c.result.p_value < 0.05 and c.regression
    assert [f.split(":")[0] for f in res.failures] == ["  auc"]


def _low_end_rule(result, *, min_effect):
    """A plausible bug: the gate reads the interval's low end instead of its high end."""
    return result.diff < -min_effect and result.low < 0


def test_a_gate_reading_the_low_end_of_the_interval_is_caught(monkeypatch):
    """Under the buggy rule the case above (a large drop within noise) fails, and a move
    within noise that is smaller than min_effect still passes: only a test with a drop
    larger than min_effect whose interval reaches zero tells the two rules apart."""
    from logprob_eval.experiments import paired

    a = run(base_auc())
    crossing = run(base_auc() - 0.04 + _zero_mean_noise(7, 0.25), digest="sha256:new")
    small = run(base_auc() - 0.01 + _zero_mean_noise(3, 0.1), digest="sha256:new")
    assert gate(crossing, a).passed and gate(small, a).passed  # the real rule
    monkeypatch.setattr(paired, "is_regression", _low_end_rule)
    assert not gate(crossing, a).passed  # the bug shows on the crossing case ...
    assert gate(small, a).passed  # ... and only there


@pytest.mark.parametrize("shift", [0.0, -0.01, -0.03, -0.04, -0.06, -0.1])
@pytest.mark.parametrize("sd", [0.05, 0.15, 0.3])
def test_gate_lines_show_the_interval_and_p_value_of_one_test(shift, sd):
    """Each metric's line shows the interval and the p-value of the same test; the
    interval excludes zero exactly when p < alpha (never "[-0.109, -0.005] p=0.064")."""
    hits = (np.arange(N) % 2 == 0).astype(float)
    now_hits = hits.copy()
    now_hits[np.nonzero(hits)[0][: int(-shift * 100)]] = 0  # top-1 loses up to 10 texts
    a = run(base_auc(), top1=hits)
    now = run(base_auc() + shift + _zero_mean_noise(11, sd), top1=now_hits, digest="sha256:n")
    res = gate(now, a, alpha=0.05)
    assert len(res.lines) == len(res.comparisons) == 4
    for line, (metric, c) in zip(res.lines, res.comparisons.items(), strict=True):
        r = c.result
        test = "McNemar exact" if metric == "top1_acc" else "paired bootstrap"
        assert r.test == test
        assert f"[{r.low:+.3f}, {r.high:+.3f}] (95% {test}, p={r.p_value:.3g}" in line
        assert (r.high < 0 or r.low > 0) == (r.p_value < 0.05), line
        assert c.regression == (r.diff < -0.02 and r.high < 0)


def test_improvement_passes():
    a = run(base_auc())
    assert gate(run(base_auc() + 0.1, digest="sha256:new"), a).passed


def test_top1_drop_is_judged_by_mcnemar():
    hits = (np.arange(N) % 2 == 0).astype(float)
    a = run(base_auc(), top1=hits)
    lost10 = hits.copy()
    lost10[np.nonzero(hits)[0][:10]] = 0  # 10 texts lost, none gained
    res = gate(run(base_auc(), top1=lost10, digest="sha256:new"), a)
    c = res.comparisons["top1_acc"]
    assert c.mcnemar == (10, 0, pytest.approx(2 * 0.5**10)) and c.regression
    assert not res.passed and "McNemar" in res.failures[0]
    mixed = hits.copy()
    mixed[np.nonzero(hits)[0][:3]] = 0
    mixed[np.nonzero(1 - hits)[0][:1]] = 1  # 3 lost, 1 gained: -0.033, not significant
    res = gate(run(base_auc(), top1=mixed, digest="sha256:new"), a)
    r = res.comparisons["top1_acc"].result
    assert r.diff == pytest.approx(-2 / N) and r.diff < -0.02  # larger than min_effect
    assert r.low < 0 < r.high and r.p_value == pytest.approx(0.625)  # binomtest(1, 4)
    assert res.passed


@pytest.mark.parametrize("delta", [0.001, -0.001])
def test_code_change_with_the_same_recordings_fails_in_either_direction(delta):
    a = run(base_auc())
    changed = base_auc()
    changed[5] += delta * N  # the mean moves by delta
    res = gate(run(changed), a)
    assert res.mode == "same recordings" and not res.passed
    assert "auc:" in res.failures[0] and f"{delta:+.6f}" in res.failures[0]


def test_same_recordings_pin_per_text_outcomes_even_when_metrics_stay():
    a = run(base_auc())
    scores = np.random.default_rng(0).normal(size=(N, 10))
    scores[[3, 4]] = scores[[4, 3]]  # two texts' scores swapped: no metric here moves
    res = gate(run(base_auc(), scores=scores), a)
    assert not res.passed and "per-text outcomes differ on 2 text(s)" in res.failures[-1]


def test_texts_in_one_run_only_are_listed():
    a = run(base_auc())
    b = run(base_auc(), digest="sha256:new")
    b.per_text["t999"] = b.per_text.pop("t000")
    res = gate(b, a)
    assert res.only_baseline == ["t000"] and res.only_now == ["t999"]


def test_check_baseline_writes_reads_and_fails_without_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "support" / "baselines" / "case-x.json"  # the suite is its grandparent
    with pytest.raises(
        AssertionError,
        match=r"no baseline case-x.json; create it with "
        r"`pytest support -k case-x --update-baselines`",
    ):
        check_baseline(run(base_auc()), path, alpha=0.05, min_effect=0.02, update=False)
    assert check_baseline(run(base_auc()), path, alpha=0.05, min_effect=0.02, update=True) is None
    loaded = load_baseline(path)
    assert loaded.metrics["auc"] == pytest.approx(base_auc().mean())
    ok = check_baseline(run(base_auc()), path, alpha=0.05, min_effect=0.02, update=False)
    assert ok is not None and ok.passed
    changed = base_auc()
    changed[0] -= 0.3
    with pytest.raises(AssertionError, match=r"(?s)same recordings.*--update-baselines"):
        check_baseline(run(changed), path, alpha=0.05, min_effect=0.02, update=False)
    path.unlink()  # a deleted baseline fails again
    with pytest.raises(AssertionError, match="no baseline"):
        check_baseline(run(base_auc()), path, alpha=0.05, min_effect=0.02, update=False)


def test_old_format_baseline_fails_with_the_rebuild_command(tmp_path):
    path = tmp_path / "case-x.json"
    path.write_text(json.dumps({"auc": 0.8, "mrr": 0.6}))
    with pytest.raises(AssertionError, match=r"(?s)older format.*--update-baselines"):
        check_baseline(run(base_auc()), path, alpha=0.05, min_effect=0.02, update=False)


def test_infinite_scores_survive_the_round_trip(tmp_path):
    scores = np.random.default_rng(0).normal(size=(N, 10))
    scores[0, 0] = -np.inf
    path = tmp_path / "case-x.json"
    check_baseline(run(base_auc(), scores=scores), path, alpha=0.05, min_effect=0.02, update=True)
    again = check_baseline(
        run(base_auc(), scores=scores), path, alpha=0.05, min_effect=0.02, update=False
    )
    assert again is not None and again.passed
    assert load_baseline(path).outcomes().scores[0, 0] == -np.inf


def test_recordings_digest_ignores_formatting_not_content(tmp_path):
    a, b = tmp_path / "a" / "c.json", tmp_path / "b" / "c.json"
    a.parent.mkdir()
    b.parent.mkdir()
    body = {"interactions": [{"request": {"body": {"json": {"x": 1}}}, "response": {"y": 2}}]}
    a.write_text(json.dumps(body))
    b.write_text(json.dumps(body, indent=3))
    assert recordings_digest([a]) == recordings_digest([b]) is not None
    body["interactions"][0]["response"]["y"] = 3
    b.write_text(json.dumps(body))
    assert recordings_digest([a]) != recordings_digest([b])
    assert recordings_digest([tmp_path / "none.json"]) is None


def test_gate_failures_reach_the_report_with_metric_value_and_bound(tmp_path):
    """check_baseline raises CheckFailed: the report's verdict table shows each failing
    metric with this run's value and the baseline's (same recordings and new ones)."""
    path = tmp_path / "case-x.json"
    with pytest.raises(CheckFailed) as missing:
        check_baseline(run(base_auc()), path, alpha=0.05, min_effect=0.02, update=False)
    assert missing.value.failures == [
        {"metric": "baseline", "value": None, "bound": None, "kind": "baseline"}
    ]
    check_baseline(run(base_auc()), path, alpha=0.05, min_effect=0.02, update=True)
    changed = base_auc()
    changed[0] += 0.3  # same recordings, higher: a code change
    with pytest.raises(CheckFailed) as pinned:
        check_baseline(run(changed), path, alpha=0.05, min_effect=0.02, update=False)
    by_metric = {f["metric"]: f for f in pinned.value.failures}
    assert by_metric["auc"]["value"] == pytest.approx(changed.mean())
    assert by_metric["auc"]["bound"] == pytest.approx(base_auc().mean())
    assert by_metric["auc"]["kind"] == "baseline"
    assert "per-text outcomes" in by_metric and set(by_metric) == {"auc", "per-text outcomes"}
    with pytest.raises(CheckFailed) as dropped:  # new recordings, a drop of 0.1
        check_baseline(
            run(base_auc() - 0.1, digest="sha256:bbb"),
            path,
            alpha=0.05,
            min_effect=0.02,
            update=False,
        )
    auc = next(f for f in dropped.value.failures if f["metric"] == "auc")
    assert auc["value"] == pytest.approx(base_auc().mean() - 0.1)
    assert auc["bound"] == pytest.approx(base_auc().mean())


def test_report_lists_the_texts_that_flipped_against_the_baseline(tmp_path):
    from logprob_eval.evalsuite.baselines import write_baseline
    from logprob_eval.evalsuite.reporting import baseline_flips

    write_baseline(tmp_path / "case-x.json", run(base_auc()))
    scores = np.random.default_rng(0).normal(size=(N, 10))
    scores[3] = -scores[3]  # text t003's ranking reversed: its top label changes
    now = run(base_auc(), scores=scores)
    ranking = {"cfg": {"labels": now.labels, "per_text": now.per_text, "k": 3}}
    texts = {"t003": "Refund please: the parcel came broken and " + "very " * 20 + "late"}
    flips = baseline_flips(ranking, {"case-x": "cfg", "case-y": "other"}, tmp_path, texts)
    assert flips is not None and [f["example_id"] for f in flips] == ["t003"]
    f = flips[0]
    assert f["case"] == "case-x" and f["against"] == "baseline"
    assert f["text"] == "Refund please: the parcel came broken and very very very…"
    assert f["why"].startswith("top label ")
    top_before = LABELS[int(np.argmax(-scores[3]))]
    top_after = LABELS[int(np.argmax(scores[3]))]
    assert f["before"].startswith(top_before) and f["after"].startswith(top_after)
    assert baseline_flips(ranking, {"case-y": "cfg"}, tmp_path) is None  # no baseline: None


def test_the_report_shows_every_gate_with_the_rule_that_decided_it():
    """The report's "Against the baseline" table words each metric as the gate ruled it,
    passed or failed, from the comparison the suite test kept (GateResult.as_dict)."""
    import re

    from logprob_eval.reporting.report_html import _gate_section

    a = run(base_auc())
    results = {
        "drop": gate(run(base_auc() - 0.04 + _zero_mean_noise(7, 0.05), digest="n"), a),
        "small": gate(run(base_auc() - 0.015, digest="n"), a, min_effect=0.02),
        "noisy": gate(run(base_auc() - 0.04 + _zero_mean_noise(7, 0.25), digest="n"), a),
        "gain": gate(run(base_auc() + 0.05, digest="n"), a),
        "pinned": gate(a, a),
        "changed": gate(run(base_auc() + 1e-6), a),
    }
    outcomes = [
        {"case": c, "gate": json.loads(json.dumps(r.as_dict()))} for c, r in results.items()
    ]
    html = _gate_section(outcomes)

    def auc_row(case: str) -> str:
        row = re.search(rf"<tr><td[^>]*>{case}</td><td[^>]*>(auc|all)</td>.*?</tr>", html)
        assert row, case
        return row.group(0)

    assert "drop larger than 0.02: fails" in auc_row("drop")
    assert "significant drop, within 0.02" in auc_row("small")
    assert "within noise" in auc_row("noisy")  # a drop of 0.04 whose interval reaches zero
    assert "significant gain" in auc_row("gain")
    assert "every number as pinned" in auc_row("pinned")
    assert "changed: fails" in auc_row("changed")
    c = results["noisy"].comparisons["auc"].result
    assert f"{c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}] paired bootstrap, p={c.p_value:.3g}" in (
        auc_row("noisy")
    )
    # no gate: the section says so (the report's top links to it)
    assert "No case was compared" in _gate_section([{"case": "x", "outcome": "passed"}])


def test_the_terminal_says_in_one_line_how_the_baselines_were_compared():
    """Pinned and new-recording gates counted apart; with no failure, the drop with the
    smallest p is shown with its interval (a passing gate's numbers are not only in the
    report); with failures, their count (the failures themselves say how)."""
    from logprob_eval.evalsuite.outcomes import gate_line

    a = run(base_auc())
    noisy = gate(run(base_auc() - 0.04 + _zero_mean_noise(7, 0.25), digest="n"), a)
    small = gate(run(base_auc() - 0.005 + _zero_mean_noise(3, 0.25), digest="n"), a)
    drop = gate(run(base_auc() - 0.04 + _zero_mean_noise(7, 0.05), digest="n"), a)

    def line(**results):
        return gate_line([{"case": c, "gate": r.as_dict()} for c, r in results.items()])

    assert gate_line([{"case": "x", "outcome": "passed"}]) == ""
    assert line(p=gate(a, a), q=gate(a, a)) == (
        "baselines: 2 on the same recordings, every number as pinned (report.html#gate)"
    )
    assert "1 on the same recordings, 1 changed" in line(p=gate(run(base_auc() + 1e-6), a))
    c = noisy.comparisons["auc"].result
    assert small.comparisons["auc"].result.p_value > c.p_value  # the noisy drop is closer
    assert line(pinned=gate(a, a), noisy=noisy, small=small) == (
        "baselines: 1 on the same recordings, every number as pinned; 2 on new recordings, "
        f"0 failed; closest: auc {c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}] "
        f"p={c.p_value:.3g} in noisy (report.html#gate)"
    )
    assert line(drop=drop, noisy=noisy) == (
        "baselines: 2 on new recordings, 1 failed (report.html#gate)"
    )
