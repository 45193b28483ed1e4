"""An OpenAI-compatible HTTP server for the local model (``logprob-eval serve``).

Endpoints: ``GET /v1/models`` (its model lists ``"extensions": ["continuation_offset"]``,
so that any client can find out); ``POST /v1/completions`` (``prompt`` string or list,
``echo``, ``logprobs`` 0-20, ``max_tokens`` >= 0, ``temperature``, ``stop``, ``seed``, and
the extension ``continuation_offset``: see :meth:`_Handler._boundary`);
``POST /v1/chat/completions`` (``messages``, ``logprobs``, ``top_logprobs`` 0-20,
``max_tokens``/``max_completion_tokens``). Bad requests get OpenAI-shaped error bodies
with proper status codes. The request log holds method, path, status and time, never
headers. Standard library only: one model, one lock, threads for the sockets.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from ..errors import ConfigError
from .engine import Engine, Generation, Step, row_steps
from .requests import RequestError, int_field, stop_field, temperature_field

__all__ = ["RequestError", "make_server"]

_DIGITS = 6  # log-probs are rounded to 1e-6 in responses: compact cassettes, no lost signal


class _Handler:
    """The request logic, separate from the socket plumbing (tested directly)."""

    def __init__(self, engine: Engine, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name

    def _check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if not isinstance(model, str):
            raise RequestError(400, "'model' is required (a string)", param="model")
        if model != self.model_name:
            raise RequestError(
                404,
                f"The model '{model}' does not exist; this server serves '{self.model_name}'",
                param="model",
                code="model_not_found",
            )

    def _r(self, x: float) -> float:
        return round(x, _DIGITS)

    def _text(self, tok: int) -> str:
        return self.engine.piece(tok).decode("utf-8", errors="replace")

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model_name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "logprob-eval",
                    # what a client may send beyond the OpenAI protocol (clients probe this)
                    "extensions": ["continuation_offset"],
                }
            ],
        }

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_model(body)
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) for p in prompts)
        ):
            raise RequestError(
                400,
                "'prompt' must be a string or a non-empty list of strings",
                param="prompt",
                code="invalid_value",
            )
        if body.get("n", 1) != 1 or body.get("stream"):
            raise RequestError(400, "only n=1 and stream=false are supported", param="n")
        echo = body.get("echo", False)
        if not isinstance(echo, bool):
            raise RequestError(400, "'echo' must be a boolean", param="echo")
        k = int_field(body, "logprobs", None, 0, 20)
        max_tokens = int_field(body, "max_tokens", 16, 0, self.engine.n_ctx)
        assert max_tokens is not None
        temperature, stop = temperature_field(body), stop_field(body)
        seed = int_field(body, "seed", None, 0, 2**63 - 1)
        offset = self._continuation_offset(body, prompts, echo, k, max_tokens)
        # tokenizing and the prompt/continuation boundary need no lock
        items = [(p, t, *self._boundary(p, t, offset)) for p in prompts for t in [self._tokens(p)]]
        # under the lock only llama.cpp's evaluation; rows are reduced with numpy after it
        raw: list[tuple[np.ndarray | None, int, Generation | None]] = []
        with self.engine.lock:
            for _, tokens, boundary, first in items:
                if max_tokens == 0:
                    if echo and k is not None:
                        raw.append(
                            (self.engine.teacher_forced(tokens, boundary, first), first, None)
                        )
                    else:
                        raw.append((None, 1, None))
                else:
                    g = self.engine.generate(
                        tokens,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        seed=seed,
                        stop=stop,
                        echo_rows=echo and k is not None,
                    )
                    raw.append((g.prompt_rows, 1, g))
        choices, n_prompt, n_gen = [], 0, 0
        for i, ((p, tokens, _, _), (rows, first, gen)) in enumerate(zip(items, raw, strict=True)):
            echoed: list[Step | None] = []
            if rows is not None and echo and k is not None:
                echoed = [None] * (first - 1) + row_steps(rows, tokens[first:], k)
            steps = row_steps(gen.rows, gen.tokens, k or 0) if gen is not None else []
            finish = gen.finish if gen is not None else "length"
            n_prompt += len(tokens) - 1
            n_gen += len(steps)
            gen_text = b"".join(self.engine.piece(s.token) for s in steps).decode(
                "utf-8", errors="replace"
            )
            text = (p if echo else "") + gen_text
            logprobs = None
            if k is not None:
                logprobs = self._legacy_logprobs(p, tokens, echoed, steps, k, echo)
            choices.append(
                {"index": i, "text": text, "logprobs": logprobs, "finish_reason": finish}
            )
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": n_prompt,
                "completion_tokens": n_gen,
                "total_tokens": n_prompt + n_gen,
            },
        }

    def _continuation_offset(
        self, body: dict[str, Any], prompts: list[str], echo: bool, k: int | None, max_tokens: int
    ) -> int | None:
        """The ``continuation_offset`` extension: where the scored continuation begins."""
        offset = body.get("continuation_offset")
        if offset is None:
            return None
        shortest = min(len(p) for p in prompts)
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= shortest:
            raise RequestError(
                400,
                f"'continuation_offset' must be a character offset from 0 to {shortest} (the "
                f"length of the shortest prompt), got {offset!r}",
                param="continuation_offset",
                code="invalid_value",
            )
        if not echo or k is None or max_tokens != 0:
            raise RequestError(
                400,
                "'continuation_offset' is for teacher-forced scoring: send it with "
                "echo=true, logprobs and max_tokens=0",
                param="continuation_offset",
                code="invalid_value",
            )
        return offset

    def _boundary(self, prompt: str, tokens: list[int], offset: int | None) -> tuple[int, int]:
        """(tokens evaluated as the prompt, first token whose log-prob is returned).

        Without ``continuation_offset`` the whole text is the prompt and every token after
        BOS gets its log-prob. With it, the prompt is the tokens that end at or before the
        offset, and log-probs start at the first token that ends after it."""
        if offset is None:
            return len(tokens), 1
        starts = self._offsets(prompt, tokens)
        ends = [*starts[1:], len(prompt)]
        inside = sum(1 for e in ends if e <= offset)
        return 1 + inside, 1 + inside

    def _tokens(self, text: str) -> list[int]:
        tokens = self.engine.tokenize(text)
        if len(tokens) > self.engine.n_ctx:
            raise RequestError(
                400,
                f"This model's maximum context length is {self.engine.n_ctx}"
                f" tokens, but the prompt has {len(tokens)}",
                param="prompt",
                code="context_length_exceeded",
            )
        return tokens

    def _offsets(self, prompt: str, tokens: Sequence[int]) -> list[int]:
        """Character offset of each prompt token after BOS, in ``prompt``."""
        pieces = [self.engine.piece(t) for t in tokens[1:]]
        data = prompt.encode("utf-8")
        if b"".join(pieces) == data:
            char_at = [0] * (len(data) + 1)
            pos = 0
            for ci, ch in enumerate(prompt):
                n = len(ch.encode("utf-8"))
                for b in range(n):
                    char_at[pos + b] = ci
                pos += n
            char_at[len(data)] = len(prompt)
            out, byte = [], 0
            for p in pieces:
                out.append(char_at[byte])
                byte += len(p)
            return out
        # tokenizer does not round-trip piece by piece: measure detokenized prefixes
        return [
            len(
                bytes(self.engine.llm.detokenize(list(tokens[1 : j + 1]))).decode(
                    "utf-8", errors="ignore"
                )
            )
            for j in range(len(pieces))
        ]

    def _legacy_logprobs(
        self,
        prompt: str,
        tokens: list[int],
        echoed: list[Step | None],
        steps: list[Step],
        k: int,
        echo: bool,
    ) -> dict[str, Any]:
        toks: list[str] = []
        lps: list[float | None] = []
        tops: list[dict[str, float] | None] = []
        offs: list[int] = []
        if echo:
            offs.extend(self._offsets(prompt, tokens))
            for tok, s in zip(tokens[1:], echoed, strict=True):
                toks.append(self._text(tok))
                lps.append(None if s is None else self._r(s.logprob))
                tops.append(self._top_dict(s) if k and s is not None else None)
        base = len(prompt) if echo else 0
        for s in steps:
            offs.append(base)
            text = self._text(s.token)
            base += len(text)
            toks.append(text)
            lps.append(self._r(s.logprob))
            tops.append(self._top_dict(s) if k else None)
        return {
            "tokens": toks,
            "token_logprobs": lps,
            "top_logprobs": tops if k else None,
            "text_offset": offs,
        }

    def _top_dict(self, s: Step) -> dict[str, float]:
        out: dict[str, float] = {}
        for tok, lp in s.top:
            text = self._text(tok)
            if text not in out:  # two ids decoding alike: keep the likelier (listed first)
                out[text] = self._r(lp)
        return out

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_model(body)
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
        ):
            raise RequestError(
                400,
                "'messages' must be a non-empty list of {role, content} "
                "objects with string content",
                param="messages",
            )
        want = body.get("logprobs", False)
        if not isinstance(want, bool):
            raise RequestError(400, "'logprobs' must be a boolean", param="logprobs")
        k = int_field(body, "top_logprobs", 0, 0, 20) or 0
        if k and not want:
            raise RequestError(
                400, "'top_logprobs' requires 'logprobs': true", param="top_logprobs"
            )
        mt = body.get("max_completion_tokens", body.get("max_tokens", 16))
        max_tokens = int_field({"max_tokens": mt}, "max_tokens", 16, 1, self.engine.n_ctx) or 16
        # a base model has no chat format: the conversation is its contents, one per paragraph
        prompt = "\n\n".join(m["content"] for m in messages)
        temperature, seed, stop = (
            temperature_field(body),
            int_field(body, "seed", None, 0, 2**63 - 1),
            stop_field(body),
        )
        tokens = self._tokens(prompt)
        with self.engine.lock:
            gen = self.engine.generate(
                tokens, max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop
            )
        steps, finish = row_steps(gen.rows, gen.tokens, k), gen.finish
        content = b"".join(self.engine.piece(s.token) for s in steps).decode(
            "utf-8", errors="replace"
        )
        logprobs = None
        if want:
            logprobs = {"content": [self._chat_entry(s) for s in steps], "refusal": None}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": logprobs,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": len(tokens) - 1,
                "completion_tokens": len(steps),
                "total_tokens": len(tokens) - 1 + len(steps),
            },
        }

    def _chat_entry(self, s: Step) -> dict[str, Any]:
        piece = self.engine.piece(s.token)
        return {
            "token": self._text(s.token),
            "logprob": self._r(s.logprob),
            "bytes": list(piece),
            "top_logprobs": [
                {
                    "token": self._text(t),
                    "logprob": self._r(lp),
                    "bytes": list(self.engine.piece(t)),
                }
                for t, lp in s.top
            ],
        }


def make_server(
    engine: Engine, model_name: str, host: str = "127.0.0.1", port: int = 0, *, log: Any = None
) -> ThreadingHTTPServer:
    """A ready-to-``serve_forever`` HTTP server for ``engine``."""
    logic = _Handler(engine, model_name)
    stream = log if log is not None else sys.stderr
    routes = {
        ("GET", "/v1/models"): lambda body: logic.models(),
        ("POST", "/v1/completions"): logic.completions,
        ("POST", "/v1/chat/completions"): logic.chat,
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            start = time.perf_counter()
            path = self.path.split("?", 1)[0].rstrip("/")
            status = 200
            try:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                route = routes.get((method, path))
                if route is None:
                    if any(p == path for _, p in routes):
                        raise RequestError(405, f"method {method} not allowed on {path}")
                    raise RequestError(
                        404,
                        f"unknown endpoint {method} {path}; this server has "
                        "/v1/models, /v1/completions, /v1/chat/completions",
                        code="not_found",
                    )
                body: dict[str, Any] = {}
                if method == "POST":
                    try:
                        body = json.loads(raw or b"null")
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        raise RequestError(400, f"request body is not valid JSON: {exc}") from None
                    if not isinstance(body, dict):
                        raise RequestError(400, "request body must be a JSON object")
                result = route(body)
            except RequestError as exc:
                status = exc.status
                result = exc.body()
            except ConfigError as exc:
                status, result = 400, RequestError(400, str(exc)).body()
            except Exception as exc:  # keep serving; say what broke
                status = 500
                result = RequestError(
                    500, f"internal error: {type(exc).__name__}: {exc}", kind="server_error"
                ).body()
            self._send(status, result)
            print(
                f"{method} {path} {status} {time.perf_counter() - start:.3f}s",
                file=stream,
                flush=True,
            )

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def log_message(self, format: str, *args: Any) -> None:  # our own log line instead
            pass

    return ThreadingHTTPServer((host, port), Handler)
