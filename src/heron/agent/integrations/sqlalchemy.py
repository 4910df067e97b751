"""SQLAlchemy (Core and ORM): a client span per statement sent to the database.

Heron listens to ``before_cursor_execute``/``after_cursor_execute``/``handle_error`` on
the ``Engine`` class, so every engine is covered, including those created before
``heron.init()``. The span records the SQL SQLAlchemy compiled for the driver (obfuscated
like any other: literal-bound values become ``?``), named ``{operation} {table}``. When the
driver underneath is one heron instruments too (psycopg, psycopg2, sqlite3, PyMySQL,
mysqlclient), the statement still gets one span, this one.

``db.system.name`` comes from the dialect (``postgresql``, ``mysql`` or ``mariadb``,
``sqlite``, ``microsoft.sql_server``, ``oracle.db``, else ``other_sql``). Slow SELECTs on
PostgreSQL, MySQL/MariaDB and SQLite files are explained on a new connection made the way
the engine's pool makes them (async engines are not explained).
"""

from __future__ import annotations

import functools
import os
import threading
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

from heron.agent._explain import EXPLAINABLE
from heron.agent.guard import capture_internal_exceptions
from heron.agent.integrations._db import Query, Target, Tracing, claim, release, untraced

NAME = "sqlalchemy"
DISTRIBUTION = "sqlalchemy"
MIN_VERSION = (1, 4)
TRIGGER = "sqlalchemy"

_SYSTEMS = {
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mariadb",
    "sqlite": "sqlite",
    "mssql": "microsoft.sql_server",
    "oracle": "oracle.db",
}

_lock = threading.Lock()
_listening = False
# The statement in flight in this context: (DB-API cursor, its span, the cursor's claim).
_current: ContextVar[tuple[Any, Query, Token[object]] | None] = ContextVar(
    "heron_sqlalchemy_current", default=None
)


def _system(dialect: Any) -> str:
    system = _SYSTEMS.get(dialect.name, "other_sql")
    if system == "mysql" and getattr(dialect, "is_mariadb", False):
        return "mariadb"
    return system


def _sqlite_explain(database: str | None) -> Any:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    import sqlite3

    uri = Path(os.path.abspath(database)).as_uri() + "?mode=ro"
    return functools.partial(sqlite3.connect, uri, uri=True, timeout=1.0)


def _explain_connect(engine: Any, system: str) -> Any:
    if system not in EXPLAINABLE or engine.dialect.is_async:
        return None
    if system == "sqlite":
        return _sqlite_explain(engine.url.database)
    creator = getattr(engine.pool, "_creator", None)  # connect_args and all, as the pool does
    if callable(creator):
        return creator
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    return functools.partial(engine.dialect.connect, *cargs, **cparams)


def _target(engine: Any) -> Target:
    cached = engine.__dict__.get("_heron_db_target")
    if cached is not None:
        return cached
    dialect, url = engine.dialect, engine.url
    system = _system(dialect)
    namespace = url.database
    if system == "sqlite":
        namespace = Path(namespace).stem if namespace and namespace != ":memory:" else ":memory:"
    target = Target(
        system,
        namespace=namespace,
        address=url.host,
        port=url.port,
        connect=_explain_connect(engine, system),
    )
    if dialect.server_version_info is not None:  # after the first connect: MariaDB is known
        engine.__dict__["_heron_db_target"] = target
    return target


_tracing = Tracing(NAME)  # targets come from the engine, not from the cursor


def _before(
    conn: Any,
    cursor: Any,
    statement: Any,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if untraced(cursor):
        return
    with capture_internal_exceptions:
        sql = statement if isinstance(statement, str) else None
        query = _tracing.begin(_target(conn.engine), sql, parameters, many=executemany)
        _current.set((cursor, query, claim(cursor)))


def _pop(cursor: Any = None) -> Query | None:
    """The statement in flight (on ``cursor``, if given), no longer in flight."""
    current = _current.get()
    if current is None or (cursor is not None and current[0] is not cursor):
        return None
    _current.set(None)
    release(current[2])
    return current[1]


def _after(
    conn: Any,
    cursor: Any,
    statement: Any,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    with capture_internal_exceptions:
        query = _pop(cursor)
        if query is not None:
            query.finish()


def _error(exception_context: Any) -> None:
    # The statement that failed is the one in flight in this context (SQLAlchemy 2.1's
    # exception context no longer carries the cursor).
    with capture_internal_exceptions:
        query = _pop()
        if query is not None:
            query.fail(exception_context.original_exception)


_LISTENERS = (
    ("before_cursor_execute", _before),
    ("after_cursor_execute", _after),
    ("handle_error", _error),
)


def setup() -> None:
    global _listening
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    with _lock:
        if _listening:
            return
        for name, listener in _LISTENERS:
            event.listen(Engine, name, listener)
        _listening = True


def teardown() -> None:
    global _listening
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    with _lock:
        if not _listening:
            return
        for name, listener in _LISTENERS:
            event.remove(Engine, name, listener)
        _listening = False
