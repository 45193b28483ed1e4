"""Matcher throughput: responses per second for 20 positions x top-20 x 10 labels,
logprob-eval's token-path matcher vs the notebook's greedy matcher (tests/notebook_matcher.py)
on the same inputs. Correct semantics may cost a little; more than 2x slower is a defect.

Inputs are synthetic responses (seeded): answers that spell labels in one or several tokens,
separators, and top-20 alternatives drawn from label pieces and filler words.

Run: python benchmarks/bench_matcher.py          (last line: the ratio)
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logprob_eval import match_labels
from logprob_eval.parsing import parse_positions
from logprob_eval.prompts import TOPICS
from tests.notebook_matcher import notebook_match

N_RESPONSES = 2000
POSITIONS, TOP_K = 20, 20
FILLER = [" the", " of", " and", ",", "\n", " is", " about", " a", " text", ".", " it", " which"]


def pieces(label: str) -> list[str]:
    cut = max(1, len(label) // 2)
    return [" " + label, " " + label[:cut], label[cut:], label, " " + label.lower()]


def response(rng: random.Random) -> list[dict]:
    vocab = [p for t in TOPICS for p in pieces(t)] + FILLER
    answer: list[str] = []
    while len(answer) < POSITIONS:
        lab = rng.choice(TOPICS)
        answer += [" " + lab[:3], lab[3:]] if rng.random() < 0.3 and len(lab) > 4 else [" " + lab]
        answer.append(rng.choice([",", " and", "\n"]))
    out = []
    for tok in answer[:POSITIONS]:
        lps = sorted((math.log(rng.random() + 1e-9) * 3 for _ in range(TOP_K - 1)), reverse=True)
        alts = rng.sample([v for v in vocab if v != tok], TOP_K - 1)
        lp = -abs(rng.gauss(0.3, 0.3))
        top = [{"token": a, "logprob": min(x, lp)} for a, x in zip(alts, lps, strict=True)]
        out.append(
            {"token": tok, "logprob": lp, "top_logprobs": [{"token": tok, "logprob": lp}, *top]}
        )
    return out


def rate(fn, data) -> float:
    start = time.perf_counter()
    for r in data:
        fn(r)
    return len(data) / (time.perf_counter() - start)


def main() -> None:
    rng = random.Random(0)
    data = [response(rng) for _ in range(N_RESPONSES)]
    labels = list(TOPICS)
    parsed = [parse_positions(r) for r in data]
    rate(lambda r: match_labels(labels, r), data[:100])  # warm-up
    ours_dicts = rate(lambda r: match_labels(labels, r), data)
    ours_records = rate(lambda r: match_labels(labels, r), parsed)
    greedy = rate(lambda r: notebook_match(labels, r), data)
    print(f"{N_RESPONSES} responses, {POSITIONS} positions x top-{TOP_K} x {len(labels)} labels")
    print(f"notebook greedy matcher:           {greedy:8.0f} responses/s")
    print(f"match_labels (dict input, parsed): {ours_dicts:8.0f} responses/s")
    print(f"match_labels (Position records):   {ours_records:8.0f} responses/s")
    slower = greedy / ours_dicts
    verdict = f"{slower:.2f}x slower" if slower > 1 else f"{1 / slower:.2f}x faster"
    print(f"RATIO match_labels vs notebook greedy (dict input): {verdict}")


if __name__ == "__main__":
    main()
