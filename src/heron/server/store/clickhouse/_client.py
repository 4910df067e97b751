"""One ClickHouse connection for reads: parameter-bound queries, errors as the store's."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from heron.server.store.base import QueryTimeout, StorageUnavailable

_TIMEOUT_CODES = ("Code: 159.", "TIMEOUT_EXCEEDED")


class ChReads:
    """Runs reads on one client (clickhouse-connect clients are not thread-safe, so one
    read at a time); ``{db}`` in a statement is the store's database, values are bound
    server-side as ``{name:Type}``."""

    def __init__(self, client: Client, db: str, query_timeout_s: float) -> None:
        self.client = client
        self.db = db
        self.settings = {"max_execution_time": max(1, round(query_timeout_s))}
        self.lock = threading.Lock()

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        sql = sql.replace("{db}", self.db)
        try:
            with self.lock:
                result = self.client.query(
                    sql, parameters=dict(params or {}), settings=self.settings
                )
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
        with self.lock, _mapped("read"):
            return self.client.query_arrow(
                sql, parameters=dict(params or {}), settings=self.settings, use_strings=True
            )

    def insert(self, table: str, columns: list[list[Any]], names: Sequence[str]) -> None:
        """Insert column-oriented data into ``table`` of the store's database, as one block."""
        with self.lock, _mapped("write"):
            self.client.insert(
                f"{self.db}.{table}", columns, column_names=list(names), column_oriented=True
            )

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (``{db}`` and parameters as in reads)."""
        sql = sql.replace("{db}", self.db)
        with self.lock, _mapped("write"):
            self.client.command(sql, parameters=dict(params or {}), settings=self.settings)


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """ClickHouse errors as the store's (a time limit is QueryTimeout)."""
    try:
        yield
    except ClickHouseError as err:
        if any(code in str(err) for code in _TIMEOUT_CODES):
            raise QueryTimeout(str(err)) from err
        raise StorageUnavailable(f"ClickHouse {what} failed: {err}") from err
