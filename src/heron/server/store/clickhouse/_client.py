"""ClickHouse connections for reads: parameter-bound queries, errors as the store's."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from heron.server.store.base import QueryTimeout, StorageUnavailable

_TIMEOUT_CODES = ("Code: 159.", "TIMEOUT_EXCEEDED")


class ChReads:
    """Runs statements on a small pool of clients; ``{db}`` in a statement is the store's
    database, values are bound server-side as ``{name:Type}``.

    A clickhouse-connect client runs one query at a time, so each statement borrows a
    client of its own: with ``connect`` and ``size`` > 1, up to ``size`` pages read at
    once (more clients are made on demand, a caller beyond that waits for one). With one
    client (the writer's, shared with the span writer through ``lock``), statements run
    one at a time.
    """

    def __init__(
        self,
        client: Client,
        db: str,
        query_timeout_s: float,
        *,
        connect: Callable[[], Client] | None = None,
        size: int = 1,
    ) -> None:
        self.client = client
        self.db = db
        self.settings = {"max_execution_time": max(1, round(query_timeout_s))}
        self.lock = threading.Lock()
        self._connect = connect
        self._size = max(1, size) if connect is not None else 1
        self._clients = [client]
        self._idle: queue.LifoQueue[Client] = queue.LifoQueue()
        self._idle.put(client)
        self._grow = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[Client]:
        """A client for one statement, returned to the pool afterwards."""
        if self._size == 1:
            with self.lock:
                yield self.client
            return
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self._new_or_wait()
        try:
            yield client
        finally:
            self._idle.put(client)

    def _new_or_wait(self) -> Client:
        with self._grow:
            if len(self._clients) < self._size and self._connect is not None:
                try:
                    client = self._connect()
                except (ClickHouseError, OSError) as err:
                    raise StorageUnavailable(f"cannot connect to ClickHouse: {err}") from err
                self._clients.append(client)
                return client
        return self._idle.get()

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        sql = sql.replace("{db}", self.db)
        try:
            with self.borrow() as client:
                result = client.query(sql, parameters=dict(params or {}), settings=self.settings)
        except ClickHouseError as err:
            if any(code in str(err) for code in _TIMEOUT_CODES):
                raise QueryTimeout(str(err)) from err
            raise StorageUnavailable(f"ClickHouse read failed: {err}") from err
        return [tuple(row) for row in result.result_rows]

    # The analysis job's reads and writes (store/clickhouse/db.py), under the same lock.

    def arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Like :meth:`rows`, as an Arrow table (String columns as Arrow strings, as
        :meth:`rows` gives ``str``: the analysis job compares the two)."""
        sql = sql.replace("{db}", self.db)
        with self.borrow() as client, _mapped("read"):
            return client.query_arrow(
                sql, parameters=dict(params or {}), settings=self.settings, use_strings=True
            )

    def insert(self, table: str, columns: list[list[Any]], names: Sequence[str]) -> None:
        """Insert column-oriented data into ``table`` of the store's database, as one block."""
        with self.borrow() as client, _mapped("write"):
            client.insert(
                f"{self.db}.{table}", columns, column_names=list(names), column_oriented=True
            )

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (``{db}`` and parameters as in reads)."""
        sql = sql.replace("{db}", self.db)
        with self.borrow() as client, _mapped("write"):
            client.command(sql, parameters=dict(params or {}), settings=self.settings)


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """ClickHouse errors as the store's (a time limit is QueryTimeout)."""
    try:
        yield
    except ClickHouseError as err:
        if any(code in str(err) for code in _TIMEOUT_CODES):
            raise QueryTimeout(str(err)) from err
        raise StorageUnavailable(f"ClickHouse {what} failed: {err}") from err
