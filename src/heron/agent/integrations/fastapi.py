"""FastAPI and Starlette: a server span for every request, named by its route template.

FastAPI releases with native OpenTelemetry support (``fastapi.telemetry``) trace
themselves through the global tracer provider that ``heron.init()`` installs; heron
leaves them alone (and so respects ``FastAPI(telemetry=...)``). Older FastAPI releases
and plain Starlette apps get the contrib ``FastAPIInstrumentor.instrument_app``.

Heron wraps ``Starlette.__call__`` (FastAPI inherits it) and looks at each top-level app
the first time it is called, usually with the server's ``lifespan`` event, so apps
built before ``heron.init()`` are covered. Apps mounted inside another app are skipped:
the outer app's span already covers them.

Errors: an unhandled exception is captured just inside Starlette's
``ServerErrorMiddleware`` (inside the server span, before the 500 response is sent), with
the request's method, URL, headers and small form/JSON body. The top-level call wraps
``send`` so that response carries ``X-Heron-Event-Id``, and ``receive`` to keep a copy
of a small request body (up to 10 kB) for the event.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from heron.agent.errors import _scope
from heron.agent.errors._request import MAX_BODY, asgi_request
from heron.agent.guard import capture_internal_exceptions
from heron.agent.runtime_metrics import watch_loop

NAME = "fastapi"
DISTRIBUTION = "fastapi"  # the contrib instrumentation imports it
MIN_VERSION = (0, 92)
TRIGGER = "starlette.applications"

_SEEN = "_heron_seen"
EVENT_HEADER = b"x-heron-event-id"
_lock = threading.Lock()
_original_call: Callable[..., Awaitable[None]] | None = None


def setup() -> None:
    global _original_call
    from starlette.applications import Starlette

    with _lock:
        if _original_call is not None:
            return
        original = Starlette.__call__

        async def __call__(
            self: Starlette, scope: MutableMapping[str, Any], receive: Any, send: Any
        ) -> None:
            mounted = scope.get("app", self) is not self
            if not getattr(self, _SEEN, False):
                _instrument(self, mounted=mounted)
            if scope.get("type") != "http" or mounted:
                await original(self, scope, receive, send)
                return
            await _serve(original, self, scope, receive, send)

        Starlette.__call__ = __call__  # type: ignore[method-assign]
        _original_call = original


def _instrument(app: Any, *, mounted: bool) -> None:
    with capture_internal_exceptions, _lock:
        if getattr(app, _SEEN, False):
            return
        setattr(app, _SEEN, True)
        if mounted or getattr(app, "_is_instrumented_by_opentelemetry", False):
            return
        if _traces_itself(app):
            return
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)
        app.middleware_stack = None  # rebuilt, now with the OpenTelemetry middleware


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _serve(
    original: Callable[..., Awaitable[None]],
    app: Any,
    scope: MutableMapping[str, Any],
    receive: Receive,
    send: Send,
) -> None:
    """One top-level HTTP request, with error capture and the event id header."""
    watch_loop()  # event-loop lag of this loop too (uvloop's are not seen starting)
    body = bytearray()
    state = _scope.RequestState(describe=lambda: asgi_request(scope, bytes(body)))
    token = _scope.begin_request(state)

    async def receive_and_keep() -> MutableMapping[str, Any]:
        message = await receive()
        chunk = message.get("body", b"") if message.get("type") == "http.request" else b""
        if chunk and len(body) + len(chunk) <= MAX_BODY:
            body.extend(chunk)
        return message

    async def send_with_event_id(message: MutableMapping[str, Any]) -> None:
        if message.get("type") == "http.response.start" and state.event_id:
            headers = list(message.get("headers") or [])
            headers.append((EVENT_HEADER, state.event_id.encode()))
            message = {**message, "headers": headers}
        await send(message)

    try:
        _capture_below_server_errors(app)
        await original(app, scope, receive_and_keep, send_with_event_id)
    finally:
        _scope.end_request(token)


class CaptureErrors:
    """ASGI middleware put just inside ``ServerErrorMiddleware``: captures, then re-raises."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            from heron.agent.errors import client

            current = client()
            if current is not None:
                with capture_internal_exceptions:
                    current.capture_exception(exc, mechanism="starlette", handled=False)
            raise


def _capture_below_server_errors(app: Any) -> None:
    """Insert :class:`CaptureErrors` under the app's ``ServerErrorMiddleware`` (once)."""
    with capture_internal_exceptions:
        from starlette.middleware.errors import ServerErrorMiddleware

        if app.middleware_stack is None:
            app.middleware_stack = app.build_middleware_stack()
        layer = app.middleware_stack
        for _ in range(8):  # heron's or OpenTelemetry's wrappers may sit above it
            if isinstance(layer, ServerErrorMiddleware):
                if not isinstance(layer.app, CaptureErrors):
                    layer.app = CaptureErrors(layer.app)
                return
            layer = getattr(layer, "app", None)


def _traces_itself(app: Any) -> bool:
    """A FastAPI app from a release with native OpenTelemetry tracing."""
    fastapi = sys.modules.get("fastapi")  # an app of FastAPI's means it is imported
    if fastapi is None or not isinstance(app, fastapi.FastAPI):
        return False
    return importlib.util.find_spec("fastapi.telemetry") is not None


def teardown() -> None:
    global _original_call
    from starlette.applications import Starlette

    with _lock:
        if _original_call is not None:
            Starlette.__call__ = _original_call  # type: ignore[method-assign, assignment]
            _original_call = None
