"""OpenAI-compatible ``/v1/completions`` servers (vLLM, llama-cpp-python, llama.cpp's
``llama-server``, ``logprob-eval serve``).

``exact`` method: teacher-forced log P(label | prompt). Every label is appended to the
prompt, the server echoes the prompt log-probs (``echo=true, logprobs=0``) and the label's
own tokens are found by text offsets. A token that straddles the prompt/label boundary is
included and flagged in the score's note. What servers differ in, decided once per backend
(by a probe unless the option is set):

* **lists of prompts** (``batch_prompts``): all of a text's labels go in one request as a
  list; a server that refuses a list (llama-cpp-python's server answers HTTP 500) while it
  answers the first prompt alone gets one prompt per request from then on.
* **where the prompt ends** (``continuation_offset``): a server that lists the extension in
  ``GET /v1/models`` (``logprob-eval serve``) is told the prompt's length; it then
  evaluates the prompt as a generation request would and returns only the labels'
  log-probs. Other servers evaluate the whole text as one prompt (see the README on
  batch-size dependence).
* **``max_tokens``**: 0 ("generate nothing") only where the server advertises the
  extension; elsewhere 0 may mean "until the context is full" (llama-cpp-python), so one
  token is generated and ignored (it lies beyond the label).
* **no echo** (llama-server): a server that refuses ``echo`` or answers without the
  prompt fails the first request with :class:`ProtocolUnsupportedError`, naming the
  method that works there.

``generation`` method: one completion with ``logprobs=top_logprobs`` read by the matcher
(legacy ``tokens``/``token_logprobs`` lists, or llama-server's ``logprobs.content``).

``forced`` method (:mod:`logprob_eval.scoring.forced`): one one-token completion per distinct label
prefix, each label token read from its top log-probs (``top_logprobs`` first, ten times more
up to ``max_top_logprobs`` where a full list lacks it). Token ids where the server has
``POST /tokenize`` (llama-server: decided by the first tokenize request, or
``forced_prompt="ids"|"text"``), text elsewhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal
from urllib.parse import urljoin

from ..errors import BackendError, ConfigError, ProtocolUnsupportedError, ResponseFormatError
from ..scoring.echo import align_echo, echoed_label_score
from ..scoring.parsing import EchoedToken, parse_completion_echo, parse_completion_positions
from ..scoring.records import LabelScore, Method
from ._openai_client import call_json, make_client
from .base import Backend

__all__ = ["CONTINUATION_OFFSET", "Normalize", "OpenAICompatibleBackend", "label_continuation"]

Normalize = Literal["none", "token", "byte"]
ForcedPrompt = Literal["ids", "text"]
CONTINUATION_OFFSET = "continuation_offset"
"""The extension a server lists under ``extensions`` of its model in ``GET /v1/models``."""
_EXTENSIONS = (CONTINUATION_OFFSET,)  # body fields the OpenAI SDK does not know
_log = logging.getLogger(__name__)
_OPENERS = "\"'([{<`“‘"


def label_continuation(prompt: str, phrase: str) -> str:
    """The text appended to ``prompt`` for ``phrase``: a space unless the prompt already
    ends in whitespace or an opening quote/bracket (``{"topic": "`` + ``Sports``)."""
    if not prompt or prompt[-1].isspace() or prompt[-1] in _OPENERS:
        return phrase
    return " " + phrase


class OpenAICompatibleBackend(Backend):
    """``openai-compatible:NAME@http://host:port/v1``."""

    provider = "openai-compatible"
    methods: ClassVar[tuple[Method, ...]] = ("exact", "generation", "forced")

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        method: Method = "exact",
        api_key: str | None = None,
        normalize: Normalize = "none",
        top_logprobs: int = 20,
        max_tokens: int = 16,
        batch_prompts: bool | None = None,
        continuation_offset: bool | None = None,
        max_top_logprobs: int = 10_000,
        forced_prompt: ForcedPrompt | None = None,
        timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, method=method, timeout=timeout, **kwargs)
        if normalize not in ("none", "token", "byte"):
            raise ConfigError(f"normalize={normalize!r} must be 'none', 'token' or 'byte'")
        if not 0 <= top_logprobs <= 20:
            raise ConfigError(f"top_logprobs={top_logprobs!r} must be between 0 and 20")
        if not 1 <= max_top_logprobs <= 100_000 or (method == "forced" and top_logprobs < 1):
            raise ConfigError(
                f"max_top_logprobs={max_top_logprobs!r} (and top_logprobs={top_logprobs!r} for "
                "the forced method) must be between 1 and 100000; set max_top_logprobs to a "
                "server's cap (20 on OpenAI), or larger where it has none (llama-server)"
            )
        if forced_prompt not in (None, "ids", "text"):
            raise ConfigError(f"forced_prompt={forced_prompt!r} must be 'ids' or 'text'")
        self.max_top_logprobs = max(max_top_logprobs, top_logprobs)
        self.forced_prompt: ForcedPrompt | None = forced_prompt
        self._cap_why = "max_top_logprobs"
        self.base_url = base_url
        self.normalize: Normalize = normalize
        self.top_logprobs = top_logprobs
        self.max_tokens = max_tokens
        # None: decided by a probe at the first exact request (module doc)
        self.batch_prompts = batch_prompts
        self.continuation_offset = continuation_offset
        self._decide = threading.Lock()
        self._client = make_client(self.spec, base_url=base_url, api_key=api_key, timeout=timeout)

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.model}@{self.base_url}"

    # payloads (public so tests and the cassette layer can see exactly what is sent) ------

    def exact_payload(self, prompts: list[str], offset: int | None = None) -> dict[str, Any]:
        """``offset``: where the continuation begins in every prompt, sent as the
        ``continuation_offset`` extension when the server understands it (``logprob-eval
        serve``): only the continuation's log-probs come back, and the text before it is
        evaluated as a generation request for it would be. Only there ``max_tokens`` is 0:
        elsewhere 0 may mean "no limit", so one token is generated (and not read)."""
        extension = bool(self.continuation_offset) and offset is not None
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": prompts if len(prompts) != 1 else prompts[0],
            "echo": True,
            "logprobs": 0,
            "max_tokens": 0 if extension else 1,
            "temperature": 0,
        }
        if extension:
            payload[CONTINUATION_OFFSET] = offset
        return payload

    def generation_payload(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "prompt": prompt,
            "logprobs": self.top_logprobs,
            "max_tokens": self.max_tokens,
            "temperature": 0,
        }

    def forced_payload(self, prompt: str | list[int], k: int) -> dict[str, Any]:
        """One generated token with the top ``k`` log-probs after ``prompt`` (text or ids)."""
        return {
            "model": self.model,
            "prompt": prompt,
            "logprobs": k,
            "max_tokens": 1,
            "temperature": 0,
        }

    def score(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        if self.method == "generation":
            return self._score_generation(prompt, labels)
        if self.method == "forced":
            return self._score_forced(prompt, labels)
        return self._score_exact(prompt, labels)

    def _send(self, payload: dict[str, Any]) -> Any:
        create = self._client.completions.with_raw_response.create
        sdk = {k: v for k, v in payload.items() if k not in _EXTENSIONS}
        extra = {k: v for k, v in payload.items() if k in _EXTENSIONS}
        if extra:
            sdk["extra_body"] = extra
        return self._request(
            "completions", payload, lambda: call_json(self.spec, self._client, create, sdk)
        )

    def _score_generation(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        body = self._send(self.generation_payload(prompt))
        return self._match_generated(parse_completion_positions, body, labels)

    def _score_exact(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        labels = list(labels)
        if len(set(labels)) != len(labels) or not all(isinstance(x, str) and x for x in labels):
            raise ConfigError(f"labels {labels!r} must be distinct non-empty strings")
        conts = [label_continuation(prompt, lab) for lab in labels]
        return dict(zip(labels, self.teacher_forced(prompt, conts, labels=labels), strict=True))

    # forced continuation (module doc) ---------------------------------------------------

    def _score_forced(self, prompt: str, labels: Sequence[str]) -> dict[str, LabelScore]:
        from ..scoring.forced import forced_scores_ids, forced_scores_text

        labels = list(labels)
        if len(set(labels)) != len(labels) or not all(isinstance(x, str) and x for x in labels):
            raise ConfigError(f"labels {labels!r} must be distinct non-empty strings")
        conts = [label_continuation(prompt, lab) for lab in labels]
        top, cap = self.top_logprobs, self.max_top_logprobs

        def complete(p: str | list[int], k: int) -> Any:
            return self._send(self.forced_payload(p, k))

        try:
            prompt_tokens = self._tokens(prompt) if self.forced_prompt != "text" else None
            if prompt_tokens is not None:
                known = {prompt: prompt_tokens}

                def tokenize(text: str) -> list[tuple[int, str]]:
                    return known.pop(text, None) or self._tokens(text) or []

                scores = forced_scores_ids(
                    labels,
                    prompt,
                    conts,
                    tokenize=tokenize,
                    complete=complete,
                    top_logprobs=top,
                    max_top_logprobs=cap,
                    cap_why=self._cap_why,
                    on_cap=self._capped,
                )
            else:
                scores = forced_scores_text(
                    labels,
                    prompt,
                    conts,
                    complete=complete,
                    top_logprobs=top,
                    max_top_logprobs=cap,
                    cap_why=self._cap_why,
                    on_cap=self._capped,
                )
        except ResponseFormatError as exc:
            raise self._format_error(exc) from None
        return dict(zip(labels, scores, strict=True))

    def _capped(self, k: int) -> None:
        """The server refused a list longer than ``k``: ask no more from now on."""
        self.max_top_logprobs = k
        self._cap_why = f"the server refused more than {k}"

    def _tokens(self, text: str) -> list[tuple[int, str]] | None:
        """``(id, piece)`` of ``text`` from the server's ``POST /tokenize`` (llama-server),
        BOS included; None where the server has none (decided once: ``forced_prompt``)."""
        url = urljoin(self.base_url.rstrip("/") + "/", "/tokenize")
        payload = {"content": text, "add_special": True, "with_pieces": True}

        def send() -> Any:
            post = self._client.post
            options = {"cast_to": _response_class(), "body": payload}
            return call_json(self.spec, self._client, lambda **kw: _Raw(post(url, **kw)), options)

        try:
            body = self._request("tokenize", payload, send)
        except BackendError as exc:
            if self.forced_prompt is None and exc.status in (404, 405, 501):
                self.forced_prompt = "text"
                return None
            raise
        tokens = body.get("tokens") if isinstance(body, Mapping) else None
        if not isinstance(tokens, list) or not all(
            isinstance(t, Mapping) and isinstance(t.get("id"), int) for t in tokens
        ):
            raise self._format_error(
                ResponseFormatError(
                    "POST /tokenize answered without a list of {id, piece} tokens; set "
                    "forced_prompt='text' for this server",
                    field="tokens",
                )
            )
        self.forced_prompt = "ids"
        return [(t["id"], _piece(t.get("piece"))) for t in tokens]

    def teacher_forced(
        self, prompt: str, continuations: Sequence[str], *, labels: Sequence[str] | None = None
    ) -> list[LabelScore]:
        """log P(continuation | prompt) for each continuation, exactly as written (no space
        added), from echoed prompt log-probs; ``labels`` name the scores (default: the
        continuations)."""
        self._probe_extension()
        fulls = [prompt + c for c in continuations]
        echoed = self._echo_all(fulls, len(prompt))
        names = list(labels) if labels is not None else list(continuations)
        return [
            self._label_score(name, prompt, full, *echo)
            for name, full, echo in zip(names, fulls, echoed, strict=True)
        ]

    # exact scoring: what the server supports ------------------------------------------

    def _probe_extension(self) -> None:
        """Ask ``GET /models`` once whether the server knows ``continuation_offset``."""
        if self.continuation_offset is not None:
            return
        with self._decide:
            if self.continuation_offset is not None:
                return
            raw = self._client.models.with_raw_response.list
            try:
                body = call_json(self.spec, self._client, lambda **_: raw(), {})
            except BackendError:  # no /models there: a plain OpenAI-compatible server
                body = None
            self.continuation_offset = _lists_extension(body, self.model)

    def _echo_all(self, fulls: list[str], offset: int) -> list[tuple[str, list[EchoedToken]]]:
        """The echo of every text: one list request, or one request per text where the
        server refuses lists (decided on the first list, see the module doc)."""
        if self.batch_prompts is False or len(fulls) == 1:
            return [self._echo(f, offset) for f in fulls]
        if self.batch_prompts:
            return self._echo_list(fulls, offset)
        with self._decide:
            if self.batch_prompts is None:
                try:
                    answer = self._echo_list(fulls, offset)
                except ProtocolUnsupportedError:
                    raise
                except BackendError as exc:
                    if exc.status is None or exc.status in (401, 403, 404, 429):
                        raise
                    first = self._echo(fulls[0], offset)  # its error is the one to report
                    self.batch_prompts = False
                    _log.info(
                        "%s refuses a list of %d prompts (HTTP %s: %r) but answers one: "
                        "sending one prompt per request (batch_prompts=False skips this probe)",
                        self.spec,
                        len(fulls),
                        exc.status,
                        exc.server_message,
                    )
                    return [first, *(self._echo(f, offset) for f in fulls[1:])]
                self.batch_prompts = True
                return answer
        return self._echo_all(fulls, offset)

    def _echo_list(self, fulls: list[str], offset: int) -> list[tuple[str, list[EchoedToken]]]:
        parsed = self._echo_request(fulls, offset)
        missing = [i for i in range(len(fulls)) if i not in parsed]
        if missing:
            raise self._format_error(
                ResponseFormatError(
                    f"response has {len(parsed)} choices for {len(fulls)} prompts (missing "
                    f"index {missing[0]}): the server does not answer a list of prompts "
                    "choice by choice; set batch_prompts=False (one prompt per request)",
                    field="choices",
                )
            )
        return [parsed[i] for i in range(len(fulls))]

    def _echo(self, full: str, offset: int) -> tuple[str, list[EchoedToken]]:
        parsed = self._echo_request([full], offset)
        if 0 not in parsed:
            raise self._format_error(
                ResponseFormatError("response has no choice 0", field="choices")
            )
        return parsed[0]

    def _echo_request(self, fulls: list[str], offset: int) -> dict[int, Any]:
        try:
            body = self._send(self.exact_payload(fulls, offset))
        except ProtocolUnsupportedError:
            raise
        except BackendError as exc:
            said = exc.server_message
            if "echo" in said.lower() and exc.status is not None:
                raise self._no_echo(f"it refused echo=true (HTTP {exc.status}: {said})") from None
            raise
        self._check_echoed(body, fulls)
        try:
            return parse_completion_echo(body)
        except ResponseFormatError as exc:
            raise self._format_error(exc) from None

    def _check_echoed(self, body: Any, fulls: list[str]) -> None:
        """A server that ignores ``echo`` answers with generated text only: no choice's
        text begins with its prompt. Said at once, not as a malformed body per label."""
        choices = body.get("choices") if isinstance(body, Mapping) else None
        if not isinstance(choices, list) or not choices:
            return  # malformed: the parser says what is missing
        for pos, choice in enumerate(choices):
            if not isinstance(choice, Mapping):
                return
            index, text = choice.get("index", pos), choice.get("text")
            if not isinstance(index, int) or not isinstance(text, str):
                return
            if 0 <= index < len(fulls) and text.startswith(fulls[index]):
                return
        got = choices[0].get("text") if isinstance(choices[0], Mapping) else None
        raise self._no_echo(
            f"it ignored echo=true: the answer's text ({str(got)[:40]!r}) does not begin "
            "with the prompt, so it holds no prompt log-probs"
        )

    def _no_echo(self, what: str) -> ProtocolUnsupportedError:
        return ProtocolUnsupportedError(
            f"{self.spec}: this server has no prompt echo: {what}. The exact method needs "
            "the prompt's log-probs echoed (vLLM, llama-cpp-python's server, logprob-eval "
            "serve have them; llama.cpp's llama-server does not). Use method='generation' "
            "(CLI: --method generation) on this server",
            backend=self.spec,
        )

    def _label_score(
        self, label: str, prompt: str, full: str, text: str, tokens: list[EchoedToken]
    ) -> LabelScore:
        if not text.startswith(full):
            raise self._no_echo(
                f"the echoed text for label {label!r} does not begin with the prompt sent "
                f"(got {text[:60]!r}...)"
            )
        try:
            aligned = align_echo(text, tokens)
            score = echoed_label_score(label, len(prompt), len(full), aligned)
        except ResponseFormatError as exc:
            raise self._format_error(exc) from None
        notes = [score.note] if score.note else []
        value, n_tokens = score.logprob, len(score.path)
        if self.normalize == "token":
            value /= n_tokens
            notes.append(f"per-token mean over {n_tokens} tokens")
        elif self.normalize == "byte":
            n_bytes = max(1, len(full[len(prompt) :].encode("utf-8")))
            value /= n_bytes
            notes.append(f"per-byte mean over {n_bytes} bytes")
        return replace(
            score,
            logprob=value,
            lower=value,
            variants=(full[len(prompt) :],),
            note="; ".join(notes),
        )

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 48,
        temperature: float = 0.8,
        seed: int | None = None,
    ) -> str:
        payload = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        body = self._send(payload)
        try:
            return str(body["choices"][0]["text"])
        except (KeyError, IndexError, TypeError):
            raise self._format_error(
                ResponseFormatError("field 'choices[0].text' is missing", field="choices")
            ) from None

    def close(self) -> None:
        self._client.close()


class _Raw:
    """The SDK's raw response under the name :func:`call_json` reads (``http_response``)."""

    def __init__(self, response: Any) -> None:
        self.http_response = response


def _response_class() -> Any:
    """The HTTP response class the SDK returns raw for ``cast_to`` (httpx2 in SDK v3)."""
    import importlib

    try:
        return importlib.import_module("httpx2").Response
    except ImportError:  # pragma: no cover - older SDKs use httpx
        return importlib.import_module("httpx").Response


def _piece(piece: Any) -> str:
    """A token's text from ``/tokenize``: a string, or its bytes where not valid UTF-8."""
    if isinstance(piece, list):
        return bytes(int(b) & 0xFF for b in piece).decode("utf-8", errors="replace")
    return str(piece) if piece is not None else ""


def _lists_extension(body: Any, model: str) -> bool:
    """True when a ``GET /models`` body lists ``continuation_offset`` for ``model``."""
    data = body.get("data") if isinstance(body, Mapping) else None
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, Mapping) and entry.get("id") == model:
            extensions = entry.get("extensions")
            return isinstance(extensions, list) and CONTINUATION_OFFSET in extensions
    return False
