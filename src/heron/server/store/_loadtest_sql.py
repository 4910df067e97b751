"""SQL shared by the DuckDB and PostgreSQL load-test stores (``store/loadtests.py``).

Statements are written with ``?`` placeholders; PostgreSQL's store swaps them for
``%s``. ``labels`` and ``load`` are kept as JSON text (``labels_json``, ``load_json``):
small free-form objects that are only ever read whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import orjson

from heron.server.model.loadtest import LoadTestRun, NewRun, RunStatus, Tool, Verdict

T = TypeVar("T")

# The table's columns, in the order of ``heron migrate``'s rows (``STATE_TABLES``).
LOADTEST_COLUMNS: tuple[str, ...] = (
    "id",
    "project_id",
    "name",
    "status",
    "start_ns",
    "end_ns",
    "tool",
    "command",
    "service",
    "environment",
    "exit_code",
    "baseline",
    "baseline_id",
    "verdict",
    "labels_json",
    "load_json",
    "created_ns",
    "updated_ns",
)
_COLS = ", ".join(LOADTEST_COLUMNS)
# Column names are constants; every value is bound.
SELECT = f"SELECT {_COLS} FROM loadtest_runs "  # noqa: S608
INSERT = (
    "INSERT INTO loadtest_runs (project_id, name, status, start_ns, end_ns, tool, command, "  # noqa: S608
    "service, environment, exit_code, baseline, baseline_id, verdict, labels_json, load_json, "
    "created_ns, updated_ns) VALUES (?, ?, 'running', ?, NULL, ?, ?, ?, ?, NULL, ?, NULL, "
    f"NULL, ?, ?, ?, ?) RETURNING {_COLS}"
)
FINISH = (
    "UPDATE loadtest_runs SET status = ?, end_ns = ?, exit_code = ?, "  # noqa: S608
    "load_json = coalesce(?, load_json), updated_ns = ? "
    f"WHERE project_id = ? AND id = ? AND status = 'running' RETURNING {_COLS}"
)
VERDICT = (
    "UPDATE loadtest_runs SET baseline_id = ?, verdict = ?, updated_ns = ? "
    "WHERE project_id = ? AND id = ?"
)
GET = SELECT + "WHERE project_id = ? AND id = ?"
LATEST = (
    SELECT + "WHERE project_id = ? AND name = ? AND status IN ('finished', 'failed') "
    "AND end_ns IS NOT NULL AND id < ? ORDER BY id DESC LIMIT 1"
)
DELETE = "DELETE FROM loadtest_runs WHERE project_id = ? AND id = ? RETURNING id"
NO_ID = 1 << 62
"""``before_id`` when none is given (ids are far below)."""


def insert_params(project_id: int, run: NewRun, start_ns: int, now_ns: int) -> list[Any]:
    return [
        project_id,
        run.name,
        start_ns,
        run.tool,
        run.command,
        run.service,
        run.environment,
        run.baseline,
        orjson.dumps(run.labels).decode(),
        orjson.dumps(run.load).decode(),
        now_ns,
        now_ns,
    ]


def list_query(name: str | None, limit: int, before_id: int | None) -> tuple[str, list[Any]]:
    clauses = ["project_id = ?", "id < ?"]
    params: list[Any] = [before_id or NO_ID]
    if name is not None:
        clauses.append("name = ?")
        params.append(name)
    sql = SELECT + "WHERE " + " AND ".join(clauses) + " ORDER BY id DESC LIMIT ?"
    return sql, params + [limit]


def dumps_load(load: dict[str, Any] | None) -> str | None:
    return None if load is None else orjson.dumps(load).decode()


def to_run(row: Sequence[Any]) -> LoadTestRun:
    """A stored row (``LOADTEST_COLUMNS`` order) as a ``LoadTestRun``."""
    r = dict(zip(LOADTEST_COLUMNS, row, strict=True))
    return LoadTestRun(
        id=int(r["id"]),
        project_id=int(r["project_id"]),
        name=str(r["name"]),
        status=cast(RunStatus, r["status"]),
        start_ns=int(r["start_ns"]),
        end_ns=None if r["end_ns"] is None else int(r["end_ns"]),
        tool=cast(Tool, r["tool"]),
        command=str(r["command"]),
        service=r["service"],
        environment=r["environment"],
        exit_code=r["exit_code"],
        baseline=r["baseline"],
        baseline_id=r["baseline_id"],
        verdict=cast("Verdict | None", r["verdict"]),
        labels=orjson.loads(r["labels_json"]),
        load=orjson.loads(r["load_json"]),
        created_ns=int(r["created_ns"]),
        updated_ns=int(r["updated_ns"]),
    )


class LoadTestsOnSql:
    """``store.loadtests.LoadTestStore`` on the shared statements: one transaction per
    change, reads outside. A backend's state mixes this in and gives three hooks: its
    placeholder (``_lt_sql``), a read and a transaction (its connection answers
    ``execute(sql, params).fetchone()``)."""

    def _lt_sql(self, sql: str) -> str:
        return sql

    def _lt_read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _lt_transaction(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def create_loadtest(
        self, project_id: int, run: NewRun, start_ns: int, now_ns: int
    ) -> LoadTestRun:
        sql, params = self._lt_sql(INSERT), insert_params(project_id, run, start_ns, now_ns)

        def go(con: Any) -> LoadTestRun:
            row = con.execute(sql, params).fetchone()
            assert row is not None  # RETURNING of an INSERT
            return to_run(row)

        return self._lt_transaction(go)

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
        finish, get = self._lt_sql(FINISH), self._lt_sql(GET)
        params = [status, end_ns, exit_code, dumps_load(load), now_ns, project_id, run_id]

        def go(con: Any) -> LoadTestRun | None:
            row = con.execute(finish, params).fetchone()
            if row is None:  # unknown, or finished already: as stored
                row = con.execute(get, [project_id, run_id]).fetchone()
            return None if row is None else to_run(row)

        return self._lt_transaction(go)

    def set_loadtest_verdict(
        self, project_id: int, run_id: int, baseline_id: int | None, verdict: Verdict, now_ns: int
    ) -> None:
        sql, params = self._lt_sql(VERDICT), [baseline_id, verdict, now_ns, project_id, run_id]
        self._lt_transaction(lambda con: con.execute(sql, params))

    def get_loadtest(self, project_id: int, run_id: int) -> LoadTestRun | None:
        rows = self._lt_read(self._lt_sql(GET), [project_id, run_id])
        return to_run(rows[0]) if rows else None

    def latest_loadtest(
        self, project_id: int, name: str, before_id: int | None = None
    ) -> LoadTestRun | None:
        rows = self._lt_read(self._lt_sql(LATEST), [project_id, name, before_id or NO_ID])
        return to_run(rows[0]) if rows else None

    def list_loadtests(
        self,
        project_id: int,
        *,
        name: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[LoadTestRun]:
        sql, params = list_query(name, limit, before_id)
        return [to_run(r) for r in self._lt_read(self._lt_sql(sql), [project_id, *params])]

    def delete_loadtest(self, project_id: int, run_id: int) -> bool:
        sql = self._lt_sql(DELETE)

        def go(con: Any) -> bool:
            return con.execute(sql, [project_id, run_id]).fetchone() is not None

        return self._lt_transaction(go)
