"""A persistent response cache for live runs (SQLite, safe across threads and processes).

Keys are SHA-256 digests of the backend spec, the endpoint and the canonical JSON payload;
values are the decoded JSON responses. A rerun of the same scoring makes no request; a run
killed half-way resumes with only the missing requests. Only successful responses are
stored. Nothing secret is in a key or a value (payloads carry no credentials).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "request_key"]


def request_key(backend: str, endpoint: str, payload: Any) -> str:
    blob = json.dumps(
        [backend, endpoint, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """``get``/``put`` JSON responses by request key; one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix != ".sqlite":
            self.path = self.path / "responses.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT)")
        self.hits = 0
        self.misses = 0

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, key: str) -> Any | None:
        row = self._conn().execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, body: Any) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO responses (key, body) VALUES (?, ?)",
            (key, json.dumps(body, ensure_ascii=False)),
        )

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM responses").fetchone()[0])
