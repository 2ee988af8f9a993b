"""Error answers, raised anywhere in a handler as :class:`ApiFailure`: in OpenAI's shape
``{"error": {…}}``, or new-api's flat ``{"code", "message", "data"}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from aiohttp import web

ErrorShape = Literal["openai", "flat"]


class ApiFailure(Exception):
    """An error answer in OpenAI's shape, raised anywhere in a handler."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.kind = kind
        self.headers = dict(headers or {})

    def response(self, shape: ErrorShape = "openai") -> web.Response:
        """This failure as the JSON answer a client receives, in the provider's ``shape``."""
        if shape == "flat":
            flat = {"code": self.code or self.kind, "message": self.message, "data": None}
            return web.json_response(flat, status=self.status, headers=self.headers)
        body = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        return web.json_response({"error": body}, status=self.status, headers=self.headers)


def bad(param: str, code: str, message: str, status: int = 400) -> ApiFailure:
    """A client error about one parameter, as OpenAI reports it."""
    return ApiFailure(status, message, param=param, code=code)


def unknown_parameter(name: str) -> ApiFailure:
    """The 400 for a field the provider does not know."""
    return ApiFailure(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


def invalid_value(name: str, value: object, allowed: tuple[str, ...]) -> ApiFailure:
    """The 400 for a value outside ``allowed``, listing them as OpenAI does."""
    supported = ", ".join(f"'{a}'" for a in allowed)
    message = f"Invalid value: '{value}'. Supported values are: {supported}."
    return ApiFailure(400, message, param=name, code="invalid_value")


def rate_limited(
    message: str, *, retry_after: str, retry_after_ms: int, headers: bool = True
) -> ApiFailure:
    """A 429 with both retry headers (seconds and milliseconds), or with none when the
    provider sends none (``headers`` False, as new-api's and app relays' 429s)."""
    retry = {"Retry-After": retry_after, "retry-after-ms": str(retry_after_ms)} if headers else {}
    return ApiFailure(429, message, code="rate_limit_exceeded", kind="requests", headers=retry)


def invalid_url(request: web.Request) -> ApiFailure:
    """The 404 OpenAI sends for a path or method it does not serve."""
    message = f"Invalid URL ({request.method} {request.path})"
    return ApiFailure(404, message)
