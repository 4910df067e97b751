"""FastAPI and Starlette: a server span for every request, named by its route template.

FastAPI releases with native OpenTelemetry support (``fastapi.telemetry``) trace
themselves through the global tracer provider that ``heron.init()`` installs; heron
leaves them alone (and so respects ``FastAPI(telemetry=...)``). Older FastAPI releases
and plain Starlette apps get the contrib ``FastAPIInstrumentor.instrument_app``.

Heron wraps ``Starlette.__call__`` (FastAPI inherits it) and looks at each top-level app
the first time it is called, usually with the server's ``lifespan`` event, so apps
built before ``heron.init()`` are covered. Apps mounted inside another app are skipped:
the outer app's span already covers them.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from heron.agent.guard import capture_internal_exceptions

NAME = "fastapi"
DISTRIBUTION = "fastapi"  # the contrib instrumentation imports it
MIN_VERSION = (0, 92)
TRIGGER = "starlette.applications"

_SEEN = "_heron_seen"
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
            if not getattr(self, _SEEN, False):
                _instrument(self, mounted=scope.get("app", self) is not self)
            await original(self, scope, receive, send)

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
