"""SQL shared by the DuckDB and PostgreSQL load-test stores (``store/loadtests.py``).

Statements are written with ``?`` placeholders; PostgreSQL's store swaps them for
``%s``. ``labels`` and ``load`` are kept as JSON text (``labels_json``, ``load_json``):
small free-form objects that are only ever read whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson

from heron.server.model.loadtest import LoadTestRun, NewRun, RunStatus, Tool, Verdict

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
