"""Heron: self-hosted APM for Python. This package's top level is the agent's public API.

    import heron

    heron.init(service="shop", key="...", environment="production")

    with heron.span("checkout", attributes={"cart.items": 3}):
        ...

    @heron.traced
    def compute() -> int: ...

    heron.record_metric("payment.amount", 42.5, currency="EUR")
    heron.traceparent_meta()  # <meta name="traceparent" ...> for the browser SDK (RUM)
    orders = heron.counter("orders.placed")
    orders.add(1, {"country": "FR"})

    try:
        charge(card)
    except PaymentError:
        event_id = heron.capture_exception()

Importing ``heron`` is light: it loads the OpenTelemetry API only. ``init()`` loads the
SDK and exporter; the server's dependencies (DuckDB, FastAPI, ...) are never imported.
"""

# No ``from __future__ import annotations`` here: it would add a public ``annotations``.
from heron._version import __version__
from heron.agent.api import span, traced
from heron.agent.errors import (
    capture_exception,
    capture_message,
    last_event_id,
    set_tag,
    set_user,
)
from heron.agent.metrics import (
    counter,
    gauge,
    histogram,
    metrics_app,
    record_metric,
    up_down_counter,
)
from heron.agent.runtime import AgentStats, flush, init, shutdown, stats
from heron.agent.trace_context import traceparent_meta

__all__ = [
    "AgentStats",
    "__version__",
    "capture_exception",
    "capture_message",
    "counter",
    "flush",
    "gauge",
    "histogram",
    "init",
    "last_event_id",
    "metrics_app",
    "record_metric",
    "set_tag",
    "set_user",
    "shutdown",
    "span",
    "stats",
    "traced",
    "traceparent_meta",
    "up_down_counter",
]
