"""Load-test runs (``store/loadtests.py``) in PostgreSQL: the shared statements
(``store/_loadtest_sql.py``) with PostgreSQL's placeholders, one transaction each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from heron.server.store._loadtest_sql import LoadTestsOnSql
from heron.server.store.postgres._pool import Pool

T = TypeVar("T")


class PostgresLoadTests(LoadTestsOnSql):
    """Implements ``store.loadtests.LoadTestStore`` (a mixin of ``PostgresState``)."""

    _pool: Pool

    def _lt_sql(self, sql: str) -> str:
        return sql.replace("?", "%s")  # no shared statement has a literal ?

    def _lt_read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._pool.read(sql, params)

    def _lt_transaction(self, fn: Callable[[Any], T]) -> T:
        return self._pool.transaction(fn)
