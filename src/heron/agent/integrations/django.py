"""Django: a server span for every request, named by its URL pattern.

The contrib ``DjangoInstrumentor`` inserts its middleware into ``settings.MIDDLEWARE``,
which needs configured settings; called too early it even configures empty ones. Heron
therefore runs it from ``BaseHandler.load_middleware``, the moment every WSGI/ASGI
handler (and the test client) reads the middleware list, when settings are ready.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from heron.agent.guard import capture_internal_exceptions

NAME = "django"
DISTRIBUTION = "django"
MIN_VERSION = (3, 2)
TRIGGER = "django.core.handlers.base"

_lock = threading.Lock()
_original_load: Callable[..., Any] | None = None


def setup() -> None:
    global _original_load
    from django.core.handlers.base import BaseHandler

    with _lock:
        if _original_load is not None:
            return
        original = BaseHandler.load_middleware

        def load_middleware(self: BaseHandler, *args: Any, **kwargs: Any) -> Any:
            _instrument()
            return original(self, *args, **kwargs)

        BaseHandler.load_middleware = load_middleware
        _original_load = original


def _instrument() -> None:
    with capture_internal_exceptions:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        with _lock:
            instrumentor = DjangoInstrumentor()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument()


def teardown() -> None:
    global _original_load
    from django.core.handlers.base import BaseHandler

    with _lock:
        if _original_load is not None:
            BaseHandler.load_middleware = _original_load
            _original_load = None
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    if DjangoInstrumentor().is_instrumented_by_opentelemetry:
        DjangoInstrumentor().uninstrument()
