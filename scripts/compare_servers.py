#!/usr/bin/env python3
"""Score one grid through the CLI on several servers serving the same GGUF, and compare
each with ``logprob-eval serve`` row by row (the README's "Servers verified live" table).

    python scripts/compare_servers.py --out /tmp/servers                 # one-token batches
    python scripts/compare_servers.py --out /tmp/servers --default-batching
    python scripts/compare_servers.py --runs llama-cpp-python:exact --sample 1 --out ...
    python scripts/compare_servers.py --out /tmp/forced \
        --runs logprob-eval:exact,llama-server:forced,llama-cpp-python:forced

Each run is ``logprob-eval score --model openai-compatible:gemma-3-270m@URL --method M``
(6 texts x 2 templates x 2 label sets x 10 labels = 240 rows by default) against a server
this script starts on a free loopback port and stops afterwards; the reference is the own
server reached the same way. Printed per run: wall time, rows, failed rows (with the first
error), and against the reference: rows paired, max and median |diff|, statuses that
differ, texts ranked the same. A ``forced`` run is compared with the own server's ``exact``
run (the method it must equal): rows marked exact within ``--tolerance`` of it, the share
of rows marked exact, the intervals holding the exact score, and the largest spread of
(forced - exact) within one text (a per-position offset shows as a spread of ~0). Scores
tables and logs stay in ``--out``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from logprob_eval.experiments.servers import forced_agreement, server_agreement
from logprob_eval.experiments.table import read_scores
from logprob_eval.server.thirdparty import make_server

MODEL = "gemma-3-270m"
DEFAULT_RUNS = (
    "logprob-eval:exact,logprob-eval:generation,llama-cpp-python:generation,"
    "llama-cpp-python:exact,llama-server:generation,llama-server:exact"
)


def score(url: str, method: str, out: Path, args: argparse.Namespace) -> tuple[float, int, str]:
    """(seconds, exit status, last stderr line) of one CLI run."""
    cmd = [
        sys.executable, "-m", "logprob_eval.cli", "score",
        "--model", f"openai-compatible:{MODEL}@{url}", "--method", method,
        "--templates", args.templates, "--label-sets", args.label_sets,
        "--sample", str(args.sample), "--max-tokens", "4", "--first-answer-only",
        "--concurrency", "1", "--timeout", str(args.timeout), "--no-progress",
        "--out", str(out),
    ]  # fmt: skip
    started = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - started
    out.with_suffix(".log").write_text(run.stdout + run.stderr)
    last = (run.stderr.strip().splitlines() or [""])[-1]
    return seconds, run.returncode, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--runs", default=DEFAULT_RUNS, help="server:method,... (in this order)")
    ap.add_argument("--default-batching", action="store_true", help="servers as shipped")
    ap.add_argument("--sample", type=int, default=6)
    ap.add_argument("--templates", default="simple,question")
    ap.add_argument("--label-sets", default="normal,simple")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--tolerance", type=float, default=1e-4, help="forced vs exact, nats")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    one_token = not args.default_batching
    tables: dict[tuple[str, str], Path] = {}
    print(f"one-token batches: {one_token}; grid: {args.templates} x {args.label_sets} x "
          f"{args.sample} texts")  # fmt: skip
    for item in args.runs.split(","):
        kind, method = item.split(":")
        options = {"one_token_batches": one_token, "log_path": args.out / f"{kind}.server.log"}
        with make_server(kind, MODEL, **options) as server:
            out = args.out / f"{kind}-{method}.csv"
            seconds, status, last = score(server.base_url, method, out, args)
        rows = failed = 0
        if out.is_file():
            table = read_scores(out)
            rows, failed = len(table), int((table["status"] == "error").sum())
            tables[(kind, method)] = out
        print(
            f"{kind} {method}: {seconds:.1f} s, exit {status}, {rows} rows, {failed} failed"
            + (f"; {last}" if status else ""),
            flush=True,
        )
    print("\nagainst logprob-eval serve (same method, same batching):")
    print("| server | method | rows paired | max abs diff | median | status differs | "
          "same ranking | mean tau |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for (kind, method), path in tables.items():
        ref = tables.get(("logprob-eval", method))
        if kind == "logprob-eval" or ref is None:
            continue
        a, b = _per_config(read_scores(path)), _per_config(read_scores(ref))
        found = server_agreement(a, b)
        print(
            f"| {kind} | {method} | {found.rows} | {found.max_abs_diff:.2g} | "
            f"{found.median_abs_diff:.2g} | {found.status_mismatches} | "
            f"{found.same_ranking} of {found.texts} | {found.mean_kendall_tau:.3f} |"
        )
    forced = [(k, p) for (k, m), p in tables.items() if m == "forced"]
    ref = tables.get(("logprob-eval", "exact"))
    if forced and ref is not None:
        print(f"\nforced against logprob-eval serve's exact method (tolerance {args.tolerance:g}):")
        print("| server | rows paired | marked exact | within tolerance | max abs diff | median "
              "| intervals holding exact | max spread of (forced - exact) in a text |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for kind, path in forced:
            a, b = _per_config(read_scores(path)), _per_config(read_scores(ref))
            f = forced_agreement(a, b, tolerance=args.tolerance)
            print(
                f"| {kind} | {f.rows} ({f.unpaired} unpaired) | {f.exact} ({f.exact_share:.1%}; "
                f"{f.other_path} on another token path) | "
                f"{f.within} of {f.exact} | {f.max_abs_diff:.2g} | {f.median_abs_diff:.2g} | "
                f"{f.bounds_holding} of {f.bounds} | {f.max_offset_spread:.2g} |"
            )


def _per_config(frame):  # type: ignore[no-untyped-def]
    """One "text" per text x config: rankings and offsets are compared within a config."""
    frame["example_id"] = (
        frame["example_id"].astype(str) + "|" + frame["template"] + "|" + frame["label_set"]
    )
    return frame


if __name__ == "__main__":
    main()
