"""psycopg (3) integration, against the real PostgreSQL server: sync, async, errors."""

# ruff: noqa: S608 - these tests build SQL from generated table names on purpose

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from psycopg import sql

import heron
from heron.agent.integrations import psycopg as integration
from tests.agent.dbs import (
    PG_CONNINFO,
    PG_DB,
    PG_HOST,
    PG_PORT,
    attrs,
    canary,
    client_spans,
    exported_text,
    reach,
    unique,
)


@pytest.fixture
def table() -> Iterator[str]:
    """A fresh table (created before tracing starts), dropped afterwards."""
    name = unique()
    with reach("PostgreSQL", lambda: psycopg.connect(PG_CONNINFO, autocommit=True)) as conn:
        conn.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, email text UNIQUE, n int)")
        yield name
        conn.execute(f"DROP TABLE {name}")


@pytest.fixture
def conn(table: str) -> Iterator[psycopg.Connection]:
    # Opened before setup(): heron patches the cursor classes, so it is traced all the same.
    with psycopg.connect(PG_CONNINFO, autocommit=True) as c:
        integration.setup()
        integration.setup()  # idempotent
        yield c
        integration.teardown()


def test_statements_become_client_spans(
    conn: psycopg.Connection, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    with heron.span("parent") as parent:
        conn.execute(f"INSERT INTO {table} (email, n) VALUES (%s, %s)", (secret, 1))
        row = conn.execute(f"SELECT id, n FROM {table} WHERE email = %s", (secret,)).fetchone()
    assert row == (1, 1)

    insert, select = client_spans(spans)
    assert (insert.name, select.name) == (f"INSERT {table}", f"SELECT {table}")
    assert select.kind is SpanKind.CLIENT
    assert select.parent is not None and select.parent.span_id == parent.get_span_context().span_id
    assert attrs(select) == {
        "db.system.name": "postgresql",
        "db.namespace": PG_DB,
        "server.address": PG_HOST,
        "server.port": PG_PORT,
        "db.operation.name": "SELECT",
        "db.collection.name": table,
        "db.query.text": f"SELECT id, n FROM {table} WHERE email = %s",
    }
    assert secret not in exported_text(spans)  # parameters are never recorded


def test_literals_composed_queries_and_cursors(
    conn: psycopg.Connection, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    cur = conn.cursor()
    cur.execute(f"SELECT n FROM {table} WHERE email = '{secret}' OR n IN (1, 2) OR email = $$x$$")
    query = sql.SQL("SELECT {} FROM {} WHERE email = {}").format(
        sql.Identifier("n"), sql.Identifier(table), sql.Literal(secret)
    )
    conn.execute(query)
    with conn.transaction(), conn.cursor(name="server_side") as named:
        named.execute(f"SELECT n FROM {table} WHERE n > 7")
        named.fetchall()
    client = psycopg.ClientCursor(conn)
    client.execute(f"SELECT n FROM {table} WHERE n = %s", (5,))

    plain, composed, server, client_side = client_spans(spans)  # transaction(): no spans
    assert attrs(plain)["db.query.text"] == (
        f"SELECT n FROM {table} WHERE email = ? OR n IN (?, ?) OR email = ?"
    )
    assert attrs(composed)["db.query.text"] == f'SELECT "n" FROM "{table}" WHERE email = ?'
    assert attrs(composed)["db.collection.name"] == table
    assert attrs(server)["db.query.text"] == f"SELECT n FROM {table} WHERE n > ?"
    assert attrs(client_side)["db.query.text"] == f"SELECT n FROM {table} WHERE n = %s"
    assert secret not in exported_text(spans)


def test_executemany_is_one_span(
    conn: psycopg.Connection, table: str, spans: InMemorySpanExporter
) -> None:
    rows = [(f"{i}@x", i) for i in range(5)]
    conn.cursor().executemany(f"INSERT INTO {table} (email, n) VALUES (%s, %s)", rows)
    (span,) = client_spans(spans)
    assert attrs(span)["db.operation.batch.size"] == 5
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (5,)


def test_errors_keep_the_sqlstate_but_not_the_message(
    conn: psycopg.Connection, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    conn.execute(f"INSERT INTO {table} (email) VALUES (%s)", (secret,))
    with pytest.raises(psycopg.errors.UniqueViolation) as raised:
        conn.execute(f"INSERT INTO {table} (email) VALUES (%s)", (secret,))
    assert secret in str(raised.value)  # PostgreSQL quotes the value in its DETAIL...

    _, failed = client_spans(spans)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "UniqueViolation"
    assert attrs(failed)["error.type"] == "psycopg.errors.UniqueViolation"
    assert attrs(failed)["db.response.status_code"] == "23505"
    assert secret not in exported_text(spans)  # ...which never leaves the process


def test_async_connections(table: str, spans: InMemorySpanExporter) -> None:
    async def work() -> list[tuple[int]]:
        async with await psycopg.AsyncConnection.connect(PG_CONNINFO, autocommit=True) as aconn:
            await aconn.execute(f"INSERT INTO {table} (email, n) VALUES (%s, %s)", ("a", 3))
            cur = aconn.cursor()
            await cur.executemany(f"INSERT INTO {table} (n) VALUES (%s)", [(4,), (5,)])
            result = await aconn.execute(f"SELECT n FROM {table} WHERE n >= 4 ORDER BY n")
            return await result.fetchall()

    integration.setup()
    try:
        assert asyncio.run(work()) == [(4,), (5,)]
    finally:
        integration.teardown()
    names = [s.name for s in client_spans(spans)]
    assert names == [f"INSERT {table}", f"INSERT {table}", f"SELECT {table}"]
    assert attrs(client_spans(spans)[1])["db.operation.batch.size"] == 2


def test_teardown_restores_psycopg(table: str, spans: InMemorySpanExporter) -> None:
    original = psycopg.Cursor.execute
    integration.setup()
    assert psycopg.Cursor.execute is not original
    integration.teardown()
    assert psycopg.Cursor.execute is original
    with psycopg.connect(PG_CONNINFO) as c:
        c.execute("SELECT 1")
    assert client_spans(spans) == []
