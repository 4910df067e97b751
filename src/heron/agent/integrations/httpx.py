"""httpx: a client span per request (sync and async) and ``traceparent`` propagation.

The contrib ``HTTPXClientInstrumentor`` patches the transports' ``handle_request`` on
the classes, so clients created before ``heron.init()`` are covered too.
"""

from __future__ import annotations

NAME = "httpx"
DISTRIBUTION = "httpx"
MIN_VERSION = (0, 18)
TRIGGER = "httpx"


def setup() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def teardown() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    if HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
        HTTPXClientInstrumentor().uninstrument()
