"""HTTP hygiene around every route: body deadlines, quiet disconnects, proxies (``Cache-Control:
no-store`` comes with the security headers, ``ui/security.py``).

Pure ASGI middleware, so none of it buffers a body or a response. None of it may answer
a request that a route has started answering: a late failure only closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import ClientDisconnect
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("heron.server.http")


class BodyTimeout(Exception):
    """The request body did not finish arriving before its deadline."""


class _BodyDeadline:
    """One timer per request, not one per read: when it fires while the app waits for
    body bytes, that wait is cancelled and turned into :class:`BodyTimeout`."""

    def __init__(self, receive: Receive, timeout_s: float) -> None:
        self._receive = receive
        self._timer = asyncio.get_running_loop().call_later(timeout_s, self._expire)
        self._waiter: asyncio.Task[Any] | None = None
        self._expired = False
        self.body_done = False

    def _expire(self) -> None:
        self._expired = True
        if self._waiter is not None:
            self._waiter.cancel()

    def stop(self) -> None:
        self._timer.cancel()

    async def receive(self) -> Message:
        if self.body_done:
            return await self._receive()
        if self._expired:
            raise BodyTimeout
        self._waiter = task = asyncio.current_task()
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self._expired:
                raise
            if hasattr(task, "uncancel"):  # Python 3.11+: this cancellation is handled
                task.uncancel()
            raise BodyTimeout from None
        finally:
            self._waiter = None
        self.body_done = message["type"] != "http.request" or not message.get("more_body")
        if self.body_done:
            self.stop()
        return message


class RequestBodyGuard:
    """Answers 408 and closes the connection when a request body has not fully arrived
    ``timeout_s`` after the request started; logs a client that hangs up mid-request at
    debug level instead of as an error traceback."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        deadline = _BodyDeadline(receive, self.timeout_s)
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, deadline.receive, send_tracked)
        except ClientDisconnect:
            log.debug(
                "client %s hung up during %s %s", _client(scope), scope["method"], scope["path"]
            )
        except BodyTimeout:
            log.info(
                "closed %s %s from %s: body not received within %g s",
                scope["method"],
                scope["path"],
                _client(scope),
                self.timeout_s,
            )
            if not started:
                await _send_408(send, self.timeout_s)
        finally:
            deadline.stop()


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


async def _send_408(send: Send, timeout_s: float) -> None:
    body = orjson.dumps({"error": f"request body not received within {timeout_s:g} s"})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def add_http_guards(app: Starlette, *, body_timeout_s: float) -> None:
    """Inner guards: installed before the security headers, so a 408 carries them too."""
    app.add_middleware(RequestBodyGuard, timeout_s=body_timeout_s)


def trust_proxies(app: Starlette, proxies: tuple[str, ...]) -> None:
    """Take the client address (and scheme) from ``X-Forwarded-For``/``-Proto`` only on
    connections from ``proxies``; installed last, so it runs first."""
    if proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(proxies))
