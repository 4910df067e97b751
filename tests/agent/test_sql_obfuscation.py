"""SQL obfuscation: literals become ``?``, placeholders and structure stay, nothing leaks.

The end-to-end canary test runs every driver in a real app exporting to a real
``heron serve``, and looks for the canary in the bytes sent and in what Heron stored.
"""

# ruff: noqa: S608 - these tests build SQL from generated table names on purpose

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.agent._sql import MAX_QUERY_CHARS, obfuscate, parse, span_name
from heron.agent.config import resolve_config
from tests.agent.dbs import canary, run_db_app, wait_trace


@pytest.mark.parametrize(
    ("sql", "system", "expected"),
    [
        # strings, with every escape style
        ("SELECT * FROM u WHERE e = 'a@b.c'", "postgresql", "SELECT * FROM u WHERE e = ?"),
        ("SELECT 'it''s'", "postgresql", "SELECT ?"),
        ("SELECT E'it\\'s', 'x'", "postgresql", "SELECT ?, ?"),
        ("SELECT 'it\\'s secret'", "mysql", "SELECT ?"),
        ("SELECT 'C:\\' , col", "postgresql", "SELECT ? , col"),  # no escapes in PG strings
        ('SELECT "secret" FROM t', "mysql", "SELECT ? FROM t"),  # a string in MySQL
        ('SELECT "Col" FROM "My Table"', "postgresql", 'SELECT "Col" FROM "My Table"'),
        ("SELECT `c` FROM `t`", "mysql", "SELECT `c` FROM `t`"),
        ("SELECT [c 1] FROM [t]", "sqlite", "SELECT [c 1] FROM [t]"),
        ("SELECT N'x', X'AB', B'01', U&'d', _utf8mb4'y'", "mysql", "SELECT ?, ?, ?, ?, ?"),
        ("WHERE a LIKE'%s3cr3t%'", "postgresql", "WHERE a LIKE?"),
        # PostgreSQL dollar quoting
        ("SELECT $$a 'b' c$$, $fn$ x $$ y $fn$", "postgresql", "SELECT ?, ?"),
        # numbers, hex, booleans; identifiers with digits stay
        ("SELECT t1.c2 FROM t1 WHERE x = 42", "sqlite", "SELECT t1.c2 FROM t1 WHERE x = ?"),
        (
            "SELECT 1.5, .5, 5., 1e-3, 0xFF, 0b101, 1_000",
            "postgresql",
            "SELECT ?, ?, ?, ?, ?, ?, ?",
        ),
        ("SELECT x = -5", "sqlite", "SELECT x = -?"),
        ("WHERE a = TRUE OR b = false AND c IS NULL", None, "WHERE a = ? OR b = ? AND c IS NULL"),
        # IN lists: literals one by one, placeholders untouched
        ("WHERE id IN (1, 2, 3)", "postgresql", "WHERE id IN (?, ?, ?)"),
        ("WHERE id IN (%s, %s) AND k = %(k)s", "postgresql", "WHERE id IN (%s, %s) AND k = %(k)s"),
        ("WHERE a = $1 AND b = ? AND c = :name AND d = :1", None, None),
        ("SELECT x::int, '5'::int", "postgresql", "SELECT x::int, ?::int"),
        # comments go, wherever they are
        ("/* user='bob' */ SELECT 1 -- 'x'\nFROM t", "postgresql", "SELECT ? FROM t"),
        ("SELECT 1 # secret\nFROM t", "mysql", "SELECT ? FROM t"),
        # unterminated quotes and comments run to the end
        ("SELECT 'unterminated secret", "sqlite", "SELECT ?"),
        ("SELECT $$never closed secret", "postgresql", "SELECT ?"),
        ("SELECT 1 /* open secret", "mysql", "SELECT ?"),
        ("SELECT 'cut after a backslash\\", "mysql", "SELECT ?"),
        # whitespace
        ("SELECT  a,\n\t b\nFROM   t", "sqlite", "SELECT a, b FROM t"),
    ],
)
def test_obfuscation(sql: str, system: str | None, expected: str | None) -> None:
    assert obfuscate(sql, system) == (sql if expected is None else expected)


@pytest.mark.parametrize(
    ("sql", "operation", "collection", "read_only"),
    [
        ("SELECT id FROM orders WHERE id = ?", "SELECT", "orders", True),
        ("select p.id, (SELECT 1 FROM reviews r) FROM products p", "SELECT", "products", True),
        ('SELECT * FROM public."Order Items" oi', "SELECT", "public.Order Items", True),
        ("SELECT 1", "SELECT", None, True),
        ("SELECT * FROM (SELECT 1) s", "SELECT", None, True),
        ("(SELECT a FROM t) UNION (SELECT a FROM u)", "SELECT", "t", True),
        ("WITH c AS (SELECT * FROM t) SELECT * FROM c", "SELECT", "c", True),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "SELECT", "d", False),
        ("SELECT * FROM t FOR UPDATE", "SELECT", "t", True),  # EXPLAIN does not lock
        ("SELECT * FROM t FOR NO KEY UPDATE", "SELECT", "t", True),
        ("SELECT a INTO new_t FROM t", "SELECT", "t", False),  # creates a table
        ("SELECT a FROM t INTO OUTFILE '/tmp/x'", "SELECT", "t", False),
        ("SELECT 1; DELETE FROM t", "SELECT", None, False),
        ("SELECT 1;", "SELECT", None, True),
        ("INSERT INTO orders (a) VALUES (?) RETURNING id", "INSERT", "orders", False),
        ("INSERT OR REPLACE INTO kv VALUES (1, 2)", "INSERT", "kv", False),
        ("REPLACE INTO kv VALUES (1, 2)", "REPLACE", "kv", False),
        ("update stock set q = 1", "UPDATE", "stock", False),
        ("UPDATE LOW_PRIORITY stock SET q = 1", "UPDATE", "stock", False),
        ("DELETE FROM ONLY t WHERE id = 1", "DELETE", "t", False),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "MERGE", "t", False),
        ("CREATE TABLE IF NOT EXISTS foo (a int)", "CREATE", "foo", False),
        ("CREATE TEMP TABLE foo (a int)", "CREATE", "foo", False),
        ("CREATE INDEX i ON foo (a)", "CREATE", None, False),
        ("DROP TABLE foo", "DROP", "foo", False),
        ("TRUNCATE foo", "TRUNCATE", "foo", False),
        ("CALL proc(1)", "CALL", None, False),
        ("EXPLAIN SELECT 1", "EXPLAIN", None, False),
        ("PRAGMA journal_mode", "PRAGMA", None, False),
        ("/* select */ SELECT 1", "SELECT", None, True),
        ("", None, None, False),
    ],
)
def test_operation_table_and_read_only(
    sql: str, operation: str | None, collection: str | None, read_only: bool
) -> None:
    statement = parse(sql, "postgresql")
    assert (statement.operation, statement.collection, statement.read_only) == (
        operation,
        collection,
        read_only,
    )


def test_span_names_follow_the_semantic_conventions() -> None:
    assert span_name("SELECT", "orders", "postgresql") == "SELECT orders"
    assert span_name("SELECT", None, "postgresql") == "SELECT"
    assert span_name(None, None, "sqlite") == "sqlite"


def test_long_statements_are_cut_before_anything_else() -> None:
    sql = "INSERT INTO t VALUES " + ", ".join(f"('{i}')" for i in range(10_000))
    text = obfuscate(sql, "postgresql")
    assert len(text) <= MAX_QUERY_CHARS and "'" not in text and text.endswith("?")


def test_parse_is_cached() -> None:
    sql = "SELECT a FROM cached_t WHERE b = 'x'"
    assert parse(sql, "sqlite") is parse(sql, "sqlite")


# ------------------------------------------------------------------------ properties

_SECRET = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30
).map(lambda s: "ZQ" + s)  # "ZQ" marks the secret; it must vanish with its literal
_SYSTEMS = st.sampled_from(["postgresql", "mysql", "mariadb", "sqlite", None, "other_sql"])


def _quote(secret: str, system: str | None) -> str:
    if system in ("mysql", "mariadb", None):
        return "'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + secret.replace("'", "''") + "'"


@settings(max_examples=300, deadline=None)
@given(secret=_SECRET, system=_SYSTEMS, prefix=st.sampled_from(["", "N", "E", "X"]))
def test_a_quoted_secret_never_survives(secret: str, system: str | None, prefix: str) -> None:
    if prefix == "E":  # E'...' takes backslash escapes
        literal = "E'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        literal = prefix + _quote(secret, system)
    sql = f"SELECT id FROM users WHERE name = {literal} AND id = %s"
    text = obfuscate(sql, system)
    assert "ZQ" not in text
    assert text.endswith("AND id = %s")


@settings(max_examples=300, deadline=None)
@given(secret=_SECRET, system=_SYSTEMS, data=st.data())
def test_a_statement_cut_inside_a_literal_hides_the_rest(
    secret: str, system: str | None, data: st.DataObject
) -> None:
    sql = f"SELECT id FROM users WHERE name = {_quote(secret, system)}"
    cut = data.draw(st.integers(min_value=sql.index("'") + 1, max_value=len(sql)))
    assert "ZQ" not in obfuscate(sql[:cut], system)


@settings(max_examples=300, deadline=None)
@given(number=st.integers(min_value=0) | st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_never_survive(number: float) -> None:
    text = obfuscate(f"SELECT * FROM t2 WHERE v = {abs(number)!r}", "postgresql")
    assert text == "SELECT * FROM t2 WHERE v = ?"


@settings(max_examples=500, deadline=None)
@given(sql=st.text(max_size=300), system=_SYSTEMS)
def test_any_text_is_handled_and_obfuscation_is_idempotent(sql: str, system: str | None) -> None:
    once = obfuscate(sql, system)
    assert obfuscate(once, system) == once
    parse(sql, system)  # never raises


# --------------------------------------------------------------------- configuration


def test_record_sql_option_and_variable() -> None:
    assert resolve_config(environ={}).record_sql == "obfuscated"
    assert resolve_config(environ={"HERON_RECORD_SQL": "RAW"}).record_sql == "raw"
    assert resolve_config(record_sql="off", environ={"HERON_RECORD_SQL": "raw"}).record_sql == "off"
    bad = resolve_config(environ={"HERON_RECORD_SQL": "everything"})
    assert bad.record_sql == "obfuscated"
    assert any("HERON_RECORD_SQL" in p for p in bad.problems)


# ------------------------------------------------------------------ end to end, canary


@pytest.mark.e2e
def test_canaries_never_leave_the_process(heron_server: Any, tmp_path: Path) -> None:
    """Every driver, default settings, a real ``heron serve``: the canary stays home.

    The app plants the canary as parameters, inline literals (strings, in LIKE, in a
    comment), in an ORM query compiled with literal binds, in a unique violation's
    message, in slow SELECTs whose EXPLAIN plans are exported, and in Redis keys/values.
    """
    secret = canary()
    result, sent = run_db_app(heron_server, tmp_path, secret)
    tables = result["tables"]

    def complete(spans: list[dict[str, Any]]) -> bool:
        return sum(s["name"].startswith("EXPLAIN ") for s in spans) >= 2 and any(
            s["name"] == "DEL" for s in spans
        )

    doc = wait_trace(heron_server, result["trace_id"], complete)
    assert secret.encode() not in sent  # the OTLP bytes the agent sent
    assert secret not in json.dumps(doc)  # what Heron stored
    systems = {s["attributes"].get("db.system.name") for s in doc["spans"]}
    assert {"postgresql", "mariadb", "sqlite", "redis"} <= systems
    texts = [s["attributes"].get("db.query.text") for s in doc["spans"]]
    assert f"SELECT id, pg_sleep(?) FROM {tables['postgresql']} WHERE email = ?" in texts
    assert f"SELECT id FROM {tables['mariadb']} WHERE email = ?" in texts
    assert (
        f"SELECT {tables['orm']}.id FROM {tables['orm']} WHERE {tables['orm']}.email = ?" in texts
    )
    assert result["stats"]["explains"] == 2 and result["stats"]["internal_errors"] == 0
