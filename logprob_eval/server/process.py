"""Run ``logprob-eval serve`` as a child process on a free loopback port."""

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

from ..backends._openai_client import is_network_blocked
from ..errors import BackendUnavailableError, MissingDependencyError, ServerUnreachableError

__all__ = ["LocalServer", "free_port", "require_local_extra"]


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


class LocalServer:
    """Context manager: start the server, wait until it answers, stop it on exit.

    The server's log goes to ``log_path`` (a temporary file by default) and is kept; its
    tail is in the error raised when the server dies or never answers.
    """

    def __init__(
        self,
        model: str = "gemma-3-270m",
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 2048,
        threads: int | None = None,
        log_path: str | Path | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.model = model
        self.host = host
        self.port = port or free_port(host)
        self.n_ctx = n_ctx
        self.threads = threads
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

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> LocalServer:
        require_local_extra(self.model)
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
                    f"local:{self.model}: the server exited with code {self._proc.returncode} "
                    f"before answering; its log ({self.log_path}) ends:\n{self.log_tail()}",
                    backend=f"local:{self.model}",
                )
            try:
                if requests.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            except RuntimeError as exc:  # pytest --block-network refuses even loopback
                if not is_network_blocked(exc):
                    raise
                self.stop()
                raise ServerUnreachableError(
                    f"local:{self.model}: cannot reach the local server at {self.base_url}: "
                    "the network is blocked (pytest --block-network); drop --block-network "
                    "to record",
                    backend=f"local:{self.model}",
                ) from None
            time.sleep(0.1)
        self.stop()
        raise BackendUnavailableError(
            f"local:{self.model}: the server did not answer within {self.startup_timeout:g}s; "
            f"its log ({self.log_path}) ends:\n{self.log_tail()}",
            backend=f"local:{self.model}",
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

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
