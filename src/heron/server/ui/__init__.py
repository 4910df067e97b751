"""The web UI: server-rendered pages over the query layer, plus its static files.

Pages live on one router so sign-in applies to all of them with one router-level
dependency; static files (CSS, our JS, the chart library built from npm) are public.
Every telemetry string is rendered inert: autoescaped in templates, ``textContent`` in
scripts, and a strict Content-Security-Policy (see :mod:`heron.server.ui.security`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends
from starlette.responses import FileResponse

from heron.server.auth import require_user, verify_csrf
from heron.server.ui import _db_pages, _error_pages, _map_page, _pages, _trace_pages
from heron.server.ui._kit import Kit, ui_route_class
from heron.server.ui._render import STATIC_DIR, Renderer
from heron.server.ui._static import CachedStaticFiles
from heron.server.ui.security import add_security_headers

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from heron.server.context import AppContext

__all__ = ["add_security_headers", "build_ui_router"]


def build_ui_router(ctx: AppContext, dependencies: Sequence[Any] | None = None) -> APIRouter:
    """The UI's routes. ``dependencies`` apply to every page, not to static files; by
    default: signed-in users only (else 303 to /login), and CSRF checks on any POST."""
    kit = Kit(ctx, Renderer())
    if dependencies is None:
        dependencies = _default_guards()
    pages = APIRouter(
        include_in_schema=False,
        route_class=ui_route_class(lambda: kit),
        dependencies=list(dependencies),
    )
    _pages.register(pages, kit)
    _trace_pages.register(pages, kit)
    _map_page.register(pages, kit)
    _db_pages.register(pages, kit)
    _error_pages.register(pages, kit)
    router = APIRouter(include_in_schema=False)
    router.mount("/static", CachedStaticFiles(directory=STATIC_DIR, check_dir=False), "static")

    @router.get("/favicon.ico")
    def favicon() -> FileResponse:
        # Browsers ask for it on pages without an icon link (the sign-in page).
        headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
        return FileResponse(STATIC_DIR / "heron.svg", media_type="image/svg+xml", headers=headers)

    router.include_router(pages)
    return router


def _default_guards() -> list[Any]:
    return [Depends(require_user), Depends(verify_csrf)]
