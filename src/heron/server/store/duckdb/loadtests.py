"""DuckDB statements for load-test runs (``store/loadtests.py``). Changes run on the
writer thread, one transaction each; reads go through the store's readers."""

from __future__ import annotations

from typing import Any

from heron.server.model.loadtest import LoadTestRun, NewRun, RunStatus, Verdict
from heron.server.store import _loadtest_sql as q
from heron.server.store.duckdb._sql import SqlReads


class DuckDBLoadTests:
    """Implements ``store.loadtests.LoadTestStore`` on DuckDB (a mixin of ``DuckDBState``)."""

    sql: SqlReads

    def create_loadtest(
        self, project_id: int, run: NewRun, start_ns: int, now_ns: int
    ) -> LoadTestRun:
        params = q.insert_params(project_id, run, start_ns, now_ns)

        def go(con: Any) -> LoadTestRun:
            return q.to_run(con.execute(q.INSERT, params).fetchone())

        created: LoadTestRun = self.sql.write(go)
        return created

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

        def go(con: Any) -> LoadTestRun | None:
            row = con.execute(q.FINISH, params).fetchone()
            if row is None:  # unknown, or finished already: as stored
                row = con.execute(q.GET, [project_id, run_id]).fetchone()
            return None if row is None else q.to_run(row)

        finished: LoadTestRun | None = self.sql.write(go)
        return finished

    def set_loadtest_verdict(
        self, project_id: int, run_id: int, baseline_id: int | None, verdict: Verdict, now_ns: int
    ) -> None:
        params = [baseline_id, verdict, now_ns, project_id, run_id]
        self.sql.write(lambda con: con.execute(q.VERDICT, params))

    def get_loadtest(self, project_id: int, run_id: int) -> LoadTestRun | None:
        rows = self.sql.read(q.GET, [project_id, run_id])
        return q.to_run(rows[0]) if rows else None

    def latest_loadtest(
        self, project_id: int, name: str, before_id: int | None = None
    ) -> LoadTestRun | None:
        rows = self.sql.read(q.LATEST, [project_id, name, before_id or q.NO_ID])
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
        return [q.to_run(r) for r in self.sql.read(sql, [project_id, *params])]

    def delete_loadtest(self, project_id: int, run_id: int) -> bool:
        def go(con: Any) -> bool:
            return con.execute(q.DELETE, [project_id, run_id]).fetchone() is not None

        deleted: bool = self.sql.write(go)
        return deleted
