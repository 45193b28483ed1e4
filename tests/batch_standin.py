"""A loopback stand-in of OpenAI's Files and Batch APIs, written from the provider's API
reference (not a recording): ``POST /v1/files`` (multipart, ``purpose=batch``),
``POST /v1/batches``, ``GET /v1/batches/{id}``, ``GET /v1/files/{id}/content``.

Each poll of a batch advances it by ``step`` lines; when all have run it is ``completed``
with an output file (status 200 lines) and an error file. Lines fail by a fixed rule on
their ``custom_id`` (:func:`failure`, or the rule passed as ``fail``): some with an HTTP
400 body, some with a line ``error`` (as for expired lines). Successful lines answer with
OpenAI's chat shape.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from werkzeug import Request, Response

from .api_bodies import OPENAI_CHAT


def failure(custom_id: str) -> str | None:
    """``"400"``, ``"expired"`` or None (about 8% of lines fail)."""
    h = int(hashlib.sha256(custom_id.encode()).hexdigest(), 16) % 100
    return "400" if h < 5 else "expired" if h < 8 else None


class BatchStandIn:
    def __init__(self, step: int = 10, fail: Callable[[str], str | None] = failure) -> None:
        self.step = step
        self.fail = fail
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        with self.lock:
            return self._handle(request)

    def _json(self, body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _handle(self, request: Request) -> Response:
        path = request.path
        if request.method == "POST" and path == "/v1/files":
            self.calls["upload"] += 1
            assert request.form["purpose"] == "batch"
            fid = f"file-in-{len(self.files) + 1}"
            self.files[fid] = request.files["file"].read()
            return self._json(
                {
                    "id": fid,
                    "object": "file",
                    "purpose": "batch",
                    "bytes": len(self.files[fid]),
                    "filename": request.files["file"].filename,
                    "created_at": 0,
                    "status": "processed",
                }
            )
        if request.method == "POST" and path == "/v1/batches":
            self.calls["create"] += 1
            body = json.loads(request.get_data())
            lines = [json.loads(x) for x in self.files[body["input_file_id"]].splitlines()]
            assert all(x["url"] == body["endpoint"] for x in lines)
            bid = f"batch_{len(self.batches) + 1}"
            self.batches[bid] = {"lines": lines, "done": 0, "body": body, "out": None}
            return self._json(self._batch(bid, "validating"))
        if request.method == "GET" and path.startswith("/v1/batches/"):
            self.calls["poll"] += 1
            bid = path.rsplit("/", 1)[1]
            b = self.batches[bid]
            b["done"] = min(len(b["lines"]), b["done"] + self.step)
            if b["done"] < len(b["lines"]):
                return self._json(self._batch(bid, "in_progress"))
            if b["out"] is None:
                b["out"] = self._finish(bid)
            return self._json(self._batch(bid, "completed"))
        if request.method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            self.calls["download"] += 1
            return Response(self.files[path.split("/")[3]], content_type="application/jsonl")
        return self._json({"error": {"message": f"no route {path}"}}, 404)

    def _finish(self, bid: str) -> tuple[str, str]:
        ok, bad = [], []
        for i, line in enumerate(self.batches[bid]["lines"]):
            cid, kind = line["custom_id"], self.fail(line["custom_id"])
            entry: dict[str, Any] = {"id": f"batch_req_{i}", "custom_id": cid, "error": None}
            if kind == "400":
                entry["response"] = {
                    "status_code": 400,
                    "request_id": f"req_{i}",
                    "body": {
                        "error": {
                            "message": "Invalid 'messages[0].content'",
                            "type": "invalid_request_error",
                            "code": None,
                        }
                    },
                }
                bad.append(entry)
            elif kind == "expired":
                entry["response"] = None
                entry["error"] = {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the "
                    "completion window expired.",
                }
                bad.append(entry)
            else:
                entry["response"] = {
                    "status_code": 200,
                    "request_id": f"req_{i}",
                    "body": OPENAI_CHAT,
                }
                ok.append(entry)
        out, err = f"file-out-{bid}", f"file-err-{bid}"
        self.files[out] = "".join(json.dumps(x) + "\n" for x in ok).encode()
        self.files[err] = "".join(json.dumps(x) + "\n" for x in bad).encode()
        return out, err

    def _batch(self, bid: str, status: str) -> dict[str, Any]:
        b = self.batches[bid]
        n, done = len(b["lines"]), b["done"]
        failed = sum(self.fail(x["custom_id"]) is not None for x in b["lines"][:done])
        out, err = b["out"] or (None, None)
        return {
            "id": bid,
            "object": "batch",
            "endpoint": b["body"]["endpoint"],
            "input_file_id": b["body"]["input_file_id"],
            "completion_window": "24h",
            "status": status,
            "created_at": 0,
            "output_file_id": out,
            "error_file_id": err,
            "errors": None,
            "request_counts": {"total": n, "completed": done - failed, "failed": failed},
        }
