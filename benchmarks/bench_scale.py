"""How big can a suite get: replay peak RSS and wall time of `pytest evals --block-network`
for one exact case (the `question` template, 10 labels) at N texts, against the floor of
any replay, reading the cassette with ``json.load``.

THE CASSETTES HERE ARE BUILT BY REUSE, NOT RECORDED. Text ``j`` of a benchmark suite is the
committed suite's text ``j % 60`` with a marker `` [vJ]`` appended; its recorded interaction
is the committed one of that text (``cassettes/local-gemma-3-270m-exact-question-normal.json``)
with the marker spliced into the request's prompts and into the echoed response as one
more prompt token (no log-prob, offsets after it shifted), so the request bodies are all
distinct, as in a real suite. The label tokens' log-probs are the recorded ones of the
original text, lowered by ``SHIFT`` per copy (below). Everything is written to a
temporary folder (or ``--keep DIR``), never into cassettes/.

Each suite is a folder laid out like this project: ``pytest.ini``, ``evals/evals.toml``
(one model, one template, one label set; the committed floors; collected as the built-in
checks), ``texts.csv`` and ``cassettes/``. A
first run with ``--update-baselines`` writes the baseline (and warms the file cache); the
measured runs replay it as CI would, report included.

Run: python benchmarks/bench_scale.py                     (1,000 and 10,000 texts)
     python benchmarks/bench_scale.py 60 240 960 --repeats 2
     python benchmarks/bench_scale.py 10000 --keep /tmp/scale   (keep the suites)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASE = "local-gemma-3-270m-exact-question-normal"
SOURCE = ROOT / "cassettes" / f"{CASE}.json"
CONFIG = """\
# benchmark suite (benchmarks/bench_scale.py): its cassette is BUILT BY REUSE of recorded
# responses, not recorded
[dataset]
path = "texts.csv"
seed = 0
dev_fraction = 0.5

[[models]]
spec = "local:gemma-3-270m"
methods = ["exact"]
templates = ["question"]
label_sets = ["normal"]
top_logprobs = 20
max_tokens = 4
first_answer_only = true

[expectations.ranking]
k = 3

[expectations.ranking.floors.exact]
auc = 0.70
topk_acc = 0.75
mrr = 0.50

[expectations.thresholds.floors.exact]
best_f1 = 0.50
average_precision = 0.35
transfer_kept = 0.80
"""
SHIFT = 1e-4
"""Nats by which each further copy of a recorded text scores lower (all its labels alike, so
its ranking is the recorded one): real texts' scores are distinct, and the threshold
sweep's cost grows with the number of distinct scores."""
_TEXT = re.compile(r"\n\nText: (.*)\nTopic: ", re.DOTALL)


def _vary(interaction: dict[str, Any], text: str, marker: str, shift: float) -> dict[str, Any]:
    """The recorded interaction of ``text`` as if ``text + marker`` had been sent, every
    label's log-prob lowered by ``shift``."""
    it = json.loads(json.dumps(interaction))  # a deep copy
    body = it["request"]["body"]["json"]
    end = None
    for i, prompt in enumerate(body["prompt"]):
        m = _TEXT.search(prompt)
        assert m is not None, prompt
        assert m.group(1) == text, prompt
        end = m.end(1)
        body["prompt"][i] = prompt[:end] + marker + prompt[end:]
    assert end is not None
    body["continuation_offset"] += len(marker)
    for choice in it["response"]["body"]["json"]["choices"]:
        choice["text"] = choice["text"][:end] + marker + choice["text"][end:]
        lp = choice["logprobs"]
        at = lp["text_offset"].index(end)  # a token starts where the text ends (checked)
        first = next(k for k, v in enumerate(lp["token_logprobs"]) if v is not None)
        lp["token_logprobs"][first] = round(lp["token_logprobs"][first] - shift, 6)
        lp["tokens"].insert(at, marker)
        lp["token_logprobs"].insert(at, None)
        offsets = lp["text_offset"]
        lp["text_offset"] = [*offsets[:at], end, *(o + len(marker) for o in offsets[at:])]
    return it


def build_suite(root: Path, n: int) -> Path:
    """A suite of ``n`` texts in ``root`` (see the module docstring); returns its cassette."""
    from logprob_eval.evalsuite.cassettes import _dump  # the committed cassettes' layout
    from logprob_eval.evalsuite.config import load_eval_config

    recorded = json.loads(SOURCE.read_text())["interactions"]
    committed = load_eval_config(ROOT / "evals" / "evals.toml").load_dataset(ROOT)
    by_text = {}
    for it in recorded:
        m = _TEXT.search(it["request"]["body"]["json"]["prompt"][0])
        assert m is not None
        by_text[m.group(1)] = it
    base = [ex for ex in committed if ex.text in by_text]
    content_free = [it for t, it in by_text.items() if t not in {ex.text for ex in base}]
    (root / "evals").mkdir(parents=True, exist_ok=True)
    (root / "cassettes").mkdir(exist_ok=True)
    (root / "pytest.ini").write_text(
        "[pytest]\nllm_config = evals/evals.toml\nllm_cassette_dir = cassettes\n"
    )
    (root / "evals" / "evals.toml").write_text(CONFIG)
    interactions = []
    with (root / "texts.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "topics"])
        for j in range(n):
            ex = base[j % len(base)]
            marker = f" [v{j}]"
            w.writerow([f"t{j:05d}", ex.text + marker, ";".join(ex.labels)])
            shift = SHIFT * (j // len(base))  # copies of one text score apart
            interactions.append(_vary(by_text[ex.text], ex.text, marker, shift))
    interactions.extend(content_free)  # the content-free inputs, once each, as recorded
    cassette = root / "cassettes" / f"{CASE}.json"
    cassette.write_text(_dump({"version": 1, "interactions": interactions}) + "\n")
    return cassette


def _time_v(cmd: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """(peak RSS in MB, wall seconds, CPU seconds, output) of ``cmd`` under
    ``/usr/bin/time -v``."""
    env = {**os.environ, "HYPOTHESIS_PROFILE": "dev"}
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True, text=True, env=env
    )
    err = proc.stderr
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", err)
    if proc.returncode not in (0, 1) or rss is None or wall is None:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{err}")
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", err))
    return int(rss.group(1)) / 1024, seconds, cpu, proc.stdout


def replay(root: Path, *extra: str) -> tuple[float, float, float, str]:
    cmd = [sys.executable, "-m", "pytest", "evals", "--block-network", "-q"]
    return _time_v([*cmd, "-p", "no:cacheprovider", *extra], root)


def floor(cassette: Path) -> tuple[float, float]:
    """Peak RSS and wall time of ``json.load`` of the cassette in a fresh interpreter."""
    code = "import json, sys\nwith open(sys.argv[1]) as f: json.load(f)"
    rss, wall, _, _ = _time_v([sys.executable, "-c", code, str(cassette)], cassette.parent)
    return rss, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[1000, 10000])
    ap.add_argument("--repeats", type=int, default=1, help="measured replays per size")
    ap.add_argument("--keep", type=Path, default=None, help="build the suites here, keep them")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    print("cassettes BUILT BY REUSE of recorded responses (see the module docstring)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="logprob-eval-scale-") as tmp:
        top = args.keep or Path(tmp)
        for n in args.sizes:
            root = top / f"suite-{n}"
            shutil.rmtree(root, ignore_errors=True)
            cassette = build_suite(root, n)
            mb = cassette.stat().st_size / 1e6
            replay(root, "--update-baselines")  # the baseline; warms the file cache
            f_rss, f_wall = floor(cassette)
            for r in range(args.repeats):
                load = os.getloadavg()[0]
                rss, wall, cpu, out = replay(root)
                summary = out.strip().splitlines()[-1] if out.strip() else "?"
                rows.append((n, mb, rss, wall, f_rss, f_wall, load))
                print(
                    f"{n:>6} texts, cassette {mb:7.1f} MB: replay {rss:7.0f} MB peak RSS, "
                    f"{wall:6.1f} s ({cpu:5.1f} CPU s) | json.load {f_rss:6.0f} MB, "
                    f"{f_wall:5.1f} s | ratio {rss / f_rss:4.2f}x RSS, {wall / f_wall:5.1f}x "
                    f"time | load {load:.2f} (run {r + 1}: {summary})",
                    flush=True,
                )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    for n, _, rss, wall, f_rss, f_wall, _ in rows:
        print(
            f"RATIO {n} texts: replay / json.load: {rss / f_rss:.2f}x peak RSS "
            f"({rss:.0f} / {f_rss:.0f} MB), {wall / f_wall:.1f}x wall ({wall:.1f} / {f_wall:.1f} s)"
        )


if __name__ == "__main__":
    main()
