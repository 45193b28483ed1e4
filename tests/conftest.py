"""Real model servers as session fixtures, on free loopback ports, on the local GGUF.

Each starts the server a user would run (``logprob_eval.server.thirdparty``) the way a suite
starts a real database, and stops it at session end. Where a server (or its model) is not
installed, the tests that use it skip with the one command that provides it (CI sets
``LOGPROB_EVAL_REQUIRE_SERVERS=1``: there they fail instead).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


def _serve(kind: str, model: str, **options: Any) -> Iterator[Any]:
    from logprob_eval.errors import MissingDependencyError

    try:
        from logprob_eval.server.thirdparty import make_server

        server = make_server(kind, model, **options)
        server.check_installed()
    except (ImportError, MissingDependencyError) as exc:
        if os.environ.get("LOGPROB_EVAL_REQUIRE_SERVERS"):  # CI: these tests must run
            pytest.fail(f"{kind} is not available (LOGPROB_EVAL_REQUIRE_SERVERS is set): {exc}")
        pytest.skip(f"{kind} is not available: {exc}")
    with server:
        yield server


@pytest.fixture(scope="session")
def llama_server_1tok() -> Iterator[Any]:
    """llama.cpp's llama-server on Gemma 3 270M, one token per batch (``-ub 1``)."""
    yield from _serve("llama-server", "gemma-3-270m", one_token_batches=True)


@pytest.fixture(scope="session")
def llama_server_chat() -> Iterator[Any]:
    """llama-server on SmolLM2-135M-Instruct (chat template from the GGUF)."""
    yield from _serve("llama-server", "smollm2-135m-instruct")


@pytest.fixture(scope="session")
def llama_cpp_python_1tok() -> Iterator[Any]:
    """llama-cpp-python's server on Gemma 3 270M, one token per batch."""
    yield from _serve("llama-cpp-python", "gemma-3-270m", one_token_batches=True)


@pytest.fixture(scope="session")
def own_server_1tok() -> Iterator[Any]:
    """``logprob-eval serve`` on Gemma 3 270M, one token per batch (``--prefill-chunk 1``)."""
    yield from _serve("logprob-eval", "gemma-3-270m", one_token_batches=True, n_ctx=1024)


@pytest.fixture(scope="session")
def own_server() -> Iterator[Any]:
    """``logprob-eval serve`` on Gemma 3 270M as shipped (default batching)."""
    yield from _serve("logprob-eval", "gemma-3-270m", n_ctx=1024)
