"""SQLite access for the demo apps, one span per real query.

The agent has no sqlite3 instrumentation yet, so each query runs inside a client
``heron.span`` with the OpenTelemetry database attributes that the server lifts into its
DB columns (``db.system.name``, ``db.query.text``). Statements keep their ``?`` placeholders:
parameters never reach a span.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.trace import SpanKind

import heron

_OPERATION = re.compile(r"^\s*(\w+)")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.IGNORECASE)


def span_name(sql: str) -> str:
    """``{operation} {table}``, the OpenTelemetry database span name (``SELECT orders``).

    The table is the statement's own, not a subquery's: the first one outside parentheses.
    """
    op = _OPERATION.match(sql)
    operation = op.group(1).upper() if op else "SQL"
    for m in _TABLE.finditer(sql):
        before = sql[: m.start()]
        if before.count("(") == before.count(")"):
            return f"{operation} {m.group(1)}"
    return operation


class Database:
    """One SQLite file; :meth:`query` traces each statement on a per-request connection."""

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
        """Run one statement inside a database span and return all its rows."""
        name = span_name(sql)
        attrs = {
            "db.system.name": "sqlite",
            "db.namespace": self.name,
            "db.query.text": " ".join(sql.split()),
            "db.operation.name": name.split(" ")[0],
        }
        if " " in name:
            attrs["db.collection.name"] = name.split(" ", 1)[1]
        with heron.span(name, attributes=attrs, kind=SpanKind.CLIENT):
            return con.execute(sql, params).fetchall()
