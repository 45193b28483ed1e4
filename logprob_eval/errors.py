"""Every error the library raises on purpose.

Hierarchy::

    LogprobEvalError                 root: catch this to catch everything below
    ├── ResponseFormatError          an API response is malformed, truncated or lacks logprobs
    ├── ConfigError                  a template, label set or config value is unusable
    │   └── UnknownNameError         a name (template, label set, provider...) is not registered
    └── DatasetError                 a dataset file or row is unusable

Every message names the offending input, says why it is rejected and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "LogprobEvalError",
    "ResponseFormatError",
    "UnknownNameError",
]


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
