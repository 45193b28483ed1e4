"""Run a model server as a child process on a free loopback port: ``logprob-eval serve``
here (:class:`LocalServer`); third-party servers in :mod:`.thirdparty`, on the same base
(:class:`ServerProcess`)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from ..errors import (
    BackendUnavailableError,
    MissingDependencyError,
    ServerUnreachableError,
    is_network_blocked,
)

__all__ = ["LocalServer", "ServerProcess", "free_port", "require_local_extra"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def require_local_extra(model: str) -> None:
    """Raise :class:`MissingDependencyError` (with the pip line) unless the ``[local]``
    extra is installed: checked before a server process is started, so a missing extra
    fails at once instead of as a server that exits."""
    from .engine import INSTALL_LOCAL, LOCAL_MODELS, resolve_model_path

    missing = [] if _importable("llama_cpp") else ["llama-cpp-python"]
    weights = LOCAL_MODELS.get(model)
    if weights is not None and not _importable(weights):
        missing.append(f"its weights package ({weights.replace('_', '-')})")
    if missing:
        raise MissingDependencyError(
            f"local:{model} needs {' and '.join(missing)}: {INSTALL_LOCAL}",
            backend=f"local:{model}",
        )
    resolve_model_path(model)  # a .gguf path that does not exist, an unknown name


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


class ServerProcess:
    """Context manager: start a server process, wait until it answers, stop it on exit.

    Subclasses give :meth:`command`, :attr:`name` (for messages) and may change
    :attr:`ready_path` (polled until it answers 200). The server's log goes to ``log_path``
    (a temporary file by default) and is kept; its tail is in the error raised when the
    server dies or never answers.
    """

    name = "server"
    ready_path = "/v1/models"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: str | Path | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="logprob-eval-serve-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def check_installed(self) -> None:
        """Raise :class:`MissingDependencyError` (with the command that provides the
        server) before anything is started."""

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> ServerProcess:
        self.check_installed()
        cmd = self.command()
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + self.startup_timeout
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise BackendUnavailableError(
                    f"{self.name}: the server exited with code {self._proc.returncode} "
                    f"before answering; its log ({self.log_path}) ends:\n{self.log_tail()}",
                    backend=self.name,
                )
            try:
                if requests.get(self.root_url + self.ready_path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            except RuntimeError as exc:  # pytest --block-network refuses even loopback
                if not is_network_blocked(exc):
                    raise
                self.stop()
                raise ServerUnreachableError(
                    f"{self.name}: cannot reach the server at {self.base_url}: "
                    "the network is blocked (pytest --block-network); drop --block-network "
                    "to record",
                    backend=self.name,
                ) from None
            time.sleep(0.1)
        self.stop()
        raise BackendUnavailableError(
            f"{self.name}: the server did not answer within {self.startup_timeout:g}s; "
            f"its log ({self.log_path}) ends:\n{self.log_tail()}",
            backend=self.name,
        )

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class LocalServer(ServerProcess):
    """``logprob-eval serve`` for a local model (``prefill_chunk=1``: one-token batches)."""

    def __init__(
        self,
        model: str = "gemma-3-270m",
        *,
        n_ctx: int = 2048,
        threads: int | None = None,
        prefill_chunk: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.n_ctx = n_ctx
        self.threads = threads
        self.prefill_chunk = prefill_chunk

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"local:{self.model}"

    def check_installed(self) -> None:
        require_local_extra(self.model)

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "logprob_eval.cli",
            "serve",
            "--model",
            self.model,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n-ctx",
            str(self.n_ctx),
        ]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.prefill_chunk:
            cmd += ["--prefill-chunk", str(self.prefill_chunk)]
        return cmd

    def start(self) -> LocalServer:
        super().start()
        return self

    def __enter__(self) -> LocalServer:
        return self.start()
