"""Flask integration: every app is instrumented on its first call, however it was built."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask  # imported before setup(), as apps often do
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from heron.agent.integrations import flask as integration


@pytest.fixture
def instrumented() -> Iterator[None]:
    integration.setup()
    integration.setup()  # idempotent
    yield
    integration.teardown()


def make_app() -> Flask:
    app = Flask("shop")

    @app.get("/users/<int:uid>")
    def user(uid: int) -> dict[str, int]:
        return {"uid": uid}

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    return app


def server_spans(spans: InMemorySpanExporter) -> list:  # type: ignore[type-arg]
    return [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]


def test_request_becomes_a_server_span_named_by_route(
    instrumented: None, spans: InMemorySpanExporter
) -> None:
    client = make_app().test_client()
    assert client.get("/users/5").status_code == 200
    (span,) = server_spans(spans)
    assert span.name == "GET /users/<int:uid>"
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/users/<int:uid>"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.path"] == "/users/5"
    assert "http.method" not in attributes  # current semantic conventions only


def test_app_built_before_setup_is_instrumented(spans: InMemorySpanExporter) -> None:
    app = make_app()
    integration.setup()
    try:
        app.test_client().get("/users/1")
        app.test_client().get("/users/2")
    finally:
        integration.teardown()
    assert [s.name for s in server_spans(spans)] == ["GET /users/<int:uid>"] * 2


def test_errors_are_recorded(instrumented: None, spans: InMemorySpanExporter) -> None:
    assert make_app().test_client().get("/boom").status_code == 500
    (span,) = server_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["http.response.status_code"] == 500
    assert [e.name for e in span.events] == ["exception"]


def test_apps_instrumented_otherwise_are_left_alone(
    instrumented: None, spans: InMemorySpanExporter
) -> None:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    app = make_app()
    FlaskInstrumentor.instrument_app(app)
    app.test_client().get("/users/3")
    assert len(server_spans(spans)) == 1


def test_app_that_already_served_is_not_touched(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    app.test_client().get("/users/1")
    integration.setup()
    try:
        assert app.test_client().get("/users/2").status_code == 200
    finally:
        integration.teardown()
    assert server_spans(spans) == []
    assert "served requests before heron.init()" in caplog.text


def test_teardown_restores_flask(spans: InMemorySpanExporter) -> None:
    original = Flask.__call__
    integration.setup()
    assert Flask.__call__ is not original
    integration.teardown()
    assert Flask.__call__ is original
    make_app().test_client().get("/users/1")
    assert server_spans(spans) == []
