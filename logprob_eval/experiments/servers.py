"""How two servers' scores of the same texts and labels agree (the same weights served by
two stacks: llama-cpp-python, llama-server, ``logprob-eval serve``).

The rows of two score tables are paired by (text, label). Reported: how many rows were
paired and which were in one table only, the largest and the median absolute difference of
the scores (``logprob``; for intervals also of their lower ends where both are finite),
rows whose status differs (``exact`` on one server, ``upper_bound`` on the other), and per
text whether the label ranking is the same (identical ranks) with the mean Kendall tau.
llama.cpp's numbers depend on the batch a token is evaluated in: with one-token batches on
both sides the scores agree to the responses' rounding, with default batching they move
(README, "Servers verified live").
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ForcedAgreement", "ServerAgreement", "forced_agreement", "server_agreement"]

_KEY = ["example_id", "label"]


@dataclass(frozen=True)
class ServerAgreement:
    """Agreement of two score tables on the (text, label) rows they share."""

    rows: int  # rows paired
    only_a: int  # rows of A without a partner in B (and the other way round)
    only_b: int
    max_abs_diff: float  # |A - B| of logprob, the largest; NaN without a paired finite row
    median_abs_diff: float
    max_abs_diff_lower: float  # the same for the lower ends, where both are finite
    status_mismatches: int
    infinite_mismatches: int  # -inf on one side only (no mass vs a number)
    texts: int
    same_ranking: int  # texts whose label ranks are identical
    mean_kendall_tau: float
    worst: tuple[tuple[str, str, float, float], ...]  # (text, label, A, B), largest |A - B|

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["worst"] = [list(w) for w in self.worst]
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}

    def holds(self, tolerance: float) -> bool:
        """Every paired score within ``tolerance`` (and the lower ends), the same statuses,
        no row in one table only, and every text ranked the same."""
        return (
            self.rows > 0
            and self.only_a == self.only_b == 0
            and not self.max_abs_diff > tolerance
            and not self.max_abs_diff_lower > tolerance
            and self.status_mismatches == 0
            and self.infinite_mismatches == 0
            and self.same_ranking == self.texts
        )


def _abs_diff(a: pd.Series, b: pd.Series) -> np.ndarray:
    both = np.isfinite(a.to_numpy(float)) & np.isfinite(b.to_numpy(float))
    return np.abs(a.to_numpy(float)[both] - b.to_numpy(float)[both])


def server_agreement(a: pd.DataFrame, b: pd.DataFrame, *, worst: int = 5) -> ServerAgreement:
    """Compare two tidy score tables (:func:`~logprob_eval.experiments.table.to_frame`) of
    one config each, row by row on (text, label)."""
    from scipy.stats import kendalltau

    cols = [*_KEY, "logprob", "lower", "status", "rank"]
    left, right = a[[c for c in cols if c in a]], b[[c for c in cols if c in b]]
    both = left.merge(right, on=_KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    paired = both[both["_merge"] == "both"]
    diff = _abs_diff(paired["logprob_a"], paired["logprob_b"])
    lower = (
        _abs_diff(paired["lower_a"], paired["lower_b"])
        if "lower_a" in paired and "lower_b" in paired
        else np.array([])
    )
    inf_a = ~np.isfinite(paired["logprob_a"].to_numpy(float))
    inf_b = ~np.isfinite(paired["logprob_b"].to_numpy(float))
    same, taus = 0, []
    for _, grp in paired.groupby("example_id", sort=True):
        same += bool((grp["rank_a"].to_numpy() == grp["rank_b"].to_numpy()).all())
        if len(grp) > 1:
            tau = kendalltau(grp["logprob_a"], grp["logprob_b"]).statistic
            if not math.isnan(tau):
                taus.append(float(tau))
    gaps = (paired["logprob_a"] - paired["logprob_b"]).abs().fillna(0.0)
    top = paired.assign(gap=gaps).nlargest(worst, "gap")
    return ServerAgreement(
        rows=len(paired),
        only_a=int((both["_merge"] == "left_only").sum()),
        only_b=int((both["_merge"] == "right_only").sum()),
        max_abs_diff=float(diff.max()) if diff.size else math.nan,
        median_abs_diff=float(np.median(diff)) if diff.size else math.nan,
        max_abs_diff_lower=float(lower.max()) if lower.size else math.nan,
        status_mismatches=int((paired["status_a"] != paired["status_b"]).sum()),
        infinite_mismatches=int((inf_a != inf_b).sum()),
        texts=int(paired["example_id"].nunique()),
        same_ranking=same,
        mean_kendall_tau=float(np.mean(taus)) if taus else math.nan,
        worst=tuple(
            (str(r.example_id), str(r.label), float(r.logprob_a), float(r.logprob_b))
            for r in top.itertuples()
        ),
    )


@dataclass(frozen=True)
class ForcedAgreement:
    """The forced method's rows against the exact method's on the (text, label) rows they
    share: rows marked ``exact`` must equal the exact score, every interval must hold it."""

    rows: int  # rows paired
    unpaired: int  # forced rows without an exact partner
    exact: int  # paired forced rows marked exact, on the exact method's token path
    other_path: int  # rows marked exact on another token path (text mode): not compared
    within: int  # ... of the ``exact`` rows, within the tolerance of the exact score
    max_abs_diff: float  # over the rows marked exact; NaN without one
    median_abs_diff: float
    bounds: int  # paired forced rows that are intervals (upper_bound)
    bounds_holding: int  # ... with lower - tolerance <= exact <= logprob + tolerance
    max_offset_spread: float  # per text, max - min of (forced - exact) over its exact rows
    worst: tuple[tuple[str, str, float, float], ...]  # (text, label, forced, exact)

    @property
    def exact_share(self) -> float:
        """The share of rows marked exact on the exact method's own token path."""
        return self.exact / self.rows if self.rows else math.nan

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["worst"] = [list(w) for w in self.worst]
        out["exact_share"] = self.exact_share
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}

    def holds(self) -> bool:
        """Every forced row paired, every exact one within tolerance, every bound holding
        (rows on another token path are not compared: they count against the share)."""
        return (
            self.rows > 0
            and self.unpaired == 0
            and self.within == self.exact
            and self.bounds_holding == self.bounds
        )


def forced_agreement(
    forced: pd.DataFrame, exact: pd.DataFrame, *, tolerance: float, worst: int = 5
) -> ForcedAgreement:
    """Compare a forced case's score table with an exact case's of the same config, row by
    row on (text, label). A row marked exact is compared where its token path is the exact
    method's (both tables have ``path``; in text mode a walk may take another
    tokenization, exact for its own path: counted in ``other_path``). ``max_offset_spread``:
    where the two differ by one constant per text (a server's own normalisation of each
    position, single-token labels), the spread is ~0 while the difference itself is not."""
    with_path = "path" in forced and "path" in exact
    cols = [*_KEY, "logprob", "lower", "status", *(["path"] if with_path else [])]
    theirs = exact[[*_KEY, "logprob", *(["path"] if with_path else [])]]
    both = forced[cols].merge(
        theirs.rename(columns={"logprob": "exact", "path": "exact_path"}),
        on=_KEY,
        how="left",
        indicator=True,
    )
    paired = both[both["_merge"] == "both"].copy()
    paired["diff"] = paired["logprob"] - paired["exact"]
    is_exact = paired["status"] == "exact"
    same_path = (
        paired["path"].map(json.loads) == paired["exact_path"].map(json.loads)
        if with_path
        else is_exact
    )
    ex = paired[is_exact & same_path]
    gaps = ex["diff"].abs().to_numpy(float)
    bounds = paired[paired["status"] == "upper_bound"]
    holding = (bounds["lower"] <= bounds["exact"] + tolerance) & (
        bounds["exact"] <= bounds["logprob"] + tolerance
    )
    spread = ex.groupby("example_id")["diff"].agg(lambda d: d.max() - d.min())
    top = ex.assign(gap=ex["diff"].abs()).nlargest(worst, "gap")
    return ForcedAgreement(
        rows=len(paired),
        unpaired=int((both["_merge"] == "left_only").sum()),
        exact=len(ex),
        other_path=int((is_exact & ~same_path).sum()),
        within=int((gaps <= tolerance).sum()),
        max_abs_diff=float(gaps.max()) if gaps.size else math.nan,
        median_abs_diff=float(np.median(gaps)) if gaps.size else math.nan,
        bounds=len(bounds),
        bounds_holding=int(holding.sum()),
        max_offset_spread=float(spread.max()) if len(spread) else math.nan,
        worst=tuple(
            (str(r.example_id), str(r.label), float(r.logprob), float(r.exact))
            for r in top.itertuples()
        ),
    )
