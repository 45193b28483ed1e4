"""Ranking metrics per config and agreement metrics across configs.

Per config (true labels vs the rest, per example, then averaged):

* ``top1_acc``: the best-scored label is a true one (a tie at the top does not count);
* ``topk_acc``: some true label ranks within the top ``k``;
* ``mrr``: mean of 1 / (rank of the best-ranked true label);
* ``auc``: per-example ranking AUC, P(true label outscores a false one), ties count half
  (the Mann-Whitney statistic, equal to scikit-learn's ``roc_auc_score`` per example);
  examples whose labels are all true are left out;
* ``coverage``: share of scores that are ``exact``; ``n_errors``: failed rows.

Each of top-1, top-k, MRR and AUC is the mean of a per-text value; ``per_text`` keeps those
values by example id (best true rank, reciprocal rank, top-1 and top-k hit, AUC, the model's
top label, the true labels and every label's score in ``labels`` order), and ``ci`` holds
a seeded BCa bootstrap interval over texts for each (:mod:`.intervals`).

Across two configs on the texts both scored (labels aligned by canonical name):

* ``kendall_tau``: mean per-example Kendall tau-b of the label scores (scipy);
* ``top1_agreement``: share of texts whose best label is the same;
* ``median_shift``: median true-label score of B minus that of A;
* ``wasserstein``: Wasserstein distance between the two true-label score distributions.

``tau_by_text`` keeps the per-text taus (not serialised); :func:`group_tau` averages them
over a group of configs and bootstraps the mean over texts.

Non-finite scores (missing, failed) rank last; metrics that cannot be computed are NaN
with the reason in ``notes``, never a crash.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from . import intervals as iv
from .table import label_matrix

__all__ = [
    "AgreementMetrics",
    "MatrixCache",
    "RankingMetrics",
    "agreement",
    "agreement_matrix",
    "group_tau",
    "per_example_auc",
    "ranking_metrics",
]


@dataclass
class RankingMetrics:
    config: str
    n_examples: int
    top1_acc: float
    topk_acc: float
    k: int
    mrr: float
    auc: float
    coverage: float
    n_errors: int
    notes: list[str] = field(default_factory=list)
    worst: list[dict[str, Any]] = field(default_factory=list)
    ci: dict[str, list[float]] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    per_text: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def undefined(
        cls, config: str, k: int, notes: list[str], *, coverage: float = math.nan, n_errors: int = 0
    ) -> RankingMetrics:
        """Metrics that cannot be computed: NaN, with the reason in ``notes``."""
        nan = math.nan
        return cls(config, 0, nan, nan, k, nan, nan, coverage, n_errors, notes)


@dataclass
class AgreementMetrics:
    a: str
    b: str
    n_examples: int
    kendall_tau: float
    top1_agreement: float
    median_shift: float
    wasserstein: float
    notes: list[str] = field(default_factory=list)
    tau_by_text: dict[str, float] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "tau_by_text"}


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Descending ranks per row (1 = best), ties averaged, non-finite last."""
    filled = np.where(np.isfinite(scores), scores, -np.inf)
    filled = np.where(np.isnan(scores), -np.inf, filled)
    return stats.rankdata(-filled, axis=1, method="average")


def per_example_auc(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Ranking AUC per row (NaN where a row has no positive or no negative label)."""
    asc = stats.rankdata(np.where(np.isnan(scores), -np.inf, scores), axis=1, method="average")
    n_pos = truth.sum(axis=1)
    n_neg = truth.shape[1] - n_pos
    rank_sum = np.where(truth, asc, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


PER_TEXT_METRICS = {"top1_acc": "top1", "topk_acc": "topk", "mrr": "rr", "auc": "auc"}


def ranking_metrics(
    df: pd.DataFrame,
    config: str,
    *,
    k: int = 3,
    score: str = "logprob",
    n_worst: int = 5,
    intervals: bool = True,
    seed: int = iv.SEED,
) -> RankingMetrics:
    """Ranking metrics of one config; ``score`` names the column to rank by.

    With ``intervals`` each mean metric gets a bootstrap interval over texts (``seed``)."""
    part = df[df["config"] == config]
    notes: list[str] = []
    if part.empty:
        return RankingMetrics.undefined(config, k, [f"no rows for config {config!r}"])
    n_errors = int((part["status"] == "error").sum())
    ok = part[part["status"] != "error"]
    coverage = float((ok["status"] == "exact").mean()) if len(ok) else math.nan
    if ok.empty:
        return RankingMetrics.undefined(
            config,
            k,
            [f"all {len(part)} rows failed; see the error column"],
            coverage=coverage,
            n_errors=n_errors,
        )
    ids, labels, scores, truth = label_matrix(ok, config, score)
    has_true: np.ndarray = np.asarray(truth.any(axis=1), dtype=bool)
    if not has_true.all():
        notes.append(f"{int((~has_true).sum())} example(s) without a true label left out")
    ids = [i for i, keep in zip(ids, list(has_true), strict=True) if keep]
    scores, truth = scores[has_true], truth[has_true]
    if not len(ids):
        return RankingMetrics.undefined(
            config, k, [*notes, "no example has a true label"], coverage=coverage, n_errors=n_errors
        )
    if not np.isfinite(scores).any():
        notes.append("every score is missing or non-finite: ranks are arbitrary")
    ranks = _ranks(scores)
    best_true = np.where(truth, ranks, np.inf).min(axis=1)
    auc = per_example_auc(scores, truth)
    if np.isnan(auc).all():
        notes.append("AUC undefined: every example has all labels true")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_auc = float(np.nanmean(auc)) if not np.isnan(auc).all() else math.nan
    order = np.argsort(-best_true, kind="stable")[:n_worst]
    top = np.argmin(ranks, axis=1)
    outcome = {
        "top1": (best_true <= 1).astype(float),
        "topk": (best_true <= k).astype(float),
        "rr": 1.0 / best_true,
        "auc": auc,
    }
    per_text = {
        ex: {
            "best_true_rank": float(best_true[i]),
            **{name: float(v[i]) for name, v in outcome.items()},
            "top_label": labels[int(top[i])],
            "true": [labels[j] for j in np.nonzero(truth[i])[0]],
            "scores": [float(x) for x in scores[i]],
        }
        for i, ex in enumerate(ids)
    }
    worst = [
        {
            "example_id": ids[i],
            "true": per_text[ids[i]]["true"],
            "best_true_rank": float(best_true[i]),
            "top_label": per_text[ids[i]]["top_label"],
        }
        for i in order
    ]
    ci: dict[str, list[float]] = {}
    if intervals:
        for metric, name in PER_TEXT_METRICS.items():
            stat = iv.mean_statistic(outcome[name])
            ci[metric] = list(iv.bootstrap_interval(stat, len(ids), seed=seed))
    return RankingMetrics(
        config=config,
        n_examples=len(ids),
        top1_acc=float(outcome["top1"].mean()),
        topk_acc=float(outcome["topk"].mean()),
        k=k,
        mrr=float(outcome["rr"].mean()),
        auc=mean_auc,
        coverage=coverage,
        n_errors=n_errors,
        notes=notes,
        worst=worst,
        ci=ci,
        labels=list(labels),
        per_text=per_text,
    )


def kendall_tau_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between ``a[i]`` and ``b[i]`` for every row (NaN for a constant row).

    The statistic of ``scipy.stats.kendalltau`` (tau-b, ties handled), computed for all rows
    at once from the pairwise sign matrices; the tests check it against scipy row by row.
    """
    sa = np.sign(a[:, :, None] - a[:, None, :])
    sb = np.sign(b[:, :, None] - b[:, None, :])
    iu = np.triu_indices(a.shape[1], k=1)
    sa, sb = sa[:, iu[0], iu[1]], sb[:, iu[0], iu[1]]
    concord = (sa * sb).sum(axis=1)
    denom = np.sqrt((sa != 0).sum(axis=1) * (sb != 0).sum(axis=1).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, concord / denom, np.nan)


class MatrixCache:
    """Label matrices per (config, score column), pivoted once from the non-failed rows."""

    def __init__(self, df: pd.DataFrame) -> None:
        self._parts: dict[str, pd.DataFrame] = {}
        self._m: dict[tuple[str, str], tuple[list[str], list[str], np.ndarray, np.ndarray]] = {}
        self._empty = df.iloc[:0]
        self.add(df)

    def add(self, df: pd.DataFrame) -> None:
        """Rows of more configs (a config already held is replaced)."""
        ok = df[df["status"] != "error"]
        for config, part in ok.groupby("config", sort=False):
            self._parts[str(config)] = part
            self._m = {k: v for k, v in self._m.items() if k[0] != config}

    def get(self, config: str, score: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        key = (config, score)
        if key not in self._m:
            part = self._parts.get(config, self._empty)
            self._m[key] = label_matrix(part, config, score)
        return self._m[key]


def _aligned(
    cache: MatrixCache, a: str, b: str, score: str
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray] | None:
    """(common texts, A's scores, B's scores, A's truth) on the texts and labels both
    configs scored, rows in text order; None when fewer than 2 labels or no text is shared."""
    ids_a, labels_a, sa, ta = cache.get(a, score)
    ids_b, labels_b, sb, _ = cache.get(b, score)
    common = sorted(set(ids_a) & set(ids_b))
    labels = [x for x in labels_a if x in set(labels_b)]
    if not common or len(labels) < 2:
        return None
    pos_a = {e: i for i, e in enumerate(ids_a)}
    pos_b = {e: i for i, e in enumerate(ids_b)}
    ra = [pos_a[e] for e in common]
    rb = [pos_b[e] for e in common]
    ia = [labels_a.index(x) for x in labels]
    ib = [labels_b.index(x) for x in labels]
    return common, sa[np.ix_(ra, ia)], sb[np.ix_(rb, ib)], ta[np.ix_(ra, ia)]


def _taus_by_text(common: list[str], sa: np.ndarray, sb: np.ndarray) -> dict[str, float]:
    """Per-text Kendall tau-b (texts with a constant row left out); missing scores tie at
    the bottom."""
    per_text = kendall_tau_rows(
        np.nan_to_num(sa, nan=-1e300, neginf=-1e300), np.nan_to_num(sb, nan=-1e300, neginf=-1e300)
    )
    return {e: float(x) for e, x in zip(common, per_text, strict=True) if not np.isnan(x)}


def mean_kendall_tau(cache: MatrixCache, a: str, b: str, *, score: str = "logprob") -> float:
    """``agreement(...).kendall_tau`` alone (the other agreement metrics are not computed)."""
    found = _aligned(cache, a, b, score)
    taus = list(_taus_by_text(found[0], found[1], found[2]).values()) if found else []
    return float(np.mean(taus)) if taus else math.nan


def agreement(
    df: pd.DataFrame | None,
    a: str,
    b: str,
    *,
    score: str = "logprob",
    cache: MatrixCache | None = None,
) -> AgreementMetrics:
    """How far config ``b`` agrees with config ``a`` on the texts both scored (``df``: the
    scores; None when ``cache`` holds them)."""
    if cache is None:
        if df is None:
            raise TypeError("agreement() needs the scores (df) or a cache of them")
        cache = MatrixCache(df)
    found = _aligned(cache, a, b, score)
    if found is None:
        nan = math.nan
        return AgreementMetrics(
            a, b, 0, nan, nan, nan, nan, ["no common texts or labels: nothing to compare"]
        )
    common, sa, sb, ta = found
    notes: list[str] = []
    tau_by_text = _taus_by_text(common, sa, sb)
    taus = list(tau_by_text.values())
    if len(taus) < len(common):
        notes.append(f"{len(common) - len(taus)} text(s) with constant scores left out of tau")
    top_a = np.argmin(_ranks(sa), axis=1)
    top_b = np.argmin(_ranks(sb), axis=1)
    true_a = sa[ta]
    true_b = sb[ta]
    fa, fb = true_a[np.isfinite(true_a)], true_b[np.isfinite(true_b)]
    shift = float(np.median(fb) - np.median(fa)) if len(fa) and len(fb) else math.nan
    wd = float(stats.wasserstein_distance(fa, fb)) if len(fa) and len(fb) else math.nan
    return AgreementMetrics(
        a,
        b,
        len(common),
        float(np.mean(taus)) if taus else math.nan,
        float((top_a == top_b).mean()),
        shift,
        wd,
        notes,
        tau_by_text,
    )


def group_tau(
    pairs: list[AgreementMetrics], *, seed: int = iv.SEED
) -> tuple[float, list[float], dict[str, float]]:
    """(mean Kendall tau of a group of config pairs, its bootstrap interval over texts,
    the per-text tau averaged over the pairs).

    The mean is the mean over pairs of each pair's mean per-text tau; a resample draws
    texts (clusters: a text's taus in every pair move together) and recomputes it."""
    texts = sorted({e for p in pairs for e in p.tau_by_text})
    usable = [p for p in pairs if p.tau_by_text]
    if not texts or not usable:
        return math.nan, [math.nan, math.nan], {}
    mat = np.array([[p.tau_by_text.get(e, np.nan) for e in texts] for p in usable])
    stat = iv.mean_statistic(mat)  # a text's taus in every pair move together
    point = float(stat(np.arange(len(texts))[None, :])[0])
    ci = list(iv.bootstrap_interval(stat, len(texts), seed=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        by_text = dict(zip(texts, np.nanmean(mat, axis=0).tolist(), strict=True))
    return point, ci, by_text


def agreement_matrix(
    df: pd.DataFrame, configs: list[str], *, score: str = "logprob"
) -> pd.DataFrame:
    """Mean per-text Kendall tau between every pair of configs (1 on the diagonal)."""
    mat = pd.DataFrame(np.eye(len(configs)), index=configs, columns=configs)
    cache = MatrixCache(df)
    for i, a in enumerate(configs):
        for b in configs[i + 1 :]:
            tau = agreement(df, a, b, score=score, cache=cache).kendall_tau
            mat.loc[a, b] = mat.loc[b, a] = tau
    return mat
