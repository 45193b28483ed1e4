"""Request validation for ``logprob-eval serve``: OpenAI-shaped errors and field checks."""

from __future__ import annotations

from typing import Any

__all__ = ["RequestError", "int_field", "stop_field", "temperature_field"]


class RequestError(Exception):
    """Turned into an OpenAI-shaped error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": str(self),
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def int_field(body: dict[str, Any], key: str, default: int | None, lo: int, hi: int) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RequestError(
            400,
            f"'{key}' must be an integer from {lo} to {hi}, got {value!r}",
            param=key,
            code="invalid_value",
        )
    return value


def temperature_field(body: dict[str, Any]) -> float:
    t = body.get("temperature", 1.0)
    if t is None:
        return 1.0
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 2:
        raise RequestError(
            400,
            f"'temperature' must be a number from 0 to 2, got {t!r}",
            param="temperature",
            code="invalid_value",
        )
    return float(t)


def stop_field(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        return stop
    raise RequestError(
        400,
        "'stop' must be a string or a list of up to 4 strings",
        param="stop",
        code="invalid_value",
    )
