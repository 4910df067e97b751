"""``heron serve`` on ClickHouse (chdb, in the server process), with roles.

Real processes, real OpenTelemetry exporter: spans sent to ``heron serve`` with
``HERON_STORAGE_BACKEND=clickhouse`` are answered by its API; an ingest-role process
stores them and a process serving the API (same ClickHouse data, same PostgreSQL state)
answers with them. chdb lets one process open a data directory, so the two processes run
one after the other here; with a ClickHouse server they run side by side
(docs/scale-out.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.conftest import HeronProcess, make_heron

pytestmark = pytest.mark.e2e

PG = "postgresql://postgres@127.0.0.1:5432"


def send_spans(h: HeronProcess, service: str) -> str:
    """One request (a server span and a database span) through the OTLP/HTTP exporter;
    returns its trace id. The exporter raises nothing, so the answer is checked by reads."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{h.url}/v1/traces", headers={"x-heron-key": h.key})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.clickhouse_serve")
    attrs = {"http.request.method": "GET", "http.route": "/orders", "url.path": "/orders"}
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER, attributes=attrs) as s:
        trace_id = format(s.get_span_context().trace_id, "032x")
        db = {"db.system.name": "postgresql", "db.query.text": "SELECT * FROM orders"}
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT, attributes=db):
            pass
    provider.shutdown()
    return trace_id


def assert_answers_with(h: HeronProcess, service: str, trace_id: str) -> None:
    trace = h.wait_for(f"/api/v1/traces/{trace_id}", lambda j: len(j["spans"]) == 2)
    assert {s["name"] for s in trace["spans"]} == {"GET /orders", "SELECT orders"}
    services = h.wait_for(
        "/api/v1/services", lambda j: any(s["service"] == service for s in j["services"])
    )
    (row,) = [s for s in services["services"] if s["service"] == service]
    assert (row["requests"], row["errors"]) == (1, 0)
    listed = h.api("/api/v1/traces", service=service).json()["traces"]
    assert [t["trace_id"] for t in listed] == [trace_id]


def clickhouse_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "HERON_STORAGE_BACKEND": "clickhouse",
        "HERON_CLICKHOUSE_URL": f"chdb://{tmp / 'chdb'}",
        "HERON_CLICKHOUSE_DATABASE": "heron_e2e",
        **extra,
    }


def test_serve_stores_telemetry_in_clickhouse(tmp_path: Path) -> None:
    h = make_heron(tmp_path, **clickhouse_env(tmp_path)).start()
    try:
        health = httpx.get(f"{h.url}/healthz").json()
        assert (health["status"], health["role"]) == ("ok", "all")
        trace_id = send_spans(h, "ch-shop")
        assert_answers_with(h, "ch-shop", trace_id)
    finally:
        h.stop()
    log = h.log()
    assert "Application shutdown complete." in log  # the store closed cleanly
    assert f"storage: ClickHouse chdb://{tmp_path / 'chdb'} database heron_e2e" in log
    # telemetry went to ClickHouse: no DuckDB telemetry file, state in its own file
    assert not (h.data_dir / "heron.duckdb").exists()
    assert (h.data_dir / "state.duckdb").exists()
    assert any((tmp_path / "chdb").iterdir())


@pytest.fixture
def state_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the machine's server, dropped afterwards."""
    name = f"heron_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG}/test", autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG}/{name}"
    with psycopg.connect(f"{PG}/test", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_ingest_role_stores_what_the_api_then_answers(tmp_path: Path, state_url: str) -> None:
    env = clickhouse_env(tmp_path, HERON_STATE_URL=state_url)
    ingest = make_heron(tmp_path / "ingest", HERON_ROLE="ingest", **env)
    (tmp_path / "ingest").mkdir()
    ingest.start()
    try:
        assert httpx.get(f"{ingest.url}/healthz").json()["role"] == "ingest"
        trace_id = send_spans(ingest, "ingest-shop")
        # the ingest process serves no API or UI
        assert ingest.api("/api/v1/services").status_code == 404
        assert httpx.get(f"{ingest.url}/login").status_code == 404
    finally:
        ingest.stop()
    assert "Application shutdown complete." in ingest.log()
    (tmp_path / "query").mkdir()
    query = make_heron(tmp_path / "query", **env).start()
    try:
        assert_answers_with(query, "ingest-shop", trace_id)
    finally:
        query.stop()
