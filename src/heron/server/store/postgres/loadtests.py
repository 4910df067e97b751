"""Load-test runs (``store/loadtests.py``) in PostgreSQL; same statements and semantics
as ``store/duckdb/loadtests.py`` (``store/_loadtest_sql.py``), one transaction each."""

from __future__ import annotations

from typing import Any

from heron.server.model.loadtest import LoadTestRun, NewRun, RunStatus, Verdict
from heron.server.store import _loadtest_sql as q
from heron.server.store.postgres._pool import Connection, Pool


def _pg(sql: str) -> str:
    """The shared statement with PostgreSQL's placeholders (no statement has a literal ?)."""
    return sql.replace("?", "%s")


_INSERT, _FINISH, _VERDICT = _pg(q.INSERT), _pg(q.FINISH), _pg(q.VERDICT)
_GET, _LATEST, _DELETE = _pg(q.GET), _pg(q.LATEST), _pg(q.DELETE)


class PostgresLoadTests:
    """Implements ``store.loadtests.LoadTestStore`` (a mixin of ``PostgresState``)."""

    _pool: Pool

    def create_loadtest(
        self, project_id: int, run: NewRun, start_ns: int, now_ns: int
    ) -> LoadTestRun:
        params = q.insert_params(project_id, run, start_ns, now_ns)

        def go(con: Connection) -> LoadTestRun:
            row = con.execute(_INSERT, params).fetchone()
            assert row is not None  # RETURNING of an INSERT
            return q.to_run(row)

        return self._pool.transaction(go)

    def finish_loadtest(
        self,
        project_id: int,
        run_id: int,
        *,
        status: RunStatus,
        end_ns: int,
        exit_code: int | None,
        load: dict[str, Any] | None,
        now_ns: int,
    ) -> LoadTestRun | None:
        params = [status, end_ns, exit_code, q.dumps_load(load), now_ns, project_id, run_id]

        def go(con: Connection) -> LoadTestRun | None:
            row = con.execute(_FINISH, params).fetchone()
            if row is None:  # unknown, or finished already: as stored
                row = con.execute(_GET, [project_id, run_id]).fetchone()
            return None if row is None else q.to_run(row)

        return self._pool.transaction(go)

    def set_loadtest_verdict(
        self, project_id: int, run_id: int, baseline_id: int | None, verdict: Verdict, now_ns: int
    ) -> None:
        params = [baseline_id, verdict, now_ns, project_id, run_id]

        def go(con: Connection) -> None:
            con.execute(_VERDICT, params)

        self._pool.transaction(go)

    def get_loadtest(self, project_id: int, run_id: int) -> LoadTestRun | None:
        rows = self._pool.read(_GET, [project_id, run_id])
        return q.to_run(rows[0]) if rows else None

    def latest_loadtest(
        self, project_id: int, name: str, before_id: int | None = None
    ) -> LoadTestRun | None:
        rows = self._pool.read(_LATEST, [project_id, name, before_id or q.NO_ID])
        return q.to_run(rows[0]) if rows else None

    def list_loadtests(
        self,
        project_id: int,
        *,
        name: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[LoadTestRun]:
        sql, params = q.list_query(name, limit, before_id)
        return [q.to_run(r) for r in self._pool.read(_pg(sql), [project_id, *params])]

    def delete_loadtest(self, project_id: int, run_id: int) -> bool:
        def go(con: Connection) -> bool:
            return con.execute(_DELETE, [project_id, run_id]).fetchone() is not None

        return self._pool.transaction(go)
