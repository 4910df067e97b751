"""Connections to PostgreSQL: a small thread-safe pool and the translation of connection
failures into ``StorageUnavailable``.

The connection URL may carry a password: it is kept here only to connect, never logged
and never put in an error message (:func:`mask` hides it in what is shown).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors, pq, sql
from psycopg.conninfo import conninfo_to_dict

from heron.server.store.base import StorageUnavailable

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]

# Lost races are retried (fresh transaction, same work); deadlocks should not happen
# (locks are taken in one order) but would be survived too.
_RETRIES = 3
_LOST_RACE = (errors.DeadlockDetected, errors.SerializationFailure, errors.TransactionRollback)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask(url: str) -> str:
    """``url`` with its password (URL or ``key=value`` form) replaced by ``***``."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", url))


def _conninfo(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.Error:
        raise ValueError(f"not a PostgreSQL connection URL: {mask(url)}") from None


class Pool:
    """At most ``size`` connections in autocommit mode with ``schema`` first on their
    search_path, made on demand and reused; a broken one is dropped, so the next call
    reconnects (PostgreSQL restarted, network back)."""

    def __init__(
        self, url: str, schema: str, *, size: int = 8, connect_timeout_s: float = 5.0
    ) -> None:
        self._url = url
        info = _conninfo(url)
        self._secret = str(info["password"]) if info.get("password") else None
        self._kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in info:
            self._kwargs["connect_timeout"] = max(1, round(connect_timeout_s))
        if "application_name" not in info:  # to find Heron in pg_stat_activity
            self._kwargs["application_name"] = "heron"
        self.where = mask(url)
        if self._secret:  # an unusual spelling the pattern missed
            self.where = self.where.replace(self._secret, "***")
        self._schema = schema
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def unavailable(self, err: Exception) -> StorageUnavailable:
        """The error to raise for ``err``: what failed, without the password."""
        text = str(err).strip() or type(err).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return StorageUnavailable(f"PostgreSQL state store {self.where} unavailable: {text}")

    def _connect(self) -> Connection:
        con: Connection = psycopg.connect(self._url, **self._kwargs)
        try:
            con.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for one call; psycopg errors other than lost connections and lost
        races pass through (they are bugs)."""
        if self._closed:
            raise StorageUnavailable("PostgreSQL state store is closed")
        if not self._slots.acquire(timeout=30):
            raise StorageUnavailable("PostgreSQL state store: every connection is busy")
        try:
            with self._lock:
                con = self._idle.pop() if self._idle else None
            try:
                if con is None:
                    con = self._connect()
                yield con
            finally:
                if con is not None:
                    self._give_back(con)
        except _LOST_RACE:
            raise  # for transaction() to retry
        except (psycopg.OperationalError, psycopg.InterfaceError) as err:
            raise self.unavailable(err) from None
        finally:
            self._slots.release()

    def _give_back(self, con: Connection) -> None:
        reusable = (
            not con.closed
            and not con.broken
            and con.info.transaction_status == pq.TransactionStatus.IDLE
        )
        stale: list[Connection] = []
        with self._lock:
            if reusable and not self._closed:
                self._idle.append(con)
                return
            if con.broken:  # the server went away: the idle ones are most likely dead too
                stale, self._idle = self._idle, []
        for c in (con, *stale):
            c.close()

    def transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction (READ COMMITTED); retried from the start when
        PostgreSQL aborts it as a deadlock or serialization victim."""
        for attempt in range(_RETRIES):
            try:
                with self.connection() as con, con.transaction():
                    return fn(con)
            except _LOST_RACE as err:
                if attempt == _RETRIES - 1:
                    raise self.unavailable(err) from None
        raise AssertionError("unreachable")

    def read(self, query: sql.SQL | str, params: Any = ()) -> list[tuple[Any, ...]]:
        """Rows of one statement, in autocommit."""
        with self.connection() as con:
            return con.execute(query, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for con in idle:
            con.close()
