"""requests: a client span per request and W3C ``traceparent`` propagation downstream.

The contrib ``RequestsInstrumentor`` patches ``Session.send`` on the class, so sessions
created before ``heron.init()`` are covered too. The OTLP exporter's own requests are
not traced: the batch processor exports with instrumentation suppressed.
"""

from __future__ import annotations

NAME = "requests"
DISTRIBUTION = "requests"
MIN_VERSION = (2, 0)
TRIGGER = "requests"


def setup() -> None:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    instrumentor = RequestsInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def teardown() -> None:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    if RequestsInstrumentor().is_instrumented_by_opentelemetry:
        RequestsInstrumentor().uninstrument()
