"""The HTTP API's error hierarchy; one handler in app.py renders them."""

from __future__ import annotations


class HeronHTTPError(Exception):
    status = 500

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(HeronHTTPError):
    status = 400


class Unauthorized(HeronHTTPError):
    status = 401


class NotFound(HeronHTTPError):
    status = 404


class PayloadTooLarge(HeronHTTPError):
    status = 413


class UnsupportedMediaType(HeronHTTPError):
    status = 415


class ServiceUnavailable(HeronHTTPError):
    status = 503
