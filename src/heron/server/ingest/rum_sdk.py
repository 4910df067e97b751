"""Serve the RUM browser SDK: ``GET /rum.js``, ``/rum.mjs`` and ``/rum-react.mjs``.

The files are bundled from ``browser/`` by ``scripts/build_assets.py`` into the UI's
``static/vendor/``. Every role serves them, publicly (no key, no session): customers'
pages on other origins load them with a ``<script>`` tag or an ES module import, so the
answers allow any origin (CORS for module scripts, ``Cross-Origin-Resource-Policy`` for
pages isolated with COEP) and may be cached for an hour. A missing bundle is a 404 that
says how to build it, never a 500.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

VENDOR = Path(__file__).resolve().parent.parent / "ui" / "static" / "vendor"
BUNDLES = ("rum.js", "rum.mjs", "rum-react.mjs")
HEADERS = {
    "Cache-Control": "public, max-age=3600",
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "X-Content-Type-Options": "nosniff",
}


class SdkFiles:
    """Reads each bundle once (they change only with a new build, i.e. a new install)."""

    def __init__(self, directory: Path = VENDOR) -> None:
        self.directory = directory
        self._cache: dict[str, bytes] = {}

    def read(self, name: str) -> bytes | None:
        if name not in self._cache:
            try:
                self._cache[name] = (self.directory / name).read_bytes()
            except OSError:
                return None
        return self._cache[name]

    async def serve(self, request: Request) -> Response:
        name = request.url.path.lstrip("/")
        body = self.read(name)
        if body is None:
            message = f"{name} is not built: run scripts/build_assets.py (needs npm)\n"
            return PlainTextResponse(message, 404, headers={"Cache-Control": "no-store"})
        return Response(body, media_type="text/javascript; charset=utf-8", headers=HEADERS)


def add_sdk_routes(app: Starlette, files: SdkFiles | None = None) -> None:
    """GET /rum.js, /rum.mjs and /rum-react.mjs on ``app`` (outside the OpenAPI schema)."""
    sdk = files or SdkFiles()
    for name in BUNDLES:
        app.router.routes.append(Route(f"/{name}", sdk.serve, methods=["GET", "HEAD"]))
