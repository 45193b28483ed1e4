"""Score transforms (calibration), each adding a column to the tidy table.

* ``raw``: the log-prob as scored.
* ``renorm``: renormalised over the label set, log p(l) - logsumexp over labels.
* ``length``: divided by the label's token count (exact method; per-token mean).
* ``contextual``: contextual calibration (Zhao et al. 2021): the renormalised scores of
  content-free inputs ("N/A", "", "[MASK]") through the same config are averaged in
  probability space, divided out, and the result renormalised.
* ``pmi``: domain-conditional PMI (Holtzman et al. 2021): log p(l | prompt) minus
  log p(l | domain premise), the premise being the same template with an empty text.

Content-free and domain rows are ordinary score rows whose ``example_id`` starts with
:data:`CONTENT_FREE_PREFIX` (the domain premise is the content-free input ``""``).
A transform that lacks its rows gives NaN with the reason, never a crash.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import UnknownNameError

__all__ = [
    "CONTENT_FREE_INPUTS",
    "CONTENT_FREE_PREFIX",
    "DOMAIN_ID",
    "TRANSFORMS",
    "apply_transforms",
    "split_content_free",
]

TRANSFORMS = ("raw", "renorm", "length", "contextual", "pmi")
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")
CONTENT_FREE_PREFIX = "__cf__:"
DOMAIN_ID = CONTENT_FREE_PREFIX  # the empty text doubles as the domain premise

_GROUP = ["config", "example_id"]


def split_content_free(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real rows, content-free rows)."""
    cf = df["example_id"].astype(str).str.startswith(CONTENT_FREE_PREFIX)
    return df[~cf].copy(), df[cf].copy()


def _renorm(df: pd.DataFrame) -> pd.Series:
    lp = df["logprob"].where(df["status"] != "error")
    finite = lp.where(np.isfinite(lp))
    mx = finite.groupby([df[c] for c in _GROUP]).transform("max")
    sums = np.exp(finite - mx).groupby([df[c] for c in _GROUP]).transform("sum")
    with np.errstate(divide="ignore", invalid="ignore"):  # groups with no finite score
        return lp - (mx + np.log(sums))


def apply_transforms(
    df: pd.DataFrame,
    transforms: tuple[str, ...] | list[str] = TRANSFORMS,
    content_free: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Add a ``score_<name>`` column per transform; returns (frame, notes per transform)."""
    for name in transforms:
        if name not in TRANSFORMS:
            raise UnknownNameError("transform", name, TRANSFORMS)
    out = df.copy()
    notes: dict[str, str] = {}
    if "raw" in transforms:
        out["score_raw"] = out["logprob"].where(out["status"] != "error")
    if "renorm" in transforms:
        out["score_renorm"] = _renorm(out)
    if "length" in transforms:
        n = out["n_tokens"].where(out["n_tokens"] > 0) if "n_tokens" in out else np.nan
        out["score_length"] = out["logprob"] / n
        if "method" in out and (out["method"] == "generation").any():
            notes["length"] = "generation scores are divided by their matched path length"
    need_cf = [t for t in ("contextual", "pmi") if t in transforms]
    if need_cf:
        cf = content_free if content_free is not None and not content_free.empty else None
        if cf is None:
            for t in need_cf:
                out[f"score_{t}"] = np.nan
                notes[t] = "no content-free rows were scored: run with content-free inputs"
        else:
            cf = cf.copy()
            cf["p"] = np.exp(_renorm(cf))
            if "contextual" in transforms:
                p_cf = cf.groupby(["config", "label"])["p"].mean().rename("p_cf")
                tmp = out.join(p_cf, on=["config", "label"])
                tmp["score_contextual"] = _renorm(out) - np.log(tmp["p_cf"])
                tmp["logprob_bak"] = tmp["logprob"]
                tmp["logprob"] = tmp["score_contextual"]
                out["score_contextual"] = _renorm(tmp).to_numpy()
                if tmp["p_cf"].isna().any():
                    notes["contextual"] = "some configs lack content-free rows: NaN there"
            if "pmi" in transforms:
                dom = cf[cf["example_id"] == DOMAIN_ID].set_index(["config", "label"])["logprob"]
                tmp = out.join(dom.rename("lp_domain"), on=["config", "label"])
                out["score_pmi"] = (tmp["logprob"] - tmp["lp_domain"]).to_numpy()
                if tmp["lp_domain"].isna().any():
                    notes["pmi"] = "some configs lack the domain-premise rows: NaN there"
    return out, notes
