"""What every page handler needs: the app context, the renderer and the shared state.

Handlers are plain ``def`` so Starlette runs the blocking DuckDB reads in its thread pool.
Page routers are module level (``route_class=UiRoute``); handlers take ``kit: KitDep``.
Bad parameters raise InvalidQuery; :class:`UiRoute` turns it (and 404s) into an HTML
error page that says what to do; storage failures and query timeouts become pages in the
app's one handler (:mod:`heron.server.errors`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

from heron.server import query
from heron.server.auth import LoginRequired, csrf_token, require_user
from heron.server.context import AppContext, Ctx, ctx_of
from heron.server.errors import BadRequest, HtmlRoute, NotFound
from heron.server.query import InvalidQuery
from heron.server.store.base import QueryTimeout, StorageUnavailable
from heron.server.ui._render import Renderer
from heron.server.ui._state import RANGES, REFRESH, UiState, read_state

log = logging.getLogger("heron.ui")
SORT_ORDERS = ("asc", "desc")


@dataclass
class Kit:
    ctx: AppContext
    renderer: Renderer

    @property
    def project(self) -> int:
        return self.ctx.project_id

    def state(self, request: Request) -> UiState:
        return read_state(request, self.ctx.clock())

    def render(
        self,
        request: Request,
        template: str,
        state: UiState,
        *,
        nav: str,
        page_params: dict[str, Any] | None = None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        """Render a page with the global controls filled in."""
        envs = query.list_environments(self.ctx.store, self.project, state.time_range)
        return self.renderer.page(
            request,
            template,
            {
                "state": state,
                "nav": nav,
                "path": request.url.path,
                "page_params": page_params or {},
                "environments": envs,
                "ranges": list(RANGES),
                "refresh_choices": list(REFRESH),
                **_session(request),
                **context,
            },
            status,
        )

    def error_page(self, request: Request, status: int, message: str, hint: str) -> Response:
        return self.renderer.page(
            request,
            "error.html",
            {
                "status": status,
                "message": message,
                "hint": hint,
                "nav": "",
                "state": None,
                **_session(request),
            },
            status,
        )


RENDERER = Renderer()
"""The pages' templates; page modules add their own filters and globals on import."""


def get_kit(ctx: Ctx) -> Kit:
    """The page kit for this app, as a FastAPI dependency."""
    return Kit(ctx, RENDERER)


KitDep = Annotated[Kit, Depends(get_kit)]


def _session(request: Request) -> dict[str, Any]:
    """The signed-in user and the CSRF token for the sign-out form, when signed in."""
    try:
        return {"user": require_user(request), "csrf_token": csrf_token(request)}
    except (LoginRequired, StorageUnavailable, QueryTimeout):
        return {"user": None, "csrf_token": ""}


def sort_param(request: Request, allowed: tuple[str, ...], default: str) -> tuple[str, str]:
    """``sort`` and ``order`` from the URL, checked; order defaults as the query layer's."""
    sort = request.query_params.get("sort") or default
    if sort not in allowed:
        raise InvalidQuery(f"cannot sort by {sort[:32]!r}: use one of {', '.join(allowed)}")
    order = request.query_params.get("order") or ""
    if order and order not in SORT_ORDERS:
        raise InvalidQuery("order must be asc or desc")
    if not order:
        order = "asc" if sort in ("service", "endpoint") else "desc"
    return sort, order


class UiRoute(HtmlRoute):
    """A page route: its errors are HTML pages (storage failures and query timeouts too:
    the app's handler in :mod:`heron.server.errors` calls ``error_page``)."""

    def error_page(self, request: Request, status: int, message: str, hint: str) -> Response:
        return get_kit(ctx_of(request)).error_page(request, status, message, hint)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (InvalidQuery, BadRequest) as e:
                hint = "Check the address, or start again from the services page."
                return self.error_page(request, 400, str(e), hint)
            except RequestValidationError:
                msg = "A parameter in the address is malformed."
                return self.error_page(request, 400, msg, "Start again from a link.")
            except NotFound as e:
                hint = _not_found_hint(ctx_of(request).config.retention_days)
                return self.error_page(request, 404, e.message, hint)

        return handle


def _not_found_hint(days: int) -> str:
    return (
        f"Raw spans are kept for {days} day{'s' if days != 1 else ''} "
        "(retention_days); spans sent in the last seconds may still be on their way."
    )
