"""A route class that turns every bad-parameter failure into the API's 400 JSON error.

FastAPI answers failed parameter validation with 422 and its own body; the read API
promises ``400 {"error": ...}`` for any bad parameter, whether FastAPI or the query
layer caught it. Errors raised here are rendered by the one handler in ``app.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from heron.server.errors import BadRequest
from heron.server.query import InvalidQuery


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """``invalid query parameter 'limit': Input should be ...`` for each failure."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        where = f"{loc[0]} parameter {'.'.join(loc[1:])!r}" if len(loc) > 1 else "request"
        parts.append(f"invalid {where}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


class ApiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                raise BadRequest(describe_validation_errors(e.errors())) from None
            except InvalidQuery as e:
                raise BadRequest(str(e)) from None

        return handle
