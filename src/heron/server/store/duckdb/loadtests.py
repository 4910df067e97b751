"""Load-test runs (``store/loadtests.py``) in DuckDB: the shared statements
(``store/_loadtest_sql.py``); changes run on the writer thread, one transaction each,
reads go through the store's readers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from heron.server.store._loadtest_sql import LoadTestsOnSql
from heron.server.store.duckdb._sql import SqlReads

T = TypeVar("T")


class DuckDBLoadTests(LoadTestsOnSql):
    """Implements ``store.loadtests.LoadTestStore`` on DuckDB (a mixin of ``DuckDBState``)."""

    sql: SqlReads

    def _lt_read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.sql.read(sql, params)

    def _lt_transaction(self, fn: Callable[[Any], T]) -> T:
        done: T = self.sql.write(fn)
        return done
