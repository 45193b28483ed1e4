"""Live scoring on the local model, measured against named baselines in one run.

1. Exact (teacher-forced) scoring of ten labels per text, per label set (`normal`: single-
   token labels; `verbose`: multi-token), on the same requests, interleaved text by text:
   - the old path: every token evaluated alone (one decode call per token, logits at every
     position, prefix reuse), as `serve` did before the batched prefill;
   - the new path: `logprob-eval serve` over HTTP (one list request per text, prompt
     prefilled once, label tokens one per call, logits only where returned);
   - the physical reference: llama.cpp's batched prefill of the prompt (once, logits at its
     last position) and of each label's tokens after it (one call, logits at the positions
     the label's log-probs need; none for a single-token label), and nothing else.
2. The generation method per text, the same way (old: one token per call; new: `serve`;
   reference: batched prefill + the same number of tokens decoded one per call), on the
   `question` template so that no path reuses the prompt the exact method just evaluated.
   `serve` shares the tokens that all labels start with (verbose: " article about"): each is
   its own cached batch, reused across labels; the reference, as defined, does not.
3. llama-cpp-python's own echo path (one call per label), prefix reuse, and live throughput
   (sequential vs concurrent) on the local server and on a 50 ms-latency API stand-in.

Run: python benchmarks/bench_local_scoring.py   (needs the [local] extra)
The last line prints the headline ratio for the `normal` label set.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any

import numpy as np

from logprob_eval.backends import get_backend
from logprob_eval.backends.jobs import DEFAULT_CONCURRENCY, make_jobs, score_jobs
from logprob_eval.backends.openai_compatible import label_continuation
from logprob_eval.data.datasets import load_dataset
from logprob_eval.data.prompts import LABEL_SETS, TEMPLATES
from logprob_eval.server.engine import Engine, resolve_model_path
from logprob_eval.server.process import LocalServer

MODEL = "gemma-3-270m"
N_TEXTS = int(os.environ.get("BENCH_TEXTS", "8"))
BASELINE_LABELS = int(os.environ.get("BENCH_BASELINE_LABELS", "2"))
GEN_TOKENS = 16  # the generation backend's default max_tokens


def baseline_per_label(prompts: list[str]) -> float:
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(resolve_model_path(MODEL)), n_ctx=1024, logits_all=True, verbose=False
    )
    start = time.perf_counter()
    for p in prompts:
        llm.create_completion(p, echo=True, logprobs=1, max_tokens=1, temperature=0)
    return (time.perf_counter() - start) / len(prompts)


class OneTokenPerCall:
    """The old `serve` engine: one decode call per token, logits at every position, the KV
    state of the common prefix reused, log-softmax with numpy."""

    def __init__(self) -> None:
        from llama_cpp import Llama

        self.llm: Any = Llama(
            model_path=str(resolve_model_path(MODEL)),
            n_ctx=1024,
            n_batch=1,
            logits_all=True,
            verbose=False,
        )

    def _evaluate(self, tokens: list[int]) -> None:
        n_cur = int(self.llm.n_tokens)
        common = 0
        for a, b in zip(self.llm.input_ids[:n_cur], tokens, strict=False):
            if a != b:
                break
            common += 1
        self.llm.n_tokens = min(common, len(tokens) - 1)
        self.llm.eval(tokens[self.llm.n_tokens :])

    def exact(self, prompt: str, labels: list[str]) -> list[float]:
        out = []
        n_p = len(self.llm.tokenize(prompt.encode(), add_bos=True))
        for lab in labels:
            toks = self.llm.tokenize((prompt + label_continuation(prompt, lab)).encode())
            self._evaluate(toks)
            rows = self.llm.scores[n_p - 1 : len(toks) - 1].astype(np.float64)
            lse = np.log(np.exp(rows - rows.max(1)[:, None]).sum(1)) + rows.max(1)
            out.append(float((rows[np.arange(len(rows)), toks[n_p:]] - lse).sum()))
        return out

    def generate(self, prompt: str, n: int) -> None:
        toks = self.llm.tokenize(prompt.encode(), add_bos=True)
        self._evaluate(toks)
        for _ in range(n):
            row = self.llm.scores[self.llm.n_tokens - 1]
            self.llm.eval([int(np.argmax(row))])


class BatchedPrefill:
    """The physical reference: llama.cpp decode calls with logits only where needed."""

    def __init__(self) -> None:
        self.engine = Engine(resolve_model_path(MODEL), n_ctx=1024)
        self.ctx = self.engine.llm._ctx

    def _decode(self, tokens: list[int], start: int, logits: list[int]) -> None:
        eng = self.engine
        eng.llm._ctx.kv_cache_seq_rm(-1, start, -1)
        batch = eng.llm._batch
        batch.set_batch(batch=tokens, n_past=start, logits_all=False)
        for i in range(len(tokens)):
            batch.batch.logits[i] = i in logits
        self.ctx.decode(batch)

    def exact(self, prompt: str, labels: list[str]) -> None:
        eng = self.engine
        p = eng.tokenize(prompt)
        self._decode(p, 0, [len(p) - 1])
        for lab in labels:
            rest = eng.tokenize(prompt + label_continuation(prompt, lab))[len(p) : -1]
            if rest:
                self._decode(rest, len(p), list(range(len(rest))))

    def generate(self, prompt: str, n: int) -> None:
        eng = self.engine
        p = eng.tokenize(prompt)
        self._decode(p, 0, [len(p) - 1])
        for i in range(n):
            self._decode([eng.bos], len(p) + i, [0])


def per_text_times(
    ds: Any, label_set: str, srv_url: str, old: OneTokenPerCall, ref: BatchedPrefill
) -> dict[str, Any]:
    """Exact and generation scoring per text on the three paths, interleaved text by text."""
    ls = LABEL_SETS[label_set]
    tpl = TEMPLATES["simple"]
    times: dict[str, list[float]] = {
        k: [] for k in ("old", "new", "ref", "gen_old", "gen_new", "gen_ref")
    }
    with (
        get_backend(f"local:{MODEL}", base_url=srv_url, method="exact") as exact,
        get_backend(
            f"local:{MODEL}", base_url=srv_url, method="generation", max_tokens=GEN_TOKENS
        ) as gen,
    ):
        warm = tpl.render("warm-up text", ls)
        exact.score(warm, ls.phrases)
        gen.score(warm, ls.phrases)
        for ex in ds:
            prompt = tpl.render(ex.text, ls)
            t = time.perf_counter()
            new_scores = exact.score(prompt, ls.phrases)
            times["new"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ref.exact(prompt, list(ls.phrases))
            times["ref"].append(time.perf_counter() - t)
            t = time.perf_counter()
            old_scores = old.exact(prompt, list(ls.phrases))
            times["old"].append(time.perf_counter() - t)
            assert len(new_scores) == len(old_scores) == len(ls.phrases)
            # generation on another template: no path may reuse the prompt evaluated above
            prompt = TEMPLATES["question"].render(ex.text, ls)
            t = time.perf_counter()
            body = gen._send(gen.generation_payload(prompt))
            times["gen_new"].append(time.perf_counter() - t)
            n_gen = len(body["choices"][0]["logprobs"]["tokens"])
            t = time.perf_counter()
            ref.generate(prompt, n_gen)
            times["gen_ref"].append(time.perf_counter() - t)
            t = time.perf_counter()
            old.generate(prompt, n_gen)
            times["gen_old"].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def engine_reuse_effect(prompts_per_text: list[tuple[str, list[str]]]) -> tuple[int, int]:
    """Tokens evaluated with prefix reuse vs the tokens a no-reuse engine would evaluate."""
    eng = Engine(resolve_model_path(MODEL), n_ctx=1024)
    total = 0
    for prompt, conts in prompts_per_text:
        n_p = len(eng.tokenize(prompt))
        for c in conts:
            toks = eng.tokenize(prompt + c)
            total += len(toks)
            eng.teacher_forced(toks, n_p, n_p)
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
    old, ref = OneTokenPerCall(), BatchedPrefill()
    with LocalServer(MODEL, n_ctx=1024) as srv:
        per_set = {
            name: per_text_times(ds, name, srv.base_url, old, ref) for name in ("verbose", "normal")
        }
        spec = f"local:{MODEL}"
        with get_backend(spec, base_url=srv.base_url, method="exact") as b:
            b.score(tpl.render(ds[0].text, ls), ls.phrases)
            reqs0 = b.request_count
            for ex in ds:
                b.score(tpl.render(ex.text, ls), ls.phrases)
            reqs = b.request_count - reqs0
        jobs = make_jobs(ds, [tpl, TEMPLATES["question"]], [ls])
        rates = {}
        for conc in (1, DEFAULT_CONCURRENCY):
            with get_backend(spec, base_url=srv.base_url, method="exact") as b:
                start = time.perf_counter()
                score_jobs(b, jobs, concurrency=conc)
                rates[conc] = len(jobs) / (time.perf_counter() - start)
    del old, ref

    slow = latency_bound_rates(40)
    full = [
        (tpl.render(ex.text, ls), [label_continuation("x:", lab) for lab in ls.phrases])
        for ex in ds
    ]
    evaluated, naive = engine_reuse_effect(full)
    base = baseline_per_label([full[0][0] + full[0][1][i] for i in range(BASELINE_LABELS)])
    ours = per_set["normal"]["new"] / len(ls.phrases)

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
        f"echo {base * 1000:.0f} ms (baseline on {BASELINE_LABELS} labels): "
        f"{base / ours:.0f}x faster"
    )
    for name in ("verbose", "normal"):
        t = per_set[name]
        print(
            f"exact, {name} labels, per text (median of {len(ds)}): one token per call "
            f"{t['old'] * 1000:.0f} ms, serve {t['new'] * 1000:.0f} ms, batched-prefill "
            f"reference {t['ref'] * 1000:.0f} ms: {t['old'] / t['new']:.1f}x faster, "
            f"{t['new'] / t['ref']:.1f}x the reference"
        )
        print(
            f"generation, question template, {name} labels, per text (<= {GEN_TOKENS} "
            f"tokens): one token per call {t['gen_old'] * 1000:.0f} ms, "
            f"serve {t['gen_new'] * 1000:.0f} ms, "
            f"reference {t['gen_ref'] * 1000:.0f} ms: {t['gen_old'] / t['gen_new']:.1f}x "
            f"faster, {t['gen_new'] / t['gen_ref']:.1f}x the reference"
        )
    t = per_set["normal"]
    print(
        f"RATIO exact: {t['old'] / t['new']:.1f}x faster than one token per call, "
        f"{t['new'] / t['ref']:.1f}x the batched-prefill reference"
    )


if __name__ == "__main__":
    main()
