"""SQLite access for the demo apps.

The agent's sqlite3 integration traces every statement (a client span named
``{operation} {table}``, with ``db.system.name``, ``db.namespace``, ``db.query.text``...),
so the apps just run their queries. Statements keep their ``?`` placeholders: parameters
never reach a span.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from heron.agent import _sql


def span_name(sql: str) -> str:
    """``{operation} {table}``, as the agent names the span of ``sql`` (``SELECT orders``).

    The table is the statement's own, not a subquery's: the first one outside parentheses.
    """
    statement = _sql.parse(sql, "sqlite")
    return _sql.span_name(statement.operation, statement.collection, "sqlite")


class Database:
    """One SQLite file; the apps open a connection per request (see :meth:`connect`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.stem

    def connect(self) -> sqlite3.Connection:
        """A connection for one request; the apps' server threads never share one."""
        con = sqlite3.connect(self.path, timeout=5.0)
        con.row_factory = sqlite3.Row
        return con

    def query(
        self, con: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
    ) -> list[sqlite3.Row]:
        """Run one statement and return all its rows."""
        return con.execute(sql, params).fetchall()
