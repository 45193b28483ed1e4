"""Replay at scale: 1,000 requests from one 1,000-interaction cassette, with vcrpy's
built-in ``body`` matcher vs logprob-eval's canonical-body matcher (cassettes.py), same
cassette, same requests, one run. Both must still fail on a changed body.

The cassette is BENCHMARK DATA derived from a recorded one: the interactions of a committed
cassette are repeated with a counter appended to each prompt (so every body is distinct),
in vcrpy's default YAML format for the baseline and in ours for logprob-eval; responses are
the recorded ones. It is written to a temporary directory, never into cassettes/.

Run: python benchmarks/bench_replay.py          (last line: the ratio)
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import requests
import vcr
from vcr.errors import CannotOverwriteExistingCassetteException

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logprob_eval.evalsuite.cassettes import make_vcr, use_cassette

N = 1000
ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "cassettes" / "local-gemma-3-270m-generation-simple-normal.json"


def derived_interactions() -> list[dict]:
    recorded = json.loads(SOURCE.read_text())["interactions"]
    out = []
    for i in range(N):
        it = copy.deepcopy(recorded[i % len(recorded)])
        body = it["request"]["body"]["json"]
        body["prompt"] = f"{body['prompt']} #{i}"
        out.append(it)
    return out


def write_cassettes(tmp: Path, interactions: list[dict]) -> tuple[Path, Path]:
    ours = tmp / "ours.json"
    ours.write_text(json.dumps({"version": 1, "interactions": interactions}))
    # the same interactions in vcrpy's own format (YAML, bodies as strings)
    plain = []
    for it in interactions:
        req = dict(it["request"])
        req["body"] = json.dumps(req["body"]["json"])
        req["headers"] = {"Content-Type": ["application/json"]}
        resp = dict(it["response"])
        resp["body"] = {"string": json.dumps(resp["body"]["json"])}
        plain.append({"request": req, "response": resp})
    import yaml

    base = tmp / "baseline.yaml"
    base.write_text(yaml.safe_dump({"version": 1, "interactions": plain}))
    return ours, base


def replay(cassette_ctx, bodies: list[dict], uri: str) -> float:
    with cassette_ctx:
        s = requests.Session()
        start = time.perf_counter()
        for b in bodies:
            r = s.post(uri, json=b, timeout=5)
            assert r.status_code == 200
        return len(bodies) / (time.perf_counter() - start)


def fails_on_changed_body(cassette_ctx, body: dict, uri: str) -> bool:
    changed = dict(body, temperature=0.5)
    try:
        with cassette_ctx:
            requests.post(uri, json=changed, timeout=5)
    except CannotOverwriteExistingCassetteException:
        return True
    return False


def main() -> None:
    interactions = derived_interactions()
    bodies = [it["request"]["body"]["json"] for it in interactions]
    uri = interactions[0]["request"]["uri"]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ours_path, base_path = write_cassettes(tmp, interactions)
        base_vcr = vcr.VCR(
            cassette_library_dir=str(tmp), record_mode="none", match_on=("method", "path", "body")
        )
        ours_vcr = make_vcr(tmp, "none")
        ours = replay(use_cassette(ours_vcr, ours_path.name), bodies, uri)
        base = replay(base_vcr.use_cassette(base_path.name), bodies, uri)
        assert fails_on_changed_body(use_cassette(ours_vcr, ours_path.name), bodies[5], uri)
        assert fails_on_changed_body(base_vcr.use_cassette(base_path.name), bodies[5], uri)
    print(f"{N} requests replayed from a {N}-interaction cassette (derived benchmark data)")
    print(f"vcrpy built-in body matcher:     {base:8.1f} requests/s")
    print(f"logprob-eval canonical matcher:  {ours:8.1f} requests/s")
    print("both fail on a changed body: yes")
    print(f"RATIO replay, canonical vs vcrpy body matcher: {ours / base:.1f}x faster")


if __name__ == "__main__":
    main()
