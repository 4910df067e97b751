"""EXPLAIN capture: slow SELECTs get a plan on a connection of their own; writes never do.

Genuinely slow queries on the real PostgreSQL and MariaDB servers (``pg_sleep``,
``SLEEP``) and SQLite (an unindexed self-join), the plans checked for their shape, for
the absence of ANALYZE and of literal values; then the rate limits, the bounded queue and
failure counting on an :class:`Explainer` with a fake clock; then end to end, through a
real ``heron serve``.
"""

# ruff: noqa: S608 - these tests build SQL from generated table names on purpose

from __future__ import annotations

import json
import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags

import heron
from heron.agent import _explain
from heron.agent.config import resolve_config
from heron.agent.integrations import psycopg as psycopg_integration
from heron.agent.integrations import psycopg2 as psycopg2_integration
from heron.agent.integrations import pymysql as pymysql_integration
from heron.agent.integrations import sqlalchemy as sqlalchemy_integration
from heron.agent.integrations import sqlite3 as sqlite3_integration
from tests.agent.dbs import (
    MARIADB,
    PG_CONNINFO,
    PG_URL,
    attrs,
    canary,
    client_spans,
    db_settings,
    explain_spans,
    exported_text,
    fresh_explainer,
    reach,
    run_db_app,
    unique,
    wait_trace,
)

INTEGRATIONS = (
    psycopg_integration,
    psycopg2_integration,
    pymysql_integration,
    sqlite3_integration,
    sqlalchemy_integration,
)


@pytest.fixture
def explainer() -> Iterator[_explain.Explainer]:
    for integration in INTEGRATIONS:
        integration.setup()
    with fresh_explainer() as e:
        yield e
    for integration in INTEGRATIONS:
        integration.teardown()


@pytest.fixture
def pg_table() -> Iterator[str]:
    name = unique()
    with reach("PostgreSQL", lambda: psycopg.connect(PG_CONNINFO, autocommit=True)) as conn:
        conn.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, email text, n int)")
        conn.execute(
            f"INSERT INTO {name} (email, n) SELECT 'u' || i, i FROM generate_series(1, 100) i"
        )
        yield name
        conn.execute(f"DROP TABLE {name}")


def plan_of(explain: Any) -> Any:
    return json.loads(attrs(explain)["heron.db.plan"])


def test_slow_postgres_select_gets_its_plan(
    explainer: _explain.Explainer, pg_table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    with psycopg.connect(PG_CONNINFO) as conn:
        sql = f"SELECT id, pg_sleep(0.6) FROM {pg_table} WHERE email = %s OR n = 1"
        conn.execute(sql, (secret,))  # one row matches: 0.6 s
        conn.execute(f"SELECT id FROM {pg_table} WHERE n = 5")  # fast: no plan
    assert explainer.wait_idle(30)

    slow, fast = client_spans(spans)
    (explain,) = explain_spans(spans)
    assert attrs(slow)["heron.db.plan.requested"] is True
    assert "heron.db.plan.requested" not in attrs(fast)
    assert explain.name == f"EXPLAIN SELECT {pg_table}"
    assert explain.parent is not None and explain.parent.span_id == slow.context.span_id
    assert explain.context.trace_id == slow.context.trace_id
    assert explain.start_time - slow.start_time >= 600_000_000  # once the query was slow
    assert attrs(explain)["heron.db.plan.format"] == "json"
    assert not any(k.startswith("db.") for k in attrs(explain))  # not a query of the app's
    (root,) = plan_of(explain)
    assert root["Plan"]["Node Type"] == "Seq Scan"
    assert root["Plan"]["Relation Name"] == pg_table
    assert root["Plan"]["Filter"] == "((email = ?::text) OR (n = ?))"  # no values
    assert "Actual Total Time" not in root["Plan"]  # never ANALYZE
    assert secret not in exported_text(spans)
    assert (explainer.explained, explainer.failed) == (1, 0)


def test_raw_mode_keeps_the_values_in_the_plan(
    explainer: _explain.Explainer, pg_table: str, spans: InMemorySpanExporter
) -> None:
    secret = canary()
    with db_settings(record_sql="raw"), psycopg.connect(PG_CONNINFO) as conn:
        sql = f"SELECT id, pg_sleep(0.6) FROM {pg_table} WHERE email = %s OR n = 1"
        conn.execute(sql, (secret,))
        assert explainer.wait_idle(30)
    (explain,) = explain_spans(spans)
    assert plan_of(explain)[0]["Plan"]["Filter"] == f"((email = '{secret}'::text) OR (n = 1))"


def test_slow_mariadb_select_gets_its_plan(
    explainer: _explain.Explainer, spans: InMemorySpanExporter
) -> None:
    table, secret = unique(), canary()
    conn = reach("MariaDB", lambda: pymysql.connect(**MARIADB, autocommit=True))
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, email VARCHAR(100))")
            cur.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')")
            spans.clear()
            sql = f"SELECT id, SLEEP(0.6) FROM {table} WHERE email = %s OR id = 1"
            cur.execute(sql, (secret,))  # one row matches: 0.6 s
        assert explainer.wait_idle(30)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE {table}")
        conn.close()
    (explain,) = explain_spans(spans)
    assert explain.name == f"EXPLAIN SELECT {table}"
    (step,) = plan_of(explain)["query_block"]["nested_loop"]
    assert step["table"]["table_name"] == table
    assert step["table"]["access_type"] == "ALL"
    assert step["table"]["attached_condition"] == f"{table}.email = ? or {table}.`id` = ?"
    assert secret not in exported_text(spans)


def test_slow_sqlite_select_gets_its_plan(
    explainer: _explain.Explainer, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    rng = random.Random(3)
    con = sqlite3.connect(tmp_path / "big.db")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INT, email TEXT)")
    con.executemany(
        "INSERT INTO t (v, email) VALUES (?, ?)",
        [(rng.randint(0, 999), f"e{i}") for i in range(3000)],
    )
    con.commit()
    spans.clear()
    with db_settings(explain_threshold_ms=200):
        # an unindexed self-join on expressions (no automatic index): ~1 s
        sql = "SELECT count(*) FROM t a JOIN t b ON a.v * 1 = b.v * 1 WHERE a.email <> 'x'"
        con.execute(sql).fetchall()
        assert explainer.wait_idle(30)
    con.close()
    (explain,) = explain_spans(spans)
    assert explain.name == "EXPLAIN SELECT t"
    assert attrs(explain)["heron.db.plan.format"] == "text"
    assert attrs(explain)["heron.db.plan"] == "SCAN a\nSCAN b"


def test_sqlalchemy_and_psycopg2_slow_selects(
    explainer: _explain.Explainer, pg_table: str, spans: InMemorySpanExporter
) -> None:
    import psycopg2

    engine = sa.create_engine(PG_URL)
    with engine.connect() as conn:
        conn.execute(sa.text(f"SELECT pg_sleep(0.6), n FROM {pg_table} WHERE n >= :n"), {"n": 100})
    engine.dispose()
    conn2 = psycopg2.connect(PG_CONNINFO)
    with conn2.cursor() as cur:
        cur.execute(f"SELECT pg_sleep(0.6), n FROM {pg_table} WHERE n < %s", (2,))
    conn2.close()
    assert explainer.wait_idle(30)
    by_parent = {e.parent.span_id: e for e in explain_spans(spans) if e.parent is not None}
    slow = [s for s in client_spans(spans) if attrs(s).get("heron.db.plan.requested")]
    assert len(slow) == 2 and {s.context.span_id for s in slow} == set(by_parent)
    filters = sorted(plan_of(e)[0]["Plan"]["Filter"] for e in by_parent.values())
    assert filters == ["(n < ?)", "(n >= ?::smallint)"]  # psycopg 3 binds a typed value


def test_writes_are_never_explained(
    explainer: _explain.Explainer, pg_table: str, spans: InMemorySpanExporter
) -> None:
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(f"UPDATE {pg_table} SET n = n WHERE (SELECT true FROM pg_sleep(0.6))")
        conn.execute(
            f"WITH d AS (DELETE FROM {pg_table} WHERE n < 0 RETURNING id), "
            "s AS (SELECT pg_sleep(0.6)) SELECT * FROM d, s"
        )
        conn.execute(
            f"CREATE TABLE {pg_table}_copy AS "
            f"SELECT id, (SELECT 1 FROM pg_sleep(0.6)) AS s FROM {pg_table} WHERE n = 1"
        )
        conn.execute(f"DROP TABLE {pg_table}_copy")
    assert explainer.wait_idle(30)
    assert len(client_spans(spans)) == 4
    assert explain_spans(spans) == []
    assert not any(attrs(s).get("heron.db.plan.requested") for s in client_spans(spans))
    assert explainer.explained + explainer.failed + explainer.skipped == 0


def test_explain_off_switches(
    explainer: _explain.Explainer, pg_table: str, spans: InMemorySpanExporter
) -> None:
    sql = f"SELECT id, pg_sleep(0.6) FROM {pg_table} WHERE n = 1"
    with psycopg.connect(PG_CONNINFO) as conn:
        with db_settings(explain_threshold_ms=0):
            conn.execute(sql)
        with db_settings(record_sql="off"):  # the plan would show the statement
            conn.execute(sql)
    assert explainer.wait_idle(30)
    assert explain_spans(spans) == [] and len(client_spans(spans)) == 2


def test_failures_are_counted_not_raised(
    explainer: _explain.Explainer, spans: InMemorySpanExporter
) -> None:
    schema = unique("heron_s")
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.hidden AS SELECT 1 AS id")
        try:
            # The app's SET applies to its own connection only: EXPLAIN's cannot see the table.
            conn.execute(f"SET search_path TO {schema}")
            conn.execute("SELECT id, pg_sleep(0.6) FROM hidden")
            assert explainer.wait_idle(30)
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    assert (explainer.explained, explainer.failed) == (0, 1)
    assert heron.stats().explain_failures == 1 and heron.stats().explains == 0
    assert explain_spans(spans) == []


# ----------------------------------------------------------------- the Explainer itself


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(
    key: str = "SELECT ?", connect: Any = None, name: str = "SELECT t"
) -> _explain.ExplainRequest:
    def memory() -> sqlite3.Connection:
        con = sqlite3.connect(":memory:")
        con.execute("CREATE TABLE t (a INT)")
        return con

    return _explain.ExplainRequest(
        system="sqlite",
        sql="SELECT a FROM t WHERE a = ?",
        params=(1,),
        connect=connect or memory,
        parent=SpanContext(trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(1)),
        key=key,
        name=name,
    )


def test_rate_limits_per_statement_and_per_minute() -> None:
    clock = Clock()
    e = _explain.Explainer(clock=clock, per_minute=3, per_statement_s=60)
    assert e.submit(request("a"))
    assert not e.submit(request("a"))  # the same shape within a minute
    assert e.submit(request("b")) and e.submit(request("c"))
    assert not e.submit(request("d"))  # 3 per minute overall
    clock.now += 61
    assert e.submit(request("a")) and e.submit(request("d"))
    assert e.wait_idle(10)
    assert (e.explained, e.failed, e.skipped) == (5, 0, 2)


def test_the_queue_is_bounded_and_never_blocks() -> None:
    release = threading.Event()

    def blocked() -> sqlite3.Connection:
        release.wait(10)
        raise RuntimeError("database unreachable")

    e = _explain.Explainer(max_queue=2, per_minute=100)
    submitted = [e.submit(request(str(i), connect=blocked)) for i in range(5)]
    # the worker holds one, the queue two: the rest are dropped, and submit() returned at once
    assert submitted.count(True) in (2, 3) and e.skipped == 5 - submitted.count(True)
    release.set()
    assert e.wait_idle(10)
    assert e.failed == submitted.count(True) and e.explained == 0


def test_plans_are_scrubbed_and_cut() -> None:
    pg = [
        {
            "Plan": {
                "Node Type": "Index Scan",
                "Index Cond": "(id = 42)",
                "Subplan Name": "SubPlan 1",
                "Filter": "((email)::text = 'x@y.z'::text)",
                "Output": ["id", "'lit'::text"],
                "Total Cost": 8.27,
            }
        }
    ]
    plan = _explain.render_plan("postgresql", [(pg,)], scrub=True)
    assert json.loads(plan.text) == [
        {
            "Plan": {
                "Node Type": "Index Scan",
                "Index Cond": "(id = ?)",
                "Subplan Name": "SubPlan 1",
                "Filter": "((email)::text = ?::text)",
                "Output": ["id", "?::text"],
                "Total Cost": 8.27,
            }
        }
    ]
    mysql = {
        "query_block": {
            "cost_info": {"query_cost": "1.20"},
            "table": {"table_name": "t", "attached_condition": "(`t`.`email` = 'secret')"},
        }
    }
    text = _explain.render_plan("mysql", [(json.dumps(mysql),)], scrub=True).text
    assert "secret" not in text and '"query_cost":"1.20"' in text
    rows = [
        (2, 0, 0, "SEARCH t USING INDEX i (a=?)"),
        (5, 2, 0, "CORRELATED SCALAR SUBQUERY 1"),
        (9, 5, 0, "SCAN u"),
    ]
    tree = _explain.render_plan("sqlite", rows, scrub=True).text
    assert tree == "SEARCH t USING INDEX i (a=?)\n  CORRELATED SCALAR SUBQUERY 1\n    SCAN u"
    big = [{"Plan": {"Node Type": "Append", "Plans": [{"Node Type": "Seq Scan"}] * 2000}}]
    cut = _explain.render_plan("postgresql", [(big,)], scrub=True)
    assert cut.truncated and len(cut.text) == _explain.MAX_PLAN_CHARS


def test_explain_threshold_option_and_variable() -> None:
    assert resolve_config(environ={}).explain_threshold_ms == 500
    assert resolve_config(environ={"HERON_EXPLAIN_THRESHOLD_MS": "250"}).explain_threshold_ms == 250
    assert resolve_config(explain_threshold_ms=0, environ={}).explain_threshold_ms == 0
    bad = resolve_config(environ={"HERON_EXPLAIN_THRESHOLD_MS": "-1"})
    assert bad.explain_threshold_ms == 500 and bad.problems


# ----------------------------------------------------------------------- end to end


@pytest.mark.e2e
def test_plans_reach_heron_as_children_of_the_slow_queries(
    heron_server: Any, tmp_path: Path
) -> None:
    result, _ = run_db_app(heron_server, tmp_path, canary())
    tables = result["tables"]
    doc = wait_trace(
        heron_server,
        result["trace_id"],
        lambda spans: sum(s["name"].startswith("EXPLAIN ") for s in spans) >= 2,
    )
    by_id = {s["span_id"]: s for s in doc["spans"]}
    explains = {s["name"]: s for s in doc["spans"] if s["name"].startswith("EXPLAIN ")}
    assert set(explains) == {
        f"EXPLAIN SELECT {tables['postgresql']}",
        f"EXPLAIN SELECT {tables['mariadb']}",
    }
    for explain in explains.values():
        query = by_id[explain["parent_id"]]
        assert query["kind"] == "client" and query["duration_ms"] >= 600
        assert query["attributes"]["heron.db.plan.requested"] is True
        assert query["name"] == explain["name"].removeprefix("EXPLAIN ")
        assert explain["attributes"]["heron.db.plan.format"] == "json"
        json.loads(explain["attributes"]["heron.db.plan"])
    pg_plan = json.loads(
        explains[f"EXPLAIN SELECT {tables['postgresql']}"]["attributes"]["heron.db.plan"]
    )
    assert pg_plan[0]["Plan"]["Relation Name"] == tables["postgresql"]
    # the slow UPDATE was not explained
    update = [s for s in doc["spans"] if s["name"] == f"UPDATE {tables['postgresql']}"]
    assert len(update) == 1 and "heron.db.plan.requested" not in update[0]["attributes"]
    assert (result["stats"]["explains"], result["stats"]["explain_failures"]) == (2, 0)
