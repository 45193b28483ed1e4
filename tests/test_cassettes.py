"""Cassette storage, matching and the secret scan of every committed cassette."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logprob_eval.evalsuite.cassettes import (
    JsonSerializer,
    body_key,
    explain_miss,
    match_canonical_body,
    match_path,
)
from logprob_eval.redact import KEY_PATTERN, redact

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "cassettes").glob("**/*.json"))


class Req:
    def __init__(self, body: str, uri: str = "http://127.0.0.1:1/v1/completions") -> None:
        self.body = body.encode()
        self.uri = uri


def _cassette(req_body: str, resp_body: str) -> dict:
    return {
        "version": 1,
        "interactions": [
            {
                "request": {
                    "method": "POST",
                    "uri": "http://h/v1/completions",
                    "body": req_body,
                    "headers": {},
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {},
                    "body": {"string": resp_body},
                },
            }
        ],
    }


def test_serializer_round_trips_and_stores_json_decoded():
    req = json.dumps({"model": "m", "prompt": ["a", "b"], "echo": True})
    resp = json.dumps({"choices": [{"index": 0, "logprobs": {"token_logprobs": [-1.5, -0.25]}}]})
    text = JsonSerializer.serialize(_cassette(req, resp))
    assert '"prompt": ["a","b"]' in text  # decoded, scalar lists on one line
    back = JsonSerializer.deserialize(text)
    it = back["interactions"][0]
    assert json.loads(it["request"]["body"]) == json.loads(req)
    assert json.loads(it["response"]["body"]["string"]) == json.loads(resp)


def test_serializer_refuses_key_shaped_strings():
    leaked = json.dumps({"error": "Incorrect API key provided: sk-" + "a" * 30})
    with pytest.raises(ValueError, match="key-shaped"):
        JsonSerializer.serialize(_cassette("{}", leaked))


def test_matching_ignores_host_and_key_order_but_not_content():
    a = Req('{"model": "m", "prompt": "x"}', "http://127.0.0.1:1111/v1/completions")
    b = Req('{"prompt":"x","model":"m"}', "http://127.0.0.1:2222/v1/completions")
    match_path(a, b)
    match_canonical_body(a, b)
    assert body_key(a) == body_key(b)
    with pytest.raises(AssertionError):
        match_canonical_body(a, Req('{"model": "m", "prompt": "y"}'))
    with pytest.raises(AssertionError):
        match_path(a, Req("{}", "http://127.0.0.1:1/v1/chat/completions"))


def test_explain_miss_names_the_changed_field(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        JsonSerializer.serialize(
            _cassette(json.dumps({"model": "m", "prompt": "Text: hi\nTopic:"}), "{}")
        )
    )
    msg = explain_miss(path, json.dumps({"model": "m", "prompt": "Text: hi\nLabel:"}))
    assert "prompt" in msg and "Topic:" in msg and "Label:" in msg
    assert "no cassette" in explain_miss(tmp_path / "none.json", "{}")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (("Text", "a, b", "a"), ("Ticket", "a, b", "a")),  # the template's first word
        # the label phrasing, before and after the text (an exact request echoes the label)
        (("Text", "Heizung, Lärm", "Heizung"), ("Text", "heating, noise", "heating")),
    ],
)
def test_explain_miss_compares_with_the_same_text_when_the_wording_changes(tmp_path, old, new):
    # every recorded request differs from the new one in the same field (the prompt); the
    # closest is the same text under the old wording, not the cassette's first or shortest
    def body(text: str, head: str, labels: str, label: str) -> str:
        prompt = f"Labels: {labels}\n{head}: {text}\nLabel: {label}"
        return json.dumps({"model": "m", "prompt": prompt})

    texts = ["Cold.", "The key broke in the lock of the cellar door.", "Water drips from it."]
    interaction = _cassette("{}", "{}")["interactions"][0]
    cassette = _cassette("{}", "{}")
    cassette["interactions"] = [
        {**interaction, "request": {**interaction["request"], "body": body(t, *old)}} for t in texts
    ]
    path = tmp_path / "c.json"
    path.write_text(JsonSerializer.serialize(cassette))
    for text in texts:
        msg = explain_miss(path, body(text, *new))
        assert "differs in prompt" in msg, msg
        assert all(other not in msg for other in texts if other != text), msg


def test_redact():
    assert redact("key sk-abcdefghijklmnop1234 and Bearer abcdefghijklmnop") == (
        "key [REDACTED] and [REDACTED]"
    )
    for keyed in (
        '"sk-proj-abcdefgh12345678"',
        "OPENAI_API_KEY=sk-abcdefgh1234",
        "(sk-abcdefgh12)",
    ):
        assert "sk-" not in redact(keyed), keyed
    assert redact("a key AIzaSyA1234567890abcdefghij here") == "a key [REDACTED] here"


@pytest.mark.parametrize(
    "text",
    [
        "local-gemma-3-270m-generation-task-across-label_sets",  # a case id of the suite
        "risk-assessment-model",
        "disk-usage-report-2026",
        "kAIzaSyA1234567890abcdefghij",
    ],
)
def test_redact_leaves_words_that_merely_contain_a_key_prefix(text):
    assert redact(text) == text


@pytest.mark.skipif(not COMMITTED, reason="no committed cassettes")
@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_cassettes_hold_no_secrets(path):
    text = path.read_text(encoding="utf-8")
    found = KEY_PATTERN.search(text)
    assert found is None, f"{path.name} holds a key-shaped string at char {found.start()}"
    data = json.loads(text)
    for it in data["interactions"]:
        for side in ("request", "response"):
            names = {h.lower() for h in it[side].get("headers", {})}
            assert names <= {"content-type"}, f"{path.name}: unexpected headers {names}"


def test_committed_cassettes_are_compact():
    total = sum(p.stat().st_size for p in COMMITTED)
    assert total < 40 * 1024 * 1024, f"cassettes take {total / 2**20:.1f} MiB"
