"""The machine's real PostgreSQL for the shared-state tests (scale-out mode).

``HERON_TEST_POSTGRES_URL`` overrides the default (``127.0.0.1:5432``, trust auth, user
``postgres``, database ``test``). Tests that use it fail, never skip, when it is down.
``fresh_schema()`` names a schema of its own for a test module; ``drop_schema`` removes
it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

POSTGRES_URL = os.environ.get(
    "HERON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def fresh_schema() -> str:
    return f"heron_test_{uuid.uuid4().hex[:12]}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
        con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new database on the same server, dropped afterwards (for processes
    that use the default schema, such as ``heron serve`` and ``heron users``)."""
    name = f"heron_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
        con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield POSTGRES_URL.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
            con.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
