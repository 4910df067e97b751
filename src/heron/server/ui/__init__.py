"""The web UI: server-rendered pages over the query layer, plus its static files.

Pages live on one router so sign-in applies to all of them with one router-level
dependency; static files (CSS, our JS, the chart library built from npm) are public.
Every telemetry string is rendered inert: autoescaped in templates, ``textContent`` in
scripts, and a strict Content-Security-Policy (see :mod:`heron.server.ui.security`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import FileResponse

from heron.server.auth import require_user, verify_csrf
from heron.server.ui import (
    _alert_pages,
    _analysis_pages,
    _dashboard_pages,
    _db_pages,
    _error_pages,
    _loadtest_pages,
    _map_page,
    _metric_pages,
    _pages,
    _rum_pages,
    _slo_pages,
    _trace_pages,
)
from heron.server.ui._render import STATIC_DIR
from heron.server.ui._static import CachedStaticFiles
from heron.server.ui.security import add_security_headers

__all__ = ["add_security_headers", "router"]


pages = APIRouter(
    include_in_schema=False, dependencies=[Depends(require_user), Depends(verify_csrf)]
)
"""Every page: signed-in users only (else 303 to /login), and CSRF checks on any POST."""
for _module in (
    _pages,
    _trace_pages,
    _map_page,
    _db_pages,
    _error_pages,
    _metric_pages,
    _dashboard_pages,
    _alert_pages,
    _analysis_pages,
    _slo_pages,
    _rum_pages,
    _analysis_pages,
    _loadtest_pages,
):
    pages.include_router(_module.router)

router = APIRouter(include_in_schema=False)
"""The UI: its pages plus the static files, which are public."""
router.mount("/static", CachedStaticFiles(directory=STATIC_DIR, check_dir=False), "static")


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    # Browsers ask for it on pages without an icon link (the sign-in page).
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(STATIC_DIR / "heron.svg", media_type="image/svg+xml", headers=headers)


router.include_router(pages)
