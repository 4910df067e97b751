"""psycopg2 integration, against the real PostgreSQL server: connections and cursor factories."""

# ruff: noqa: S608 - these tests build SQL from generated table names on purpose

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from heron.agent.integrations import psycopg2 as integration
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
def instrumented() -> Iterator[None]:
    integration.setup()
    integration.setup()  # idempotent
    yield
    integration.teardown()


@pytest.fixture
def table() -> Iterator[str]:
    name = unique()
    conn = reach("PostgreSQL", lambda: psycopg2.connect(PG_CONNINFO))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, email text UNIQUE, n int)")
    yield name
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE {name}")
    conn.close()


def connect(**kwargs: Any) -> Any:
    conn = psycopg2.connect(PG_CONNINFO, **kwargs)
    conn.autocommit = True
    return conn


def test_statements_become_client_spans(
    instrumented: None, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    conn = connect()
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (email, n) VALUES (%s, %s)", (secret, 1))
        cur.execute(f"SELECT n FROM {table} WHERE email = %(email)s", {"email": secret})
        assert cur.fetchall() == [(1,)]
        cur.execute(f"SELECT n FROM {table} WHERE email = '{secret}' AND n < 10")
    conn.close()

    insert, select, literal = client_spans(spans)
    assert insert.name == f"INSERT {table}"
    assert attrs(select) == {
        "db.system.name": "postgresql",
        "db.namespace": PG_DB,
        "server.address": PG_HOST,
        "server.port": PG_PORT,
        "db.operation.name": "SELECT",
        "db.collection.name": table,
        "db.query.text": f"SELECT n FROM {table} WHERE email = %(email)s",
    }
    assert attrs(literal)["db.query.text"] == f"SELECT n FROM {table} WHERE email = ? AND n < ?"
    assert secret not in exported_text(spans)


def test_cursor_factories_keep_their_behaviour(
    instrumented: None, table: str, spans: InMemorySpanExporter
) -> None:
    conn = connect(cursor_factory=psycopg2.extras.RealDictCursor)
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (email, n) VALUES ('a', 1) RETURNING n")
        assert cur.fetchone() == {"n": 1}
    with conn.cursor(cursor_factory=psycopg2.extras.NamedTupleCursor) as cur:
        cur.execute(f"SELECT n FROM {table}")
        assert cur.fetchone().n == 1
    with conn.cursor(None, psycopg2.extras.DictCursor) as cur:  # factory by position
        cur.execute(f"SELECT n FROM {table}")
        assert cur.fetchone()["n"] == 1
    conn.close()
    dict_conn = connect(connection_factory=psycopg2.extras.DictConnection)
    assert isinstance(dict_conn, psycopg2.extras.DictConnection)
    with dict_conn.cursor() as cur:
        assert isinstance(cur, psycopg2.extras.DictCursor)  # its own default factory
        cur.execute(f"SELECT n FROM {table}")
        assert cur.fetchone()["n"] == 1
    dict_conn.close()
    assert [s.name for s in client_spans(spans)] == [f"INSERT {table}"] + [f"SELECT {table}"] * 3


def test_execute_values_and_executemany(
    instrumented: None, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    conn = connect()
    with conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur, f"INSERT INTO {table} (email, n) VALUES %s", [(secret, 1), ("b", 2)]
        )
        cur.executemany(f"INSERT INTO {table} (n) VALUES (%s)", [(3,), (4,)])
    conn.close()
    values, many = client_spans(spans)
    # execute_values sends bytes with the values inlined: they are obfuscated like literals
    assert attrs(values)["db.query.text"] == f"INSERT INTO {table} (email, n) VALUES (?,?),(?,?)"
    assert attrs(many)["db.operation.batch.size"] == 2
    assert secret not in exported_text(spans)


def test_errors_keep_the_sqlstate_but_not_the_message(
    instrumented: None, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    conn = connect()
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (email) VALUES (%s)", (secret,))
        with pytest.raises(psycopg2.errors.UniqueViolation):
            cur.execute(f"INSERT INTO {table} (email) VALUES (%s)", (secret,))
    conn.close()
    _, failed = client_spans(spans)
    assert failed.status.status_code is StatusCode.ERROR
    assert attrs(failed)["db.response.status_code"] == "23505"
    assert attrs(failed)["error.type"] == "psycopg2.errors.UniqueViolation"
    assert secret not in exported_text(spans)


def test_teardown_restores_psycopg2(spans: InMemorySpanExporter) -> None:
    original = psycopg2.connect
    integration.setup()
    assert psycopg2.connect is not original
    integration.teardown()
    assert psycopg2.connect is original
    conn = connect()
    assert type(conn) is psycopg2.extensions.connection
    conn.close()
