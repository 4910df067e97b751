"""Security headers: a strict Content-Security-Policy and friends, for every response.

The policy allows scripts, styles, images and fetches from this origin only: no inline
scripts or styles, no ``eval``, no plugins, no framing. Trusted Types are required, so
even a future ``innerHTML = <string>`` in our own JS fails loudly in Chromium instead of
becoming an injection sink. Data for pages travels in ``<script type="application/json">``
blocks, which are never executed and so need no exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
# Every answer but a static file (which sets its own caching) is not to be stored: API
# JSON, pages, errors and redirects can carry telemetry or a signed-in user's data.
_RAW = [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]
_RAW.append((b"cache-control", b"no-store"))


class SecurityHeaders:
    """Pure ASGI middleware adding PAGE_HEADERS and ``Cache-Control: no-store`` to
    responses that lack them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _RAW if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_security_headers(app: Starlette) -> None:
    """Install the headers on every response of ``app`` (pages set them already; this
    covers the JSON API, sign-in and ingest answers too)."""
    app.add_middleware(SecurityHeaders)
