"""Requests and seconds per text for the three scoring methods on the same cases: forced,
exact and generation, on the servers that have each (one-token batches everywhere, the
grid of the forced method's agreement check: 6 texts x 2 templates x 2 label sets x 10
labels; ``BENCH_TEXTS`` shrinks it).

* ``logprob-eval serve``: exact (one list request per text, ``continuation_offset``),
  generation (4 tokens, top-20), forced (text: its top-k caps at 20, so lower-ranked labels
  are intervals);
* llama.cpp's ``llama-server``: forced (token ids: ``/tokenize`` per text and per label,
  then one completion per distinct prefix and list size), generation; no exact (no echo);
* llama-cpp-python's server: forced (text), generation; its exact method (echo) sorts the
  262k-token vocabulary in Python per prompt token, minutes per text here, so it runs only
  with ``BENCH_SLOW=1`` (on the first text).

Each server runs alone (started, measured, stopped), the methods interleaved text by text on
it. Requests are counted as sent (``/tokenize`` apart from completions); seconds are wall
time per text (median over the texts x configs). The baseline is the exact method on the
own server; the last line gives forced on llama-server against it.

Run: python benchmarks/bench_methods.py          (last line: the ratio)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logprob_eval.backends import get_backend
from logprob_eval.data.datasets import load_dataset
from logprob_eval.data.prompts import get_label_set, get_template
from logprob_eval.server.thirdparty import make_server

MODEL = "gemma-3-270m"
PLAN = {
    "logprob-eval": ("exact", "forced", "generation"),
    "llama-server": ("forced", "generation"),
    "llama-cpp-python": ("forced", "generation"),
}
OPTIONS = {"generation": {"max_tokens": 4, "top_logprobs": 20}, "exact": {}, "forced": {}}


def counted(backend):  # type: ignore[no-untyped-def]
    """Count the requests a backend really sends, by endpoint."""
    counts: Counter[str] = Counter()
    inner = backend._request

    def request(endpoint, payload, send):  # type: ignore[no-untyped-def]
        before = backend.request_count
        out = inner(endpoint, payload, send)
        counts[endpoint] += backend.request_count - before
        return out

    backend._request = request
    return counts


def main() -> None:
    n = int(os.environ.get("BENCH_TEXTS", "6"))
    texts = list(load_dataset("topics").sample(n, seed=0))
    work = [
        (get_template(t).render(ex.text, get_label_set(ls)), list(get_label_set(ls).phrases))
        for t in ("simple", "question")
        for ls in ("normal", "simple")
        for ex in texts
    ]
    rows = []
    for kind, methods in PLAN.items():
        plan = list(methods)
        if kind == "llama-cpp-python" and os.environ.get("BENCH_SLOW"):
            plan.append("exact")
        with make_server(kind, MODEL, one_token_batches=True) as server:
            spec = f"openai-compatible:{MODEL}@{server.base_url}"
            backends = {m: get_backend(spec, method=m, timeout=3600, **OPTIONS[m]) for m in plan}
            counts = {m: counted(b) for m, b in backends.items()}
            seconds: dict[str, list[float]] = {m: [] for m in plan}
            exact_share: Counter[str] = Counter()
            for i, (prompt, labels) in enumerate(work):
                for m, b in backends.items():
                    if m == "exact" and kind == "llama-cpp-python" and i > 0:
                        continue  # BENCH_SLOW: one text
                    started = time.perf_counter()
                    scores = b.score(prompt, labels)
                    seconds[m].append(time.perf_counter() - started)
                    exact_share[m] += sum(s.status == "exact" for s in scores.values())
            for m, b in backends.items():
                done = len(seconds[m])
                rows.append(
                    (
                        kind,
                        m,
                        done,
                        counts[m]["completions"] / done,
                        counts[m]["tokenize"] / done,
                        statistics.median(seconds[m]),
                        statistics.fmean(seconds[m]),
                        exact_share[m] / (done * 10),
                    )
                )
                b.close()
        print(f"{kind}: done", flush=True)
    print(
        "\n| server | method | texts x configs | completions per text | tokenize per text "
        "| seconds per text (median) | mean | rows exact |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind, m, done, comp, tok, med, mean, share in rows:
        print(
            f"| {kind} | {m} | {done} | {comp:.2f} | {tok:.2f} | {med:.3f} | {mean:.3f} "
            f"| {share:.1%} |"
        )
    by = {(k, m): med for k, m, _, _, _, med, _, _ in rows}
    base, forced = by[("logprob-eval", "exact")], by[("llama-server", "forced")]
    print(
        f"RATIO forced on llama-server: {forced:.3f} s per text, {forced / base:.2f}x the exact "
        f"method on logprob-eval serve ({base:.3f} s)"
    )


if __name__ == "__main__":
    main()
