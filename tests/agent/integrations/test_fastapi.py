"""FastAPI/Starlette integration: one server span per request, named by route template.

FastAPI here traces itself (native OpenTelemetry support) through the global provider;
plain Starlette apps get the contrib instrumentation from heron.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from heron.agent.integrations import fastapi as integration


def get(app: Starlette, *paths: str) -> list[httpx.Response]:
    """GET each path in-process, through httpx's ASGI transport (a real ASGI call)."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(run())


@pytest.fixture
def instrumented() -> Iterator[None]:
    integration.setup()
    integration.setup()  # idempotent
    yield
    integration.teardown()


def server_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


def test_fastapi_request_becomes_a_server_span(
    instrumented: None, spans: InMemorySpanExporter
) -> None:
    (response,) = get(make_app(), "/items/3")
    assert response.json() == {"item": 3}
    (span,) = server_spans(spans)
    assert span.name == "GET /items/{item_id}"
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/items/{item_id}"
    assert attributes["http.response.status_code"] == 200
    assert attributes["http.request.method"] == "GET"


def test_app_built_before_setup(spans: InMemorySpanExporter) -> None:
    app = make_app()
    integration.setup()
    try:
        get(app, "/items/1", "/items/2")
    finally:
        integration.teardown()
    assert [s.name for s in server_spans(spans)] == ["GET /items/{item_id}"] * 2


def test_errors_are_recorded(instrumented: None, spans: InMemorySpanExporter) -> None:
    (response,) = get(make_app(), "/boom")
    assert response.status_code == 500
    (span,) = server_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "RuntimeError"


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello {request.path_params['name']}")


def test_plain_starlette_app(instrumented: None, spans: InMemorySpanExporter) -> None:
    app = Starlette(routes=[Route("/hello/{name}", hello)])
    assert [r.text for r in get(app, "/hello/ada", "/hello/bob")] == ["hello ada", "hello bob"]
    names = [s.name for s in server_spans(spans)]
    assert names == ["GET /hello/{name}"] * 2
    assert dict(server_spans(spans)[0].attributes or {})["http.route"] == "/hello/{name}"


def test_mounted_apps_add_no_second_server_span(
    instrumented: None, spans: InMemorySpanExporter
) -> None:
    outer = make_app()
    outer.mount("/inner", Starlette(routes=[Route("/hello/{name}", hello)]))
    assert get(outer, "/inner/hello/ada")[0].text == "hello ada"
    assert len(server_spans(spans)) == 1


def test_fastapi_telemetry_settings_are_respected(
    instrumented: None, spans: InMemorySpanExporter
) -> None:
    app = FastAPI(telemetry={"tracing": False})

    @app.get("/quiet")
    async def quiet() -> str:
        return "shh"

    assert get(app, "/quiet")[0].status_code == 200
    assert server_spans(spans) == []
