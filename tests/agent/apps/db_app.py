"""A job that uses every database heron traces, with a canary planted in its literals.

Usage: python db_app.py CANARY WORKDIR (the HERON_* variables configure the agent)

It runs inside one ``heron.span("db-job")`` (one trace): statements with the canary as a
parameter, as an inline literal and in a comment; a unique violation whose message quotes
the canary (caught here, as apps do); slow SELECTs on PostgreSQL and MariaDB (with the
canary in their WHERE clause) whose EXPLAIN plans heron fetches in the background; a slow
UPDATE it must not explain. It waits for the plans, flushes, and prints one JSON line:
``{"trace_id": ..., "tables": {...}, "stats": {...}}``.
"""

# ruff: noqa: S608 - these tests build SQL from generated table names on purpose

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
import uuid

import heron

heron.init()

import sqlite3  # noqa: E402

import MySQLdb  # noqa: E402
import psycopg  # noqa: E402
import psycopg2  # noqa: E402
import pymysql  # noqa: E402
import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy import orm  # noqa: E402

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}
SLOW_S = 0.6  # above the default explain_threshold_ms (500)


def postgres(table: str, canary: str) -> None:
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, email text UNIQUE, n int)")
        conn.execute(f"INSERT INTO {table} (email, n) VALUES (%s, %s)", (canary, 1))
        conn.execute(f"INSERT INTO {table} (email, n) VALUES ('{canary}-2', 2) /* {canary} */")
        # Its DETAIL says "Key (email)=(<canary>) already exists"; the app handles it.
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            conn.execute(f"INSERT INTO {table} (email) VALUES (%s)", (canary,))
        conn.execute(
            f"SELECT id, pg_sleep({SLOW_S}) FROM {table} WHERE email = '{canary}'"
        ).fetchall()
        conn.execute(f"UPDATE {table} SET n = n + 1 WHERE (SELECT true FROM pg_sleep({SLOW_S}))")
    conn2 = psycopg2.connect(PG)
    with conn2.cursor() as cur:
        cur.execute(f"SELECT n FROM {table} WHERE email LIKE '%{canary}%'")
    conn2.close()


def mariadb(table: str, canary: str) -> None:
    conn = pymysql.connect(**MARIADB, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200))")
        cur.execute(f"INSERT INTO {table} (email) VALUES ('{canary}'), (%s)", (canary,))
        cur.execute(f'SELECT id, SLEEP({SLOW_S}) FROM {table} WHERE email = "{canary}" LIMIT 1')
    conn.close()
    conn2 = MySQLdb.connect(**MARIADB)
    cur2 = conn2.cursor()
    cur2.execute(f"SELECT id FROM {table} WHERE email = '{canary}' # {canary}")
    conn2.close()


class Base(orm.DeclarativeBase):
    pass


def sqlalchemy_orm(table: str, canary: str) -> None:
    class Customer(Base):
        __tablename__ = table
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        email: orm.Mapped[str] = orm.mapped_column(sa.String(200))

    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        session.add(Customer(email=canary))
        session.commit()
        stmt = sa.select(Customer.id).where(Customer.email == canary)
        session.execute(sa.text(str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))))
        session.scalars(stmt).all()
    Base.metadata.drop_all(engine)
    engine.dispose()


def sqlite(path: str, canary: str) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
    con.execute(f"INSERT INTO customers (email) VALUES ('{canary}')")
    con.execute("SELECT id FROM customers WHERE email = ?", (canary,)).fetchall()
    con.commit()
    con.close()


def cache(canary: str) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379)
    client.set(f"heron:{canary}", canary, ex=60)
    client.get(f"heron:{canary}")
    client.delete(f"heron:{canary}")


def drop(tables: dict[str, str]) -> None:
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {tables['postgresql']}")
    conn = pymysql.connect(**MARIADB, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {tables['mariadb']}")
    conn.close()


def main() -> None:
    canary, workdir = sys.argv[1], sys.argv[2]
    tables = {s: f"heron_e2e_{uuid.uuid4().hex[:10]}" for s in ("postgresql", "mariadb", "orm")}
    try:
        with heron.span("db-job") as root:
            postgres(tables["postgresql"], canary)
            mariadb(tables["mariadb"], canary)
            sqlalchemy_orm(tables["orm"], canary)
            sqlite(f"{workdir}/app.db", canary)
            cache(canary)
    finally:
        drop(tables)
    deadline = time.monotonic() + 30
    while heron.stats().explains + heron.stats().explain_failures < 2:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    heron.flush(timeout=10)
    trace_id = f"{root.get_span_context().trace_id:032x}"
    stats = dataclasses.asdict(heron.stats())
    print(json.dumps({"trace_id": trace_id, "tables": tables, "stats": stats}), flush=True)


if __name__ == "__main__":
    main()
