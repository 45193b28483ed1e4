"""`pytest evals` wall time for the committed suite: serial vs `-n 2`, one run each, and
what a serial run spends its time on (cassette loading, scoring, analysis, report).

Run: python benchmarks/bench_evals_walltime.py      (last line: the speed-up)
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "evals", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "HYPOTHESIS_PROFILE": "dev"},
    )
    return time.perf_counter() - start


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
    # other work on the machine makes -n 2 look worse (both workers need a free core)
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    serial = run()
    parallel = run("-n", "2")
    print(f"load average after:  {os.getloadavg()[0]:.2f}")
    if "--profile" in sys.argv:
        print(profile_serial())
    print(f"pytest evals, serial: {serial:.1f} s")
    print(f"pytest evals, -n 2:   {parallel:.1f} s")
    print(f"RATIO pytest evals -n 2 vs serial: {serial / parallel:.2f}x faster")


if __name__ == "__main__":
    main()
