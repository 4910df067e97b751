"""httpx integration: client spans for sync and async clients, ``traceparent`` sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from heron.agent.integrations import httpx as integration


@pytest.fixture
def instrumented() -> Iterator[None]:
    integration.setup()
    integration.setup()  # idempotent
    yield
    integration.teardown()


def test_sync_client(instrumented: None, spans: InMemorySpanExporter, echo_url: str) -> None:
    with httpx.Client() as client:
        headers = client.get(f"{echo_url}/a").json()
    (span,) = spans.get_finished_spans()
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert headers["traceparent"].split("-")[1:3] == [
        f"{span.context.trace_id:032x}",
        f"{span.context.span_id:016x}",
    ]


def test_async_client(instrumented: None, spans: InMemorySpanExporter, echo_url: str) -> None:
    async def fetch() -> dict[str, str]:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{echo_url}/b")).json()

    headers = asyncio.run(fetch())
    (span,) = spans.get_finished_spans()
    assert span.kind is SpanKind.CLIENT
    assert f"{span.context.span_id:016x}" in headers["traceparent"]
