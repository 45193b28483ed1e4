"""The page's sections rendered from known inputs: each number lands where it belongs."""

from __future__ import annotations

import re

import pandas as pd

from logprob_eval.reporting.report_html import render_report

SUMMARY = {
    "n_texts": 2,
    "configs": {
        "m/exact/a/normal": {
            "top1_acc": 0.5,
            "topk_acc": 1.0,
            "mrr": 0.75,
            "auc": 0.9,
            "coverage": 1.0,
            "notes": [],
            "worst": [{"example_id": "t2", "true": ["Art"]}],
            "ci": {"auc": [0.81, 0.97]},
        },
        "m/exact/b/normal": {
            "top1_acc": 1.0,
            "topk_acc": 1.0,
            "mrr": 1.0,
            "auc": 1.0,
            "coverage": 1.0,
            "notes": [],
            "worst": [],
        },
    },
    "thresholds": {
        "m/exact/a/normal": {
            "best_f1": 0.6,
            "average_precision": 0.7,
            "transfer": {"kept": 0.8},
            "ci": {"best_f1": [0.41, 0.77]},
        }
    },
    "agreement": {
        "template": [
            {
                "a": "m/exact/a/normal",
                "b": "m/exact/b/normal",
                "n_examples": 2,
                "kendall_tau": 0.25,
                "top1_agreement": 0.5,
                "median_shift": 0.1,
                "wasserstein": 0.2,
                "notes": [],
            }
        ]
    },
}
DF = pd.DataFrame(
    {
        "config": ["m/exact/a/normal"] * 4,
        "example_id": ["t1", "t1", "t2", "t2"],
        "label": ["Art", "Food", "Art", "Food"],
        "logprob": [-0.1, -2.0, -3.0, -0.5],
        "status": ["exact"] * 4,
        "is_true": [True, False, True, False],
        "rank": [1.0, 2.0, 2.0, 1.0],
    }
)
OUTCOMES = [
    {
        "case": "case-b",
        "config": "m/exact/b/normal",
        "test": "test_ranking",
        "outcome": "passed",
        "failures": None,
        "message": "",
    },
    {
        "case": "case-a",
        "config": "m/exact/a/normal",
        "test": "test_ranking",
        "outcome": "failed",
        "message": "case case-a: auc below",
        "failures": [{"metric": "auc", "value": 0.9, "bound": 0.95, "kind": "floor"}],
    },
    {
        "case": "case-c",
        "config": None,
        "test": "test_rank_agreement_across_templates",
        "outcome": "failed",
        "failures": None,
        "message": "mean Kendall tau 0.1 < 0.4\nmore",
    },
]


def page(**kw):
    args = {"df": DF, "outcomes": OUTCOMES, "texts": {"t2": "Old paintings."}, **kw}
    return render_report("t", SUMMARY, [], **args)


def test_verdicts_first_failing_first_with_value_interval_and_floor():
    html = page()
    assert html.index("id='verdict'") < html.index("id='heatmap'") < html.index("id='worst'")
    rows = re.findall(r"<tr id='case-([^']+)'>", html)
    assert rows == ["case-a", "case-c", "case-b"]  # failing first, then by id
    row_a = html[html.index("<tr id='case-case-a'>") : html.index("<tr id='case-case-c'>")]
    assert "FAIL" in row_a and "<td>auc</td>" in row_a
    assert "<td>0.900 [0.810, 0.970]</td>" in row_a and "floor 0.950" in row_a
    row_c = html[html.index("<tr id='case-case-c'>") : html.index("<tr id='case-case-b'>")]
    assert "mean Kendall tau 0.1 &lt; 0.4" in row_c and "more" not in row_c
    assert "2 failed" in html and "1 passed" in html


def test_worst_texts_show_the_full_ranking_best_first():
    html = page()
    section = html[html.index("id='texts-case-a'") : html.index("id='flips'")]
    assert "Old paintings." in section
    ranking = re.search(r"<ol>(.*?)</ol>", section).group(1)
    assert re.findall(r"<li[^>]*>([A-Za-z]+)", ranking) == ["Food", "Art"]  # t2's order
    assert "<li class='true'>Art (true): -3.000 (exact)</li>" in ranking


def test_heatmap_values_and_agreement_matrix():
    html = page()
    heat = html[html.index("id='heatmap'") : html.index("id='worst'")]
    assert re.search(
        r"m/exact/a/normal</td>(<td[^>]*>[^<]*(<br><small>[^<]*</small>)?</td>){8}", heat
    )
    # each headline value with its interval (where the summary has one)
    assert ">0.900<br><small>[0.810, 0.970]</small></td>" in heat
    assert ">0.600<br><small>[0.410, 0.770]</small></td>" in heat
    assert ">0.750</td>" in heat  # MRR: no interval in this summary, none shown
    assert ">0.800</td>" in heat  # kept, from thresholds.transfer
    assert ">n/a</td>" in heat  # config b has no thresholds entry
    agree = html[html.index("id='agreement'") : html.index("id='plots'")]
    cells = re.findall(r"<td style='[^']*'>([^<]+)</td>", agree)
    assert cells == ["1.000", "0.250", "0.250", "1.000"]  # symmetric, 1 on the diagonal


def test_flips_render_when_the_summary_carries_them():
    assert "no per-text baseline" in page()
    flips = [
        {
            "case": "case-a",
            "example_id": "t2",
            "why": "top label",
            "before": "Art",
            "after": "Food",
        },
        {
            "case": "case-a",
            "example_id": "t3",
            "text": "Paint & <b>eat</b>…",
            "why": "top label",
            "before": "Art",
            "after": "Food",
        },
    ]
    html = render_report("t", {**SUMMARY, "flips": flips}, [], df=DF)
    section = html[html.index("id='flips'") :]
    assert "<th>text id</th><th>text</th>" in section
    cells = re.findall(r"<td class='s'>(.*?)</td>", section)  # words, left-aligned
    assert cells[:6] == ["case-a", "t2", "top label", "Art", "Food", "baseline"]
    assert "<td class='s'>t2</td><td></td>" in section  # no words: an empty cell
    assert cells[6:10] == ["case-a", "t3", "Paint &amp; &lt;b&gt;eat&lt;/b&gt;…", "top label"]


def test_no_network_and_no_script():
    html = page()
    assert "<script" not in html
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", html)


def test_a_skipped_case_shows_its_reason_as_words():
    skipped = {
        "case": "nothing-to-compare",
        "config": None,
        "test": "test_rank_agreement_across_label_phrasings",
        "outcome": "skipped",
        "failures": None,
        "message": "Skipped: nothing to compare: add a second label set\nsecond line",
    }
    html = page(outcomes=[*OUTCOMES, skipped])
    row = html[html.index("<tr id='case-nothing-to-compare'>") :].split("</tr>")[0]
    assert "<td class='skip'>SKIP</td><td>nothing to compare: add a second label set</td>" in row
