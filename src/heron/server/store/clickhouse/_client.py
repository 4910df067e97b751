"""One ClickHouse connection for reads: parameter-bound queries, errors as the store's."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

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
