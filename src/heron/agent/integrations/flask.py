"""Flask: a server span for every request of every Flask app, named by its route.

The contrib ``FlaskInstrumentor().instrument()`` replaces the ``flask.Flask`` class, so an
app built from a ``Flask`` name imported before ``heron.init()`` stays uninstrumented.
Heron wraps ``Flask.__call__`` instead and instruments each app, with the contrib
``FlaskInstrumentor.instrument_app``, when it is first called; apps already instrumented
by other means are left alone.

Errors: Flask's ``got_request_exception`` signal (sent for exceptions no error handler
took, before the 500 error handler runs, so it can show ``heron.last_event_id()``)
captures the exception with the request. The ``start_response`` of that request adds
``X-Heron-Event-Id`` to the response.

The contrib instrumentation copies the raw query string into ``url.query`` (and
``http.target``) after the span has started, so heron scrubs the attributes where they
are collected, in ``opentelemetry.instrumentation.wsgi.collect_request_attributes``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from heron.agent.errors import _scope
from heron.agent.errors._request import MAX_BODY, wsgi_request
from heron.agent.guard import capture_internal_exceptions

NAME = "flask"
DISTRIBUTION = "flask"
MIN_VERSION = (2, 2)
TRIGGER = "flask"

logger = logging.getLogger("heron.agent")
_SEEN = "_heron_seen"  # set on each app once heron has looked at it
_lock = threading.Lock()
_original_call: Callable[..., Any] | None = None
EVENT_HEADER = "X-Heron-Event-Id"


def setup() -> None:
    global _original_call
    import flask

    with _lock:
        if _original_call is not None:
            return
        original = flask.Flask.__call__

        def __call__(
            self: flask.Flask, environ: dict[str, Any], start_response: Any
        ) -> Iterable[bytes]:
            if not getattr(self, _SEEN, False):
                _instrument(self)
            state = _scope.RequestState(describe=lambda: _describe(environ))
            token = _scope.begin_request(state)
            try:
                return original(self, environ, _with_event_id(start_response, state))
            finally:
                _scope.end_request(token)

        flask.Flask.__call__ = __call__  # type: ignore[method-assign]
        flask.got_request_exception.connect(_on_exception)
        _scrub_collected_attributes()
        _original_call = original


def _scrub_collected_attributes() -> None:
    from opentelemetry.instrumentation import wsgi

    collect = wsgi.collect_request_attributes
    if getattr(collect, "_heron", False):
        return

    def collect_request_attributes(*args: Any, **kwargs: Any) -> Any:
        attributes = collect(*args, **kwargs)
        with capture_internal_exceptions:
            scrub_url_attributes(attributes)
        return attributes

    collect_request_attributes._heron = True  # type: ignore[attr-defined]
    collect_request_attributes._heron_original = collect  # type: ignore[attr-defined]
    wsgi.collect_request_attributes = collect_request_attributes


def scrub_url_attributes(attributes: dict[str, Any]) -> None:
    """``url.query`` and URLs with a query string, scrubbed in place."""
    from heron.agent.errors import client

    current = client()
    if current is None:
        return
    scrubber = current.scrubber
    if attributes.get("url.query"):
        attributes["url.query"] = scrubber.query_string(str(attributes["url.query"]))
    for key in ("url.full", "http.url", "http.target"):
        if "?" in str(attributes.get(key, "")):
            attributes[key] = scrubber.url(str(attributes[key]))


def _with_event_id(start_response: Any, state: _scope.RequestState) -> Any:
    def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        if state.event_id:
            headers = [*headers, (EVENT_HEADER, state.event_id)]
        return start_response(status, headers, *exc_info)

    return start


def _on_exception(sender: Any, exception: BaseException, **_: Any) -> None:
    from heron.agent.errors import client

    current = client()
    if current is not None:
        with capture_internal_exceptions:
            current.capture_exception(exception, mechanism="flask", handled=False)


def _describe(environ: dict[str, Any]) -> dict[str, Any]:
    """The request, with its form or JSON body when small (Flask caches what it parsed)."""
    import flask

    out = wsgi_request(environ)
    if not flask.has_request_context():
        return out
    request = flask.request
    if (request.content_length or 0) <= MAX_BODY:
        if request.form:
            out["data"] = request.form.to_dict()
        elif request.is_json:
            out["data"] = request.get_json(silent=True)
    return out


def _instrument(app: Any) -> None:
    with capture_internal_exceptions, _lock:
        if getattr(app, _SEEN, False):
            return
        setattr(app, _SEEN, True)  # first, so a failure below is not retried per request
        if getattr(app, "_is_instrumented_by_opentelemetry", False):
            return
        if getattr(app, "_got_first_request", False):
            logger.warning(
                "heron: Flask app %r served requests before heron.init(); not instrumenting it",
                app.name,
            )
            return
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor.instrument_app(app)


def teardown() -> None:
    global _original_call
    import flask

    with _lock:
        if _original_call is not None:
            flask.Flask.__call__ = _original_call  # type: ignore[method-assign]
            flask.got_request_exception.disconnect(_on_exception)
            _original_call = None
    from opentelemetry.instrumentation import wsgi

    original = getattr(wsgi.collect_request_attributes, "_heron_original", None)
    if original is not None:
        wsgi.collect_request_attributes = original
