"""``/docs``: the API reference in Swagger UI, built from npm and served by Heron itself.

FastAPI's own ``/docs`` and ``/redoc`` load their scripts from a CDN and start them with an
inline script, both of which Heron's Content-Security-Policy blocks. This page loads
Swagger UI from ``/static/vendor`` (``scripts/build_assets.py``) and starts it from
``/static/js/api-docs.js``: scripts from this origin only, no inline code. Its policy is
the pages' minus Trusted Types, because Swagger UI renders the schema's Markdown through
``innerHTML`` (after sanitising it with DOMPurify); the page shows only the schema, never
telemetry.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import HTMLResponse

from heron.server.ui._render import Renderer
from heron.server.ui.security import CSP, PAGE_HEADERS

DOCS_CSP = "; ".join(d for d in CSP.split("; ") if "trusted-types" not in d)
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Heron API</title>
<link rel="stylesheet" href="{css}">
<script src="{bundle}" defer></script>
<script src="{start}" defer></script>
</head>
<body><div id="swagger-ui"></div></body>
</html>
"""


def add_api_docs(app: FastAPI) -> None:
    """Serve ``GET /docs`` (the app must be created with ``docs_url=None``)."""
    static = Renderer().static_url
    html = _PAGE.format(
        css=static("vendor/swagger-ui.css"),
        bundle=static("vendor/swagger-ui-bundle.js"),
        start=static("js/api-docs.js"),
    )
    headers = {**PAGE_HEADERS, "Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-store"}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)
