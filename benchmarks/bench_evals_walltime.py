"""`pytest evals` wall time for the committed suite: serial vs `-n 2`.

One warm-up run first (it compiles the bytecode caches and warms the file cache), then
``BENCH_REPEATS`` (default 5) serial and `-n 2` runs, interleaved; the medians are compared.
The runs write Python's bytecode caches as Python does by default (``PYTHONDONTWRITEBYTECODE``
is unset for them: with it, and no caches yet, each of the three processes of a `-n 2` run
compiles every module it imports on every run). CPU seconds (all processes) are printed too:
what `-n 2` costs beyond the serial run.

Run: python benchmarks/bench_evals_walltime.py      (last line: the speed-up)
     python benchmarks/bench_evals_walltime.py --profile   (+ where a serial run spends it)
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {**os.environ, "HYPOTHESIS_PROFILE": "dev"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run(*args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the run's processes) of one `pytest evals` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "evals", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        env=_env(),
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def profile_serial() -> str:
    import pytest

    prof = cProfile.Profile()
    prof.enable()
    pytest.main(
        ["evals", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), str(ROOT / "evals")],
        plugins=[],
    )
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats("cumulative")
    stats.print_stats(r"logprob_eval/(evalsuite|experiments|report|scoring|matcher)", 12)
    return out.getvalue()


def main() -> None:
    repeats = int(os.environ.get("BENCH_REPEATS", "5"))
    # other work on the machine makes -n 2 look worse (both workers need a free core)
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    run()  # warm-up: bytecode caches, file cache
    serial, parallel = [], []
    for i in range(repeats):
        serial.append(run())
        parallel.append(run("-n", "2"))
        print(
            f"  run {i + 1}: serial {serial[-1][0]:.1f} s ({serial[-1][1]:.1f} CPU s), "
            f"-n 2 {parallel[-1][0]:.1f} s ({parallel[-1][1]:.1f} CPU s)"
        )
    print(f"load average after:  {os.getloadavg()[0]:.2f}")
    if "--profile" in sys.argv:
        print(profile_serial())
    s = statistics.median(w for w, _ in serial)
    p = statistics.median(w for w, _ in parallel)
    print(f"pytest evals, serial: {s:.1f} s (median of {repeats})")
    print(f"pytest evals, -n 2:   {p:.1f} s (median of {repeats})")
    print(f"RATIO pytest evals -n 2 vs serial: {s / p:.2f}x faster")


if __name__ == "__main__":
    main()
