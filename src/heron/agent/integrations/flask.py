"""Flask: a server span for every request of every Flask app, named by its route.

The contrib ``FlaskInstrumentor().instrument()`` replaces the ``flask.Flask`` class, so an
app built from a ``Flask`` name imported before ``heron.init()`` stays uninstrumented.
Heron wraps ``Flask.__call__`` instead and instruments each app, with the contrib
``FlaskInstrumentor.instrument_app``, when it is first called; apps already instrumented
by other means are left alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from heron.agent.guard import capture_internal_exceptions

NAME = "flask"
DISTRIBUTION = "flask"
MIN_VERSION = (2, 2)
TRIGGER = "flask"

logger = logging.getLogger("heron.agent")
_SEEN = "_heron_seen"  # set on each app once heron has looked at it
_lock = threading.Lock()
_original_call: Callable[..., Any] | None = None


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
            return original(self, environ, start_response)

        flask.Flask.__call__ = __call__  # type: ignore[method-assign]
        _original_call = original


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
            _original_call = None
