"""SQLAlchemy integration: Core and ORM, one span per statement even over a traced driver."""

# ruff: noqa: S608 - these tests build SQL from generated table names on purpose

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import orm

from heron.agent.integrations import psycopg as psycopg_integration
from heron.agent.integrations import pymysql as pymysql_integration
from heron.agent.integrations import sqlalchemy as integration
from heron.agent.integrations import sqlite3 as sqlite3_integration
from tests.agent.dbs import (
    MARIADB_URL,
    PG_DB,
    PG_HOST,
    PG_PORT,
    PG_URL,
    attrs,
    canary,
    client_spans,
    exported_text,
    reach,
    unique,
)


class Base(orm.DeclarativeBase):
    pass


def customer_model(table: str) -> type:
    class Customer(Base):
        __tablename__ = table
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        email: orm.Mapped[str] = orm.mapped_column(sa.String(200), unique=True)

    return Customer


@pytest.fixture
def instrumented() -> Iterator[None]:
    """SQLAlchemy and the drivers underneath it, all instrumented (as heron.init() does)."""
    drivers = (psycopg_integration, pymysql_integration, sqlite3_integration)
    for driver in drivers:
        driver.setup()
    integration.setup()
    integration.setup()  # idempotent
    yield
    integration.teardown()
    for driver in drivers:
        driver.teardown()


@pytest.fixture
def pg_engine() -> Iterator[sa.Engine]:
    # Created before setup(): the listeners are on the Engine class, so it is covered.
    engine = sa.create_engine(PG_URL)
    reach("PostgreSQL", lambda: engine.connect().close())
    yield engine
    engine.dispose()


def test_core_statements_become_one_span_each(
    pg_engine: sa.Engine, instrumented: None, spans: InMemorySpanExporter
) -> None:
    table = unique()
    secret = canary()
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id int, email text)")
        conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, :email)"), {"email": secret})
        rows = conn.execute(sa.text(f"SELECT id FROM {table} WHERE email = :e"), {"e": secret})
        assert rows.all() == [(1,)]
        conn.exec_driver_sql(f"SELECT id FROM {table} WHERE email = '{secret}'")
        conn.exec_driver_sql(f"DROP TABLE {table}")

    names = [s.name for s in client_spans(spans)]
    assert names == [  # no second span from the psycopg integration underneath
        f"CREATE {table}",
        f"INSERT {table}",
        f"SELECT {table}",
        f"SELECT {table}",
        f"DROP {table}",
    ]
    select, literal = client_spans(spans)[2:4]
    assert select.kind is SpanKind.CLIENT
    assert attrs(select) == {
        "db.system.name": "postgresql",
        "db.namespace": PG_DB,
        "server.address": PG_HOST,
        "server.port": PG_PORT,
        "db.operation.name": "SELECT",
        "db.collection.name": table,
        "db.query.text": f"SELECT id FROM {table} WHERE email = %(e)s",
    }
    assert select.instrumentation_scope is not None
    assert select.instrumentation_scope.name == "heron.agent.integrations.sqlalchemy"
    assert attrs(literal)["db.query.text"] == f"SELECT id FROM {table} WHERE email = ?"
    assert secret not in exported_text(spans)


def test_orm_on_mariadb(instrumented: None, spans: InMemorySpanExporter) -> None:
    table = unique()
    secret = canary()
    Customer = customer_model(table)
    engine = sa.create_engine(MARIADB_URL)
    reach("MariaDB", lambda: engine.connect().close())
    Customer.__table__.create(engine)  # type: ignore[attr-defined]
    try:
        spans.clear()
        with orm.Session(engine) as session:
            session.add(Customer(email=secret))
            session.commit()
            found = session.scalars(sa.select(Customer).where(Customer.email == secret)).one()
            assert found.email == secret
            # inline literals (literal_binds) are obfuscated like any other
            stmt = sa.select(Customer.id).where(Customer.email == secret)
            compiled = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
            session.execute(sa.text(compiled)).all()
    finally:
        Customer.__table__.drop(engine)  # type: ignore[attr-defined]
        engine.dispose()

    ours = [s for s in client_spans(spans) if attrs(s).get("db.collection.name") == table]
    assert [s.name for s in ours] == [
        f"INSERT {table}",
        f"SELECT {table}",
        f"SELECT {table}",
        f"DROP {table}",
    ]
    insert, select, literal, _ = ours
    assert attrs(insert)["db.system.name"] == "mariadb"
    assert attrs(select)["db.namespace"] == "test"
    assert "%(email_1)s" in str(attrs(select)["db.query.text"])
    assert (
        attrs(literal)["db.query.text"] == f"SELECT {table}.id FROM {table} WHERE {table}.email = ?"
    )
    assert secret not in exported_text(spans)


def test_sqlite_file(tmp_path: Path, instrumented: None, spans: InMemorySpanExporter) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'orm.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a int)")
        conn.execute(sa.text("INSERT INTO t VALUES (:a)"), [{"a": 1}, {"a": 2}])
    engine.dispose()
    pragma, create, insert = client_spans(spans)  # SQLAlchemy's own setup, on the driver
    assert pragma.name == "PRAGMA orm"
    assert attrs(create)["db.namespace"] == "orm" and attrs(create)["db.system.name"] == "sqlite"
    assert attrs(insert)["db.operation.batch.size"] == 2
    assert integration._target(engine).connect is not None  # a file: EXPLAIN can reach it


def test_errors(pg_engine: sa.Engine, instrumented: None, spans: InMemorySpanExporter) -> None:
    secret = canary()
    with pytest.raises(sa.exc.ProgrammingError), pg_engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT '{secret}' FROM no_such_table_here")
    (failed,) = [s for s in client_spans(spans) if s.status.status_code is StatusCode.ERROR]
    assert attrs(failed)["error.type"] == "psycopg.errors.UndefinedTable"
    assert attrs(failed)["db.response.status_code"] == "42P01"
    assert secret not in exported_text(spans)
    # the next statement is traced normally: nothing was left claimed
    with pg_engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert client_spans(spans)[-1].name == f"SELECT {PG_DB}"


def test_teardown_stops_tracing(pg_engine: sa.Engine, spans: InMemorySpanExporter) -> None:
    integration.setup()
    integration.teardown()
    with pg_engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert client_spans(spans) == []
