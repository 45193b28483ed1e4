"""Live scoring on the local model, measured against named baselines in one run.

1. Exact (teacher-forced) scoring of ten labels per text:
   `logprob-eval serve` (numpy over llama.cpp's logits, prefix reuse, one list request per
   text) vs llama-cpp-python's own echo path (`create_completion(echo=True, logprobs=1)`,
   one call per label). The baseline is slow (seconds per label), so it is timed on
   BASELINE_LABELS labels and compared per label.
2. The cost of the exact method: requests per text, with and without prefix reuse.
3. Live throughput: score_jobs sequential (concurrency 1) vs the default concurrency, on
   the local server (compute-bound: one model, one lock) and on a loopback stand-in for a
   remote API whose answers take 50 ms (latency-bound).

Run: python benchmarks/bench_local_scoring.py   (needs the [local] extra)
The last line prints the headline ratio.
"""

from __future__ import annotations

import os
import platform
import time

from logprob_eval.backends import get_backend
from logprob_eval.datasets import load_dataset
from logprob_eval.prompts import LABEL_SETS, TEMPLATES
from logprob_eval.scoring import DEFAULT_CONCURRENCY, make_jobs, score_jobs
from logprob_eval.server.engine import Engine, resolve_model_path
from logprob_eval.server.process import LocalServer

MODEL = "gemma-3-270m"
N_TEXTS = int(os.environ.get("BENCH_TEXTS", "8"))
BASELINE_LABELS = int(os.environ.get("BENCH_BASELINE_LABELS", "2"))


def baseline_per_label(prompts: list[str]) -> float:
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(resolve_model_path(MODEL)), n_ctx=1024, logits_all=True, verbose=False
    )
    start = time.perf_counter()
    for p in prompts:
        llm.create_completion(p, echo=True, logprobs=1, max_tokens=1, temperature=0)
    return (time.perf_counter() - start) / len(prompts)


def engine_reuse_effect(prompts_per_text: list[list[str]]) -> tuple[int, int]:
    """Tokens evaluated with prefix reuse vs the tokens a no-reuse engine would evaluate."""
    eng = Engine(resolve_model_path(MODEL), n_ctx=1024)
    total = 0
    for group in prompts_per_text:
        for p in group:
            toks = eng.tokenize(p)
            total += len(toks)
            eng.prompt_logprobs(toks)
    return eng.tokens_evaluated, total


def latency_bound_rates(n_jobs: int, delay: float = 0.05) -> dict[int, float]:
    """The same runner against a loopback stand-in for a remote API: each answer takes
    ``delay`` seconds (network and queueing), the body is a fixed chat completion written
    by hand in OpenAI's documented shape. Shows what concurrency buys where latency rules."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "logprobs": {
                        "content": [
                            {
                                "token": "Sports",
                                "logprob": -0.1,
                                "top_logprobs": [
                                    {"token": "Sports", "logprob": -0.1},
                                    {"token": "Health", "logprob": -3.0},
                                ],
                            }
                        ]
                    },
                }
            ]
        }
    ).encode()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    ds = load_dataset("topics").sample(n_jobs, seed=1)
    jobs = make_jobs(ds, [TEMPLATES["simple"]], [LABEL_SETS["normal"]])
    rates = {}
    try:
        for conc in (1, DEFAULT_CONCURRENCY):
            with get_backend("openai:gpt-4.1-mini", base_url=url, api_key="bench") as b:
                start = time.perf_counter()
                score_jobs(b, jobs, concurrency=conc)
                rates[conc] = len(jobs) / (time.perf_counter() - start)
    finally:
        srv.shutdown()
    return rates


def main() -> None:
    ds = load_dataset("topics").sample(N_TEXTS, seed=7)
    ls = LABEL_SETS["normal"]
    tpl = TEMPLATES["simple"]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; model {MODEL}; {len(ds)} texts x {len(ls.phrases)} labels"
    )

    with LocalServer(MODEL, n_ctx=1024) as srv:
        spec = f"openai-compatible:{MODEL}@{srv.base_url}"
        with get_backend(spec, method="exact") as b:
            b.score(tpl.render(ds[0].text, ls), ls.phrases)  # warm-up
            start = time.perf_counter()
            for ex in ds:
                b.score(tpl.render(ex.text, ls), ls.phrases)
            ours = (time.perf_counter() - start) / (len(ds) * len(ls.phrases))
            reqs = b.request_count - 1
        jobs = make_jobs(ds, [tpl, TEMPLATES["question"]], [ls])
        rates = {}
        for conc in (1, DEFAULT_CONCURRENCY):
            with get_backend(spec, method="exact") as b:
                start = time.perf_counter()
                score_jobs(b, jobs, concurrency=conc)
                rates[conc] = len(jobs) / (time.perf_counter() - start)

    slow = latency_bound_rates(40)
    full = [[tpl.render(ex.text, ls) + " " + lab for lab in ls.phrases] for ex in ds]
    evaluated, naive = engine_reuse_effect(full)
    base = baseline_per_label([full[0][i] for i in range(BASELINE_LABELS)])

    print(f"exact method: {reqs / len(ds):.1f} request(s) per text (all labels in one list)")
    print(
        f"prefix reuse: {evaluated} tokens evaluated instead of {naive} "
        f"({naive / evaluated:.1f}x fewer)"
    )
    print(
        f"throughput: sequential {rates[1]:.2f} jobs/s, concurrency {DEFAULT_CONCURRENCY} "
        f"{rates[DEFAULT_CONCURRENCY]:.2f} jobs/s "
        f"({rates[DEFAULT_CONCURRENCY] / rates[1]:.2f}x)"
    )
    print(
        f"throughput, latency-bound API stand-in (50 ms per answer): sequential "
        f"{slow[1]:.1f} jobs/s, concurrency {DEFAULT_CONCURRENCY} "
        f"{slow[DEFAULT_CONCURRENCY]:.1f} jobs/s ({slow[DEFAULT_CONCURRENCY] / slow[1]:.2f}x)"
    )
    print(
        f"exact scoring per label: logprob-eval serve {ours * 1000:.1f} ms, llama-cpp-python "
        f"echo {base * 1000:.0f} ms (baseline on {BASELINE_LABELS} labels)"
    )
    print(f"RATIO exact scoring, serve vs llama-cpp-python echo: {base / ours:.0f}x faster")


if __name__ == "__main__":
    main()
