"""requests integration: client spans, and ``traceparent`` sent to the server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import heron
from heron.agent.integrations import requests as integration


@pytest.fixture
def instrumented() -> Iterator[None]:
    integration.setup()
    integration.setup()  # idempotent
    yield
    integration.teardown()


def test_client_span_and_propagation(
    instrumented: None, spans: InMemorySpanExporter, echo_url: str
) -> None:
    session = requests.Session()  # created before or after setup: both are covered
    with heron.span("parent") as parent:
        headers = session.get(f"{echo_url}/things?x=1", timeout=5).json()

    client, _ = spans.get_finished_spans()
    assert client.kind is SpanKind.CLIENT and client.name == "GET"
    assert client.parent is not None and client.parent.span_id == parent.get_span_context().span_id
    attributes = dict(client.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.full"] == f"{echo_url}/things?x=1"
    trace_id, span_id = f"{client.context.trace_id:032x}", f"{client.context.span_id:016x}"
    version, sent_trace_id, sent_span_id, flags = headers["traceparent"].split("-")
    assert (version, sent_trace_id, sent_span_id) == ("00", trace_id, span_id)
    assert int(flags, 16) & 1  # sampled


def test_client_errors_are_marked(
    instrumented: None, spans: InMemorySpanExporter, echo_url: str
) -> None:
    assert requests.get(f"{echo_url}/missing", timeout=5).status_code == 404
    (client,) = spans.get_finished_spans()
    assert client.status.status_code is StatusCode.ERROR  # 4xx is an error on client spans


def test_teardown_stops_tracing(spans: InMemorySpanExporter, echo_url: str) -> None:
    integration.setup()
    integration.teardown()
    headers = requests.get(f"{echo_url}/", timeout=5).json()
    assert "traceparent" not in headers and spans.get_finished_spans() == ()
