"""PyMySQL integration, against the real MariaDB server."""

# ruff: noqa: S608 - these tests build SQL from generated table names on purpose

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pymysql.cursors
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from heron.agent.integrations import pymysql as integration
from tests.agent.dbs import MARIADB, attrs, canary, client_spans, exported_text, reach, unique


@pytest.fixture
def table() -> Iterator[str]:
    name = unique()
    conn = reach("MariaDB", lambda: pymysql.connect(**MARIADB, autocommit=True))
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {name} (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200) UNIQUE, n INT)"
        )
    yield name
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE {name}")
    conn.close()


@pytest.fixture
def conn(table: str) -> Iterator[pymysql.Connection]:
    c = pymysql.connect(**MARIADB, autocommit=True)  # before setup(): traced all the same
    integration.setup()
    integration.setup()  # idempotent
    yield c
    integration.teardown()
    c.close()


def test_statements_become_client_spans(
    conn: pymysql.Connection, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (email, n) VALUES (%s, %s)", (secret, 1))
        cur.execute(f"SELECT n FROM {table} WHERE email = %s", (secret,))
        assert cur.fetchall() == ((1,),)
        cur.execute(f'SELECT n FROM {table} WHERE email = "{secret}" OR n = 0x1F # {secret}')

    insert, select, literal = client_spans(spans)
    assert insert.name == f"INSERT {table}" and select.kind is SpanKind.CLIENT
    assert attrs(select) == {
        "db.system.name": "mariadb",
        "db.namespace": "test",
        "server.address": "127.0.0.1",
        "server.port": 3306,
        "db.operation.name": "SELECT",
        "db.collection.name": table,
        "db.query.text": f"SELECT n FROM {table} WHERE email = %s",
    }
    assert attrs(literal)["db.query.text"] == f"SELECT n FROM {table} WHERE email = ? OR n = ?"
    assert secret not in exported_text(spans)


def test_executemany_is_one_span(
    conn: pymysql.Connection, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        # PyMySQL turns this into one INSERT with the values inlined, sent via execute()
        cur.executemany(f"INSERT INTO {table} (email, n) VALUES (%s, %s)", [(secret, 1), ("b", 2)])
        cur.executemany(f"UPDATE {table} SET n = n + 10 WHERE n = %s", [(1,), (2,)])  # a loop
        cur.execute(f"SELECT n FROM {table} ORDER BY n")
        assert cur.fetchall() == [{"n": 11}, {"n": 12}]
    insert, update, _ = client_spans(spans)
    assert attrs(insert)["db.query.text"] == f"INSERT INTO {table} (email, n) VALUES (%s, %s)"
    assert attrs(insert)["db.operation.batch.size"] == 2
    assert update.name == f"UPDATE {table}"
    assert secret not in exported_text(spans)


def test_errors_keep_the_error_number_but_not_the_message(
    conn: pymysql.Connection, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (email) VALUES (%s)", (secret,))
        with pytest.raises(pymysql.err.IntegrityError) as raised:
            cur.execute(f"INSERT INTO {table} (email) VALUES (%s)", (secret,))
    assert secret in str(raised.value)  # "Duplicate entry '<value>' ..."
    _, failed = client_spans(spans)
    assert failed.status.status_code is StatusCode.ERROR
    assert attrs(failed)["db.response.status_code"] == "1062"
    assert attrs(failed)["error.type"] == "pymysql.err.IntegrityError"
    assert secret not in exported_text(spans)


def test_teardown_restores_pymysql(table: str, spans: InMemorySpanExporter) -> None:
    original = pymysql.cursors.Cursor.execute
    integration.setup()
    integration.teardown()
    assert pymysql.cursors.Cursor.execute is original
    c = pymysql.connect(**MARIADB)
    with c.cursor() as cur:
        cur.execute("SELECT 1")
    c.close()
    assert client_spans(spans) == []
