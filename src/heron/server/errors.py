"""Where errors become responses: the HTTP error hierarchy and the app's one set of handlers.

Routes raise :class:`HeronHTTPError` subclasses (they carry their status) and the store
raises its own exceptions (:class:`StorageUnavailable`, :class:`QueryTimeout`); the
handlers installed by :func:`install_error_handlers` turn each into a response: JSON
``{"error": ...}`` for the API, an HTML page for routes of an :class:`HtmlRoute` class
(the web UI). A storage failure or a query timeout is 503 with ``Retry-After`` for both.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from heron.server.store.base import QueryTimeout, StorageUnavailable


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


class Conflict(HeronHTTPError):
    status = 409


class PayloadTooLarge(HeronHTTPError):
    status = 413


class UnsupportedMediaType(HeronHTTPError):
    status = 415


class ServiceUnavailable(HeronHTTPError):
    status = 503


class HtmlRoute(APIRoute):
    """A route whose errors are pages for people: subclasses render them."""

    def error_page(self, request: Request, status: int, message: str, hint: str) -> Response:
        raise NotImplementedError


def storage_error_text(exc: StorageUnavailable | QueryTimeout) -> tuple[str, str]:
    """What went wrong and what to do about it, for a storage failure or a timeout."""
    if isinstance(exc, QueryTimeout):
        return (
            "The query took too long and was stopped.",
            "Choose a shorter time range or add filters, then try again.",
        )
    return (
        f"Storage is unavailable: {exc}",
        "Heron recovers on its own once the disk has room; see /healthz.",
    )


async def _storage_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, (StorageUnavailable, QueryTimeout))
    retry = {"Retry-After": str(exc.retry_after_s)}
    route = request.scope.get("route")
    if isinstance(route, HtmlRoute):
        page = route.error_page(request, 503, *storage_error_text(exc))
        page.headers.update(retry)
        return page
    if isinstance(exc, QueryTimeout):
        body = {"error": f"query timeout: {exc}; choose a shorter time range or add filters"}
    else:
        body = {"error": f"storage unavailable: {exc}"}
    return JSONResponse(body, 503, headers=retry)


async def _heron_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HeronHTTPError)
    return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Render HeronHTTPError, StorageUnavailable and QueryTimeout for every route."""
    app.add_exception_handler(HeronHTTPError, _heron_error)
    app.add_exception_handler(StorageUnavailable, _storage_error)
    app.add_exception_handler(QueryTimeout, _storage_error)
