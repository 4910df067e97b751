"""Hand the current trace to the browser, so a page load and its backend request are one trace.

Two ways, both read by the RUM browser SDK (docs/rum.md, "Browser SDK"):

- ``heron.traceparent_meta()`` renders ``<meta name="traceparent" content="00-…-01">``
  for the current span, to put in a page template's ``<head>``;
- a ``Server-Timing: traceparent;desc="00-…-01"`` header on every response of an
  instrumented server (Flask, Django, FastAPI/Starlette, any WSGI/ASGI app), added by
  OpenTelemetry's global *response propagator*, which ``heron.init()`` installs unless
  ``server_timing=False`` (``HERON_SERVER_TIMING=false``).

Only sampled spans are handed out: an unsampled span is never exported, so a browser
span pointing at it would point at nothing. Nothing here raises into the app.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import format_span_id, format_trace_id

from heron.agent.guard import capture_internal_exceptions

SERVER_TIMING = "Server-Timing"


class Markup(str):
    """A ``str`` that Jinja and Django templates output unescaped (``__html__``), so
    ``{{ heron.traceparent_meta() }}`` needs no ``|safe``. Its content is hex digits."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def traceparent(context: Context | None = None) -> str:
    """``00-<trace id>-<span id>-01`` of the current (or ``context``'s) sampled span, or ""."""
    with capture_internal_exceptions:
        ctx = trace.get_current_span(context).get_span_context()
        if ctx.is_valid and ctx.trace_flags.sampled:
            return f"00-{format_trace_id(ctx.trace_id)}-{format_span_id(ctx.span_id)}-01"
    return ""


def traceparent_meta() -> str:
    """``<meta name="traceparent" content="00-…-01">`` for the current span, for a page's
    ``<head>``; "" when there is no sampled span (heron not initialised, outside a
    request). Safe to output unescaped in Jinja and Django templates. Never raises."""
    value = traceparent()
    return Markup(f'<meta name="traceparent" content="{value}">' if value else "")


class ServerTimingPropagator:
    """An OpenTelemetry response propagator (the contrib instrumentations call
    ``inject(carrier, context, setter)`` on each response) adding the current span's
    traceparent as a ``Server-Timing`` metric, which the browser exposes to the page as
    ``performance.getEntriesByType("navigation")[0].serverTiming``."""

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        with capture_internal_exceptions:
            value = traceparent(context)
            if not value:
                return
            if setter is None:
                from opentelemetry.instrumentation.propagators import default_setter

                setter = default_setter
            setter.set(carrier, SERVER_TIMING, f'traceparent;desc="{value}"')


def install_server_timing() -> bool:
    """Make ``ServerTimingPropagator`` the global response propagator, unless the app set
    one of its own (kept: one global slot). True when it is installed."""
    from opentelemetry.instrumentation import propagators

    current = propagators.get_global_response_propagator()
    if current is not None and not isinstance(current, ServerTimingPropagator):
        return False
    propagators.set_global_response_propagator(ServerTimingPropagator())
    return True
