"""sqlite3 integration: a client span per statement, however the app runs it."""

# ruff: noqa: S608 - these tests build SQL from generated table names on purpose

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import heron
from heron.agent.integrations import sqlite3 as integration
from tests.agent.dbs import attrs, canary, client_spans, db_settings, exported_text


@pytest.fixture
def instrumented() -> Iterator[None]:
    integration.setup()
    integration.setup()  # idempotent
    yield
    integration.teardown()


@pytest.fixture
def shop(tmp_path: Path, instrumented: None) -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(tmp_path / "shop.db")
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, total REAL)")
    yield con
    con.close()


def test_statements_become_client_spans(
    shop: sqlite3.Connection, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    with heron.span("parent") as parent:
        shop.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("a@b.c", 9.5))
        cur = shop.cursor()
        cur.execute("SELECT id, total FROM orders WHERE email = ?", ("a@b.c",))
        assert cur.fetchall() == [(1, 9.5)]

    insert, select = client_spans(spans)
    assert insert.name == "INSERT orders" and select.name == "SELECT orders"
    assert select.kind is SpanKind.CLIENT
    assert select.parent is not None and select.parent.span_id == parent.get_span_context().span_id
    assert attrs(select) == {
        "db.system.name": "sqlite",
        "db.namespace": "shop",
        "db.operation.name": "SELECT",
        "db.collection.name": "orders",
        "db.query.text": "SELECT id, total FROM orders WHERE email = ?",
    }


def test_literals_are_obfuscated_by_default(
    shop: sqlite3.Connection, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    shop.execute(f"SELECT id FROM orders WHERE email = '{secret}' AND total > 100 /* {secret} */")
    (span,) = client_spans(spans)
    assert attrs(span)["db.query.text"] == "SELECT id FROM orders WHERE email = ? AND total > ?"
    assert secret not in exported_text(spans)


def test_record_sql_raw_and_off(shop: sqlite3.Connection, spans: InMemorySpanExporter) -> None:
    sql = "SELECT id FROM orders WHERE email = 'x@y.z'"
    with db_settings(record_sql="raw"):
        shop.execute(sql)
    with db_settings(record_sql="off"):
        shop.execute(sql)
    raw, off = client_spans(spans)
    assert attrs(raw)["db.query.text"] == sql
    assert "db.query.text" not in attrs(off)
    assert off.name == "SELECT orders" and attrs(off)["db.operation.name"] == "SELECT"


def test_old_names_with_database_dup(shop: sqlite3.Connection, spans: InMemorySpanExporter) -> None:
    with db_settings(old_names=True):
        shop.execute("SELECT id FROM orders")
    (span,) = client_spans(spans)
    a = attrs(span)
    assert a["db.system"] == "sqlite" and a["db.statement"] == "SELECT id FROM orders"
    assert a["db.name"] == "shop" and a["db.sql.table"] == "orders"
    assert a["db.system.name"] == "sqlite"  # the current names stay


def test_executemany_is_one_span_with_its_batch_size(
    shop: sqlite3.Connection, spans: InMemorySpanExporter
) -> None:
    shop.executemany("INSERT INTO orders (email) VALUES (?)", [("a",), ("b",), ("c",)])
    shop.cursor().executemany("INSERT INTO orders (email) VALUES (?)", iter([("d",)]))
    many, generator = client_spans(spans)
    assert attrs(many)["db.operation.batch.size"] == 3
    assert "db.operation.batch.size" not in attrs(generator)  # unknown without consuming it
    assert shop.execute("SELECT count(*) FROM orders").fetchone() == (4,)


def test_the_connection_behaves_as_before(tmp_path: Path, instrumented: None) -> None:
    class MyConnection(sqlite3.Connection):
        marker = "mine"

    class MyCursor(sqlite3.Cursor):
        pass

    con = sqlite3.connect(tmp_path / "x.db", factory=MyConnection)
    assert isinstance(con, MyConnection) and isinstance(con, sqlite3.Connection)
    con.row_factory = sqlite3.Row
    row = con.execute("SELECT 1 AS one").fetchone()
    assert row["one"] == 1
    assert isinstance(con.cursor(MyCursor), MyCursor)
    with con:
        con.execute("CREATE TABLE t (a)")
    con.close()
    uri = sqlite3.connect(f"file:{tmp_path / 'x.db'}?mode=ro", uri=True)
    assert uri.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_errors_are_marked_without_their_message(
    shop: sqlite3.Connection, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    with pytest.raises(sqlite3.OperationalError):
        shop.execute(f"SELECT '{secret}' FROM missing_table")
    (span,) = client_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "sqlite3.OperationalError"
    assert attrs(span)["db.response.status_code"] == "SQLITE_ERROR"
    assert [dict(e.attributes or {}) for e in span.events] == [
        {"exception.type": "sqlite3.OperationalError"}
    ]
    assert secret not in exported_text(spans)


def test_memory_databases_are_traced_but_not_explained(
    instrumented: None, spans: InMemorySpanExporter
) -> None:
    con = sqlite3.connect(":memory:")
    con.execute("SELECT 1")
    (span,) = client_spans(spans)
    assert attrs(span)["db.namespace"] == ":memory:"
    assert span.name == "SELECT :memory:"
    assert integration._tracing.target(con.cursor()).connect is None  # type: ignore[union-attr]


def test_teardown_restores_sqlite3(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    original = sqlite3.connect
    integration.setup()
    assert sqlite3.connect is not original
    integration.teardown()
    assert sqlite3.connect is original and sqlite3.dbapi2.connect is original
    sqlite3.connect(":memory:").execute("SELECT 1")
    assert client_spans(spans) == []
