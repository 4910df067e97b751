"""mysqlclient (MySQLdb) integration, against the real MariaDB server."""

# ruff: noqa: S608 - these tests build SQL from generated table names on purpose

from __future__ import annotations

from collections.abc import Iterator

import MySQLdb
import MySQLdb.cursors
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from heron.agent.integrations import mysqlclient as integration
from tests.agent.dbs import MARIADB, attrs, canary, client_spans, exported_text, reach, unique


@pytest.fixture
def instrumented() -> Iterator[None]:
    integration.setup()
    integration.setup()  # idempotent
    yield
    integration.teardown()


@pytest.fixture
def table() -> Iterator[str]:
    name = unique()
    conn = reach("MariaDB", lambda: MySQLdb.connect(**MARIADB, autocommit=True))
    cur = conn.cursor()
    cur.execute(
        f"CREATE TABLE {name} (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200) UNIQUE, n INT)"
    )
    yield name
    cur.execute(f"DROP TABLE {name}")
    conn.close()


def test_statements_become_client_spans(
    instrumented: None, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    conn = MySQLdb.connect(**MARIADB, autocommit=True, cursorclass=MySQLdb.cursors.DictCursor)
    cur = conn.cursor()
    cur.execute(f"INSERT INTO {table} (email, n) VALUES (%s, %s)", (secret, 1))
    cur.execute(f"SELECT n FROM {table} WHERE email = %s", (secret,))
    assert cur.fetchall() == ({"n": 1},)
    cur.execute(f"SELECT n FROM {table} WHERE email = '{secret}'")
    cur.executemany(f"INSERT INTO {table} (n) VALUES (%s)", [(2,), (3,), (4,)])
    conn.close()

    insert, select, literal, many = client_spans(spans)
    assert attrs(select) == {
        "db.system.name": "mariadb",
        "db.namespace": "test",
        "server.address": "127.0.0.1",
        "server.port": 3306,
        "db.operation.name": "SELECT",
        "db.collection.name": table,
        "db.query.text": f"SELECT n FROM {table} WHERE email = %s",
    }
    assert attrs(literal)["db.query.text"] == f"SELECT n FROM {table} WHERE email = ?"
    assert attrs(many)["db.operation.batch.size"] == 3 and many.name == f"INSERT {table}"
    assert insert.name == f"INSERT {table}"
    assert secret not in exported_text(spans)


def test_connections_opened_before_setup_are_traced_with_less(
    table: str, spans: InMemorySpanExporter
) -> None:
    conn = MySQLdb.connect(**MARIADB)
    integration.setup()
    try:
        conn.cursor().execute(f"SELECT n FROM {table}")
    finally:
        integration.teardown()
        conn.close()
    (span,) = client_spans(spans)
    assert attrs(span)["server.address"] == "127.0.0.1"
    assert attrs(span)["db.system.name"] == "mariadb"
    assert "db.namespace" not in attrs(span)  # the arguments were not seen


def test_errors_keep_the_error_number_but_not_the_message(
    instrumented: None, table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    conn = MySQLdb.connect(**MARIADB, autocommit=True)
    cur = conn.cursor()
    cur.execute(f"INSERT INTO {table} (email) VALUES (%s)", (secret,))
    with pytest.raises(MySQLdb.IntegrityError):
        cur.execute(f"INSERT INTO {table} (email) VALUES (%s)", (secret,))
    conn.close()
    _, failed = client_spans(spans)
    assert failed.status.status_code is StatusCode.ERROR
    assert attrs(failed)["db.response.status_code"] == "1062"
    assert secret not in exported_text(spans)


def test_teardown_restores_mysqlclient(table: str, spans: InMemorySpanExporter) -> None:
    original = MySQLdb.cursors.BaseCursor.execute
    integration.setup()
    integration.teardown()
    assert MySQLdb.cursors.BaseCursor.execute is original
    conn = MySQLdb.connect(**MARIADB)
    conn.cursor().execute("SELECT 1")
    conn.close()
    assert client_spans(spans) == []
