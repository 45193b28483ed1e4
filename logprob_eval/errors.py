"""Every error the library raises on purpose.

Hierarchy::

    LogprobEvalError                 root: catch this to catch everything below
    ├── ResponseFormatError          an API response is malformed, truncated or lacks logprobs
    ├── ConfigError                  a template, label set or config value is unusable
    │   ├── UnknownNameError         a name (template, label set, provider...) is not registered
    │   └── MethodUnsupportedError   a backend cannot score by the method asked for (message:
    │                                the methods that work there)
    ├── DatasetError                 a dataset file or row is unusable
    ├── OutputError                  an output path cannot be written (``fallback``: where
    │                                the results went instead, if anywhere)
    └── BackendError                 a model backend failed (``retriable`` says if a retry may help)
        ├── MissingDependencyError   an optional package is not installed (message: pip line)
        ├── LogprobsUnsupportedError the model returns no log-probs (reasoning models, Anthropic...)
        ├── ProtocolUnsupportedError the server lacks what the method needs (echo...): names
        │                            the server's limit and the method that works; stops a run
        ├── ContentBlockedError      the provider blocked the prompt or refused to answer
        ├── RateLimitedError         HTTP 429 (retriable; ``retry_after`` seconds if sent)
        └── BackendUnavailableError  5xx, dropped connection, timeout (retriable)
            └── ServerUnreachableError  refused connection or unknown host: no server there
                                     (retried only within a short connect budget)

    CheckFailed (AssertionError)     a check of the eval suite failed: the metric, its value
                                     and the bound it missed (``failures``, for the report)

Every message names the offending input, says why it is rejected and how to fix it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "CheckFailed",
    "ConfigError",
    "ContentBlockedError",
    "DatasetError",
    "LogprobEvalError",
    "LogprobsUnsupportedError",
    "MethodUnsupportedError",
    "MissingDependencyError",
    "OutputError",
    "ProtocolUnsupportedError",
    "RateLimitedError",
    "ResponseFormatError",
    "ServerUnreachableError",
    "UnknownNameError",
    "is_network_blocked",
]


class CheckFailed(AssertionError):
    """A check failed. ``failures`` lists what the run's report shows for it: one
    ``{"metric", "value", "bound", "kind"}`` per metric (``kind``: floor, baseline or
    chance; ``bound`` is the floor, the baseline's value, or the bound at chance)."""

    def __init__(self, message: str, failures: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.failures = failures


class LogprobEvalError(Exception):
    """Root of every error raised by logprob_eval on purpose."""


class ResponseFormatError(LogprobEvalError, ValueError):
    """An API response does not have the shape the parser needs.

    ``field`` is the dotted path of the offending field, e.g.
    ``choices[0].logprobs.content[3].logprob``.
    """

    def __init__(self, message: str, *, field: str = "", source: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.source = source


class ConfigError(LogprobEvalError, ValueError):
    """A template, label set or configuration value is unusable."""


class UnknownNameError(ConfigError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(known)
        choices = ", ".join(sorted(self.known)) or "(none registered)"
        super().__init__(f"unknown {kind} {name!r}: choose one of {choices}")

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return str(self.args[0])


class MethodUnsupportedError(ConfigError):
    """A backend cannot score by the method asked for (e.g. ``forced`` on a chat-only API,
    which continues no raw prompt); the message names the methods that work there.
    Raised at construction, before any request."""

    def __init__(self, message: str, *, method: str = "", methods: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.method = method
        self.methods = methods


class DatasetError(LogprobEvalError, ValueError):
    """A dataset file, row or column is unusable.

    ``row`` is the 1-based data row (header excluded) and ``column`` the column name,
    where the problem is local to one cell.
    """

    def __init__(
        self, message: str, *, path: str = "", row: int | None = None, column: str = ""
    ) -> None:
        super().__init__(message)
        self.path = path
        self.row = row
        self.column = column


class OutputError(LogprobEvalError, OSError):
    """An output file or directory cannot be created or written.

    ``fallback`` is where the results already computed were written instead (empty when
    the check ran before any work, so nothing was at stake).
    """

    def __init__(self, message: str, *, path: str = "", fallback: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.fallback = fallback

    def __str__(self) -> str:  # OSError would format its args otherwise
        return str(self.args[0])


class BackendError(LogprobEvalError, RuntimeError):
    """A model backend failed. ``backend`` is its ``provider:model`` spec; for an HTTP
    error answer, ``status`` and ``server_message`` (what the server said, redacted)."""

    retriable: bool = False
    server_message: str = ""

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.status = status
        self.retry_after = retry_after


class MissingDependencyError(BackendError, ImportError):
    """An optional dependency is missing; the message holds the exact ``pip install`` line."""


class LogprobsUnsupportedError(BackendError):
    """The model does not return log-probabilities; the eval suite skips such cases."""


class ProtocolUnsupportedError(BackendError):
    """The server answers, but lacks a feature the scoring method needs (prompt echo for
    the exact method, ...). The message names the server's limit and a method that works
    there. No request of that method can succeed, so it stops a run at once."""


class ContentBlockedError(BackendError):
    """The provider answered, but blocked the prompt or the answer (a safety filter, a
    refusal): this prompt has no log-probs to read. Not retriable; the row records why."""


class RateLimitedError(BackendError):
    """HTTP 429: retry after ``retry_after`` seconds (when the server said)."""

    retriable = True


class BackendUnavailableError(BackendError):
    """A transient failure: HTTP 5xx, refused or dropped connection, timeout, torn body."""

    retriable = True


class ServerUnreachableError(BackendUnavailableError):
    """No server answers at the URL: the connection was refused or the host name did not
    resolve. Retried only within :attr:`RetryPolicy.connect_budget
    <logprob_eval.backends.jobs.RetryPolicy>` seconds, then it stops the run: no request to that
    server can succeed, so retrying every job for minutes would only hide the cause."""


def is_network_blocked(exc: BaseException | None) -> bool:
    """True for the error pytest-recording's ``--block-network`` raises on connect."""
    return isinstance(exc, RuntimeError) and str(exc).startswith("Network is disabled")
