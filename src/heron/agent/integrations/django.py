"""Django: a server span for every request, named by its URL pattern.

The contrib ``DjangoInstrumentor`` inserts its middleware into ``settings.MIDDLEWARE``,
which needs configured settings; called too early it even configures empty ones. Heron
therefore runs it from ``BaseHandler.load_middleware``, the moment every WSGI/ASGI
handler (and the test client) reads the middleware list, when settings are ready.

Errors: Django's ``got_request_exception`` signal (sent for exceptions that become a 500,
not for ``Http404`` or ``PermissionDenied``) captures the exception with the request.
``BaseHandler.get_response`` (and its async twin) is wrapped to open the request's error
scope and to add ``X-Heron-Event-Id`` to the response when an event was captured.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from heron.agent.errors import _scope
from heron.agent.errors._request import MAX_BODY, parse_body, wsgi_request
from heron.agent.guard import capture_internal_exceptions

NAME = "django"
DISTRIBUTION = "django"
MIN_VERSION = (3, 2)
TRIGGER = "django.core.handlers.base"

_lock = threading.Lock()
_original_load: Callable[..., Any] | None = None
_originals: dict[str, Callable[..., Any]] = {}
EVENT_HEADER = "X-Heron-Event-Id"


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
        _wrap_get_response(BaseHandler)
        from django.core.signals import got_request_exception

        got_request_exception.connect(_on_exception, dispatch_uid="heron")


def _wrap_get_response(handler: Any) -> None:
    sync, async_ = handler.get_response, handler.get_response_async
    _originals.update(get_response=sync, get_response_async=async_)

    def get_response(self: Any, request: Any) -> Any:
        state, token = _begin(request)
        try:
            response = sync(self, request)
        finally:
            _scope.end_request(token)
        return _with_event_id(response, state)

    async def get_response_async(self: Any, request: Any) -> Any:
        state, token = _begin(request)
        try:
            response = await async_(self, request)
        finally:
            _scope.end_request(token)
        return _with_event_id(response, state)

    handler.get_response = get_response
    handler.get_response_async = get_response_async


def _begin(request: Any) -> tuple[_scope.RequestState, Any]:
    state = _scope.RequestState(describe=lambda: _describe(request))
    return state, _scope.begin_request(state)


def _with_event_id(response: Any, state: _scope.RequestState) -> Any:
    if state.event_id:
        with capture_internal_exceptions:
            response[EVENT_HEADER] = state.event_id
    return response


def _on_exception(sender: Any, request: Any = None, **_: Any) -> None:
    from heron.agent.errors import client

    current, exc = client(), sys.exc_info()[1]
    if current is None or exc is None:
        return
    with capture_internal_exceptions:
        state = _scope.current_request()
        if state is not None and request is not None:
            state.user = _user(request)
        current.capture_exception(exc, mechanism="django", handled=False)


def _user(request: Any) -> dict[str, Any]:
    """The signed-in user, only if the app already loaded it (no query of heron's own)."""
    user = getattr(request, "_cached_user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    return {"id": str(user.pk), "username": user.get_username()}


def _describe(request: Any) -> dict[str, Any]:
    out = wsgi_request(request.META)
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) <= MAX_BODY:
            if request.POST:
                out["data"] = request.POST.dict()
            else:
                data = parse_body(request.content_type or "", request.body)
                if data is not None:
                    out["data"] = data
    except Exception:  # a body already read as a stream (RawPostDataException), bad input
        pass
    return out


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
        if _originals:
            BaseHandler.get_response = _originals.pop("get_response")
            BaseHandler.get_response_async = _originals.pop("get_response_async")
    from django.core.signals import got_request_exception

    got_request_exception.disconnect(dispatch_uid="heron")
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    if DjangoInstrumentor().is_instrumented_by_opentelemetry:
        DjangoInstrumentor().uninstrument()
