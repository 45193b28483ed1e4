#!/usr/bin/env python3
"""Where llama-server's forced scores differ from the exact method: its normalisation.

    python scripts/llama_server_offset.py --exact /tmp/forced/logprob-eval-exact.csv

``--exact`` is the own server's exact scores table of the grid (``scripts/compare_servers.py``
writes it: 6 texts x 2 templates x 2 label sets, one-token batches). For each text x config
this starts llama-server (one-token batches), asks the one-token completion of the prompt
for the *whole* vocabulary's log-probs (``logprobs`` = the vocabulary size) and reads:

* ``offset``: the log of the sum of all its listed probabilities. A server that normalised
  exactly lists probabilities summing to 1 (offset 0, to float rounding); llama-server sums
  the 262k exponentials in float32 (``get_token_probabilities``), so each position's
  log-probs are all shifted by minus the log of that sum's error;
* per label (single-token labels), its log-prob there minus the exact method's, before and
  after subtracting the position's offset.

Printed: the offsets' range, and max |llama-server - exact| raw and with the offset removed.
"""

from __future__ import annotations

import argparse
import math

import httpx2 as httpx

from logprob_eval.data.datasets import load_dataset
from logprob_eval.data.prompts import get_label_set, get_template
from logprob_eval.experiments.table import read_scores
from logprob_eval.server.thirdparty import make_server

VOCAB = 262_144  # Gemma 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exact", required=True, help="the own server's exact scores.csv")
    ap.add_argument("--sample", type=int, default=6)
    args = ap.parse_args()
    exact = read_scores(args.exact)
    texts = load_dataset("topics").sample(args.sample, seed=0)
    raw, fixed, offsets = [], [], []
    with make_server("llama-server", "gemma-3-270m", one_token_batches=True) as server:
        root = server.base_url.rsplit("/v1", 1)[0]
        client = httpx.Client(timeout=600)

        def tokens(text: str) -> list[int]:
            body = {"content": text, "add_special": True}
            return [int(t) for t in client.post(f"{root}/tokenize", json=body).json()["tokens"]]

        for tpl in ("simple", "question"):
            for ls in ("normal", "simple"):
                label_set = get_label_set(ls)
                for ex in texts:
                    prompt = get_template(tpl).render(ex.text, label_set)
                    ids = tokens(prompt)
                    body = {"prompt": ids, "max_tokens": 1, "logprobs": VOCAB, "temperature": 0}
                    answer = client.post(f"{server.base_url}/completions", json=body).json()
                    listed = answer["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
                    by_id = {e["id"]: e["logprob"] for e in listed}
                    offset = math.log(math.fsum(math.exp(v) for v in by_id.values()))
                    offsets.append(offset)
                    mine = exact[
                        (exact["example_id"].astype(str) == ex.id)
                        & (exact["template"] == tpl)
                        & (exact["label_set"] == ls)
                    ]
                    for row in mine.itertuples():
                        full = tokens(prompt + " " + label_set.phrase(row.label))
                        if len(full) != len(ids) + 1:
                            continue  # multi-token label: not one position
                        diff = by_id[full[-1]] - row.logprob
                        raw.append(diff)
                        fixed.append(diff - offset)
                    print(
                        f"{tpl}/{ls} {ex.id}: {len(listed)} listed, offset {offset:+.3e}, "
                        f"diffs {min(raw[-10:]):+.3e}..{max(raw[-10:]):+.3e}",
                        flush=True,
                    )
    print(
        f"\n{len(offsets)} positions, {len(raw)} labels: offset (log of the listed "
        f"probabilities' sum) from {min(offsets):+.3e} to {max(offsets):+.3e}; "
        f"llama-server - exact: max |diff| {max(map(abs, raw)):.3e}; with each position's "
        f"offset removed: max |diff| {max(map(abs, fixed)):.3e}"
    )


if __name__ == "__main__":
    main()
