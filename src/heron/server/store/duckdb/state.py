"""DuckDB statements for: Transactional state: projects, ingest keys, API tokens, users,
sessions, sign-in tokens, issue status changes and dashboards (alerting: ``alerting.py``). Every change runs on the writer
thread, one transaction each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from heron.server.analyze.issues import IssueState
from heron.server.model.event import ErrorEvent
from heron.server.store.duckdb._sql import SqlReads
from heron.server.store.duckdb.alerting import DuckDBAlerts
from heron.server.store.duckdb.loadtests import DuckDBLoadTests
from heron.server.store.events import ISSUE_COLUMNS, record_releases, write_issues
from heron.server.store.state import (
    DASHBOARD_COLUMNS,
    STATE_TABLES,
    DashboardRow,
    LastAdmin,
    UnknownUser,
    UserRow,
    VersionConflict,
)

_RESOLVE = (
    "UPDATE issues SET status = 'resolved', resolved_release = coalesce(?, last_release, ''), "
    "status_changed_ns = ? WHERE project_id = ? AND id = ? RETURNING id"
)
_IGNORE = (
    "UPDATE issues SET status = 'ignored', status_changed_ns = ? "
    "WHERE project_id = ? AND id = ? RETURNING id"
)
_REOPEN = (
    "UPDATE issues SET status = 'open', resolved_release = NULL, regressed_ns = NULL, "
    "status_changed_ns = ? WHERE project_id = ? AND id = ? RETURNING id"
)


# The sequences that number a table's ids (``store/schema.py``).
_ID_SEQUENCES = {
    "users": "user_ids",
    "issues": "issue_ids",
    "dashboards": "dashboard_ids",
    "alert_config": "alert_config_ids",
    "alert_history": "alert_history_ids",
    "notifications": "notification_ids",
    "loadtest_runs": "loadtest_ids",
}
_COLS = ", ".join(DASHBOARD_COLUMNS)
_DASHBOARD = f"SELECT {_COLS} FROM dashboards "  # noqa: S608 - fixed column names
_INSERT_DASHBOARD = (
    "INSERT INTO dashboards (project_id, title, spec, version, created_ns, updated_ns) "  # noqa: S608
    f"VALUES (?, ?, ?, 1, ?, ?) RETURNING {_COLS}"
)
_UPDATE_DASHBOARD = (
    "UPDATE dashboards SET title = ?, spec = ?, version = version + 1, updated_ns = ? "  # noqa: S608
    f"WHERE project_id = ? AND id = ? RETURNING {_COLS}"
)


class DuckDBState(DuckDBAlerts, DuckDBLoadTests):
    """Implements ``store.state.StateStore`` (and ``StateImport``) on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql

    # ---------------------------------------------------------------- projects

    def ensure_project(self, name: str, ingest_key: str, now_ns: int) -> tuple[int, str, bool]:
        def run(con: Any) -> tuple[int, str, bool]:
            row = con.execute("SELECT id FROM projects WHERE name = ?", [name]).fetchone()
            if row is None:
                con.execute("INSERT INTO projects VALUES (1, ?, ?)", [name, now_ns])
                con.execute("INSERT INTO ingest_keys VALUES (?, 1, ?, false)", [ingest_key, now_ns])
                return 1, ingest_key, True
            key = con.execute(
                "SELECT key FROM ingest_keys WHERE project_id = ? AND NOT revoked "
                "ORDER BY created_ns LIMIT 1",
                [row[0]],
            ).fetchone()[0]
            return int(row[0]), key, False

        result: tuple[int, str, bool] = self.sql.write(run)
        return result

    def add_api_token(self, token_sha256: str, name: str, now_ns: int) -> bool:
        def run(con: Any) -> bool:
            if con.execute(
                "SELECT 1 FROM api_tokens WHERE token_sha256 = ?", [token_sha256]
            ).fetchone():
                return False
            con.execute("INSERT INTO api_tokens VALUES (?, ?, ?)", [token_sha256, name, now_ns])
            return True

        result: bool = self.sql.write(run)
        return result

    def add_first_api_token(self, token_sha256: str, name: str, now_ns: int) -> bool:
        def run(con: Any) -> bool:
            if con.execute("SELECT 1 FROM api_tokens LIMIT 1").fetchone():
                return False
            con.execute("INSERT INTO api_tokens VALUES (?, ?, ?)", [token_sha256, name, now_ns])
            return True

        result: bool = self.sql.write(run)
        return result

    def ingest_keys(self) -> list[tuple[str, int]]:
        rows = self.sql.read("SELECT key, project_id FROM ingest_keys WHERE NOT revoked")
        return [(k, p) for k, p in rows]

    def api_token_digests(self) -> list[str]:
        return [t for (t,) in self.sql.read("SELECT token_sha256 FROM api_tokens")]

    def ensure_browser_key(self, project_id: int, key: str, now_ns: int) -> str:
        def run(con: Any) -> str:
            row = con.execute(
                "SELECT key FROM browser_keys WHERE project_id = ?", [project_id]
            ).fetchone()
            if row is not None:
                return str(row[0])
            con.execute("INSERT INTO browser_keys VALUES (?, ?, ?)", [key, project_id, now_ns])
            return key

        result: str = self.sql.write(run)
        return result

    def browser_keys(self) -> list[tuple[str, int]]:
        rows = self.sql.read("SELECT key, project_id FROM browser_keys")
        return [(str(k), int(p)) for k, p in rows]

    # ------------------------------------------------------------------- users

    def count_users(self) -> int:
        return int(self.sql.read("SELECT count(*) FROM users")[0][0])

    def user_password_hash(self, username: str) -> tuple[UserRow, str] | None:
        rows = self.sql.read(
            "SELECT id, username, is_admin, password_hash FROM users WHERE username = ?",
            [username],
        )
        if not rows:
            return None
        uid, uname, admin, stored = rows[0]
        return (uid, uname, admin), stored

    def add_user(
        self, username: str, password_hash: str, is_admin: bool, now_ns: int
    ) -> int | None:
        def run(con: Any) -> int | None:
            if con.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                return None
            return _insert_user(con, username, password_hash, is_admin, now_ns)

        result: int | None = self.sql.write(run)
        return result

    def add_first_user(
        self, username: str, password_hash: str, is_admin: bool, now_ns: int
    ) -> int | None:
        def run(con: Any) -> int | None:
            if con.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return None
            return _insert_user(con, username, password_hash, is_admin, now_ns)

        result: int | None = self.sql.write(run)
        return result

    def set_password(self, username: str, password_hash: str) -> int:
        def run(con: Any) -> int:
            uid = _user_id(con, username)
            con.execute("UPDATE users SET password_hash = ? WHERE id = ?", [password_hash, uid])
            return _end_sessions_of(con, uid)

        result: int = self.sql.write(run)
        return result

    def rehash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        self.sql.write(
            lambda con: con.execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                [new_hash, user_id, old_hash],
            )
        )

    def delete_user(self, username: str) -> int:
        def run(con: Any) -> int:
            uid = _user_id(con, username)
            admins = con.execute("SELECT id FROM users WHERE is_admin").fetchall()
            if admins == [(uid,)]:
                raise LastAdmin(username)
            ended = _end_sessions_of(con, uid)
            con.execute("DELETE FROM users WHERE id = ?", [uid])
            return ended

        result: int = self.sql.write(run)
        return result

    def list_users(self, now_ns: int) -> list[tuple[str, bool, int, int]]:
        rows = self.sql.read(
            "SELECT u.username, u.is_admin, u.created_ns, "
            "  (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_ns > ?) "
            "FROM users u ORDER BY u.username",
            [now_ns],
        )
        return [(n, a, c, int(s)) for n, a, c, s in rows]

    # ---------------------------------------------------------------- sessions

    def add_session(
        self,
        id_sha256: str,
        user_id: int,
        now_ns: int,
        expires_ns: int,
        replaces_sha256: str | None,
    ) -> None:
        self.sql.write(
            lambda con: _insert_session(
                con, id_sha256, user_id, now_ns, expires_ns, replaces_sha256
            )
        )

    def session_user(self, id_sha256: str, now_ns: int) -> UserRow | None:
        rows = self.sql.read(
            "SELECT u.id, u.username, u.is_admin FROM sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.id_sha256 = ? AND s.expires_ns > ?",
            [id_sha256, now_ns],
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def end_session(self, id_sha256: str) -> None:
        self.sql.write(
            lambda con: con.execute("DELETE FROM sessions WHERE id_sha256 = ?", [id_sha256])
        )

    def add_login_token(
        self, username: str, token_sha256: str, now_ns: int, expires_ns: int
    ) -> None:
        def run(con: Any) -> None:
            uid = _user_id(con, username)
            con.execute("DELETE FROM login_tokens WHERE expires_ns <= ?", [now_ns])
            con.execute(
                "INSERT INTO login_tokens VALUES (?, ?, ?, ?)",
                [token_sha256, uid, now_ns, expires_ns],
            )

        self.sql.write(run)

    def redeem_login_token(
        self,
        token_sha256: str,
        now_ns: int,
        session_sha256: str,
        session_expires_ns: int,
        replaces_sha256: str | None,
    ) -> UserRow | None:
        def run(con: Any) -> UserRow | None:
            row = con.execute(
                "SELECT u.id, u.username, u.is_admin, t.expires_ns FROM login_tokens t "
                "JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ?",
                [token_sha256],
            ).fetchone()
            con.execute("DELETE FROM login_tokens WHERE token_sha256 = ?", [token_sha256])
            if row is None or row[3] <= now_ns:
                return None
            _insert_session(
                con, session_sha256, row[0], now_ns, session_expires_ns, replaces_sha256
            )
            return row[0], row[1], row[2]

        result: UserRow | None = self.sql.write(run)
        return result

    # ------------------------------------------------------------ issue status

    def set_issue_status(
        self, project_id: int, issue_id: int, status: str, release: str | None, now_ns: int
    ) -> bool:
        if status == "resolved":
            sql = _RESOLVE
            params: list[Any] = [release or None, now_ns, project_id, issue_id]
        else:
            sql = _IGNORE if status == "ignored" else _REOPEN
            params = [now_ns, project_id, issue_id]

        def run(con: Any) -> bool:
            return con.execute(sql, params).fetchone() is not None

        updated: bool = self.sql.write(run)
        return updated

    # ---------------------------------------------------------- issue grouping

    def assign_issues(self, events: Sequence[tuple[int, ErrorEvent]]) -> None:
        pairs = list(events)

        def run(con: Any) -> None:
            record_releases(con, pairs, set())
            write_issues(con, pairs)

        if pairs:
            self.sql.write(run)

    def issue_states(self, project_id: int, issue_ids: Sequence[int]) -> dict[int, IssueState]:
        if not issue_ids:
            return {}
        rows = self.sql.read(
            "SELECT "  # noqa: S608 - fixed column names
            + ", ".join(ISSUE_COLUMNS)
            + " FROM issues WHERE project_id = ? AND list_contains(?::BIGINT[], id)",
            [project_id, list(issue_ids)],
        )
        return {int(row[0]): IssueState(*row) for row in rows}

    # -------------------------------------------------------------- dashboards

    def list_dashboards(self, project_id: int) -> list[DashboardRow]:
        rows = self.sql.read(_DASHBOARD + "WHERE project_id = ? ORDER BY title, id", [project_id])
        return [DashboardRow(*r) for r in rows]

    def get_dashboard(self, project_id: int, dashboard_id: int) -> DashboardRow | None:
        rows = self.sql.read(
            _DASHBOARD + "WHERE project_id = ? AND id = ?", [project_id, dashboard_id]
        )
        return DashboardRow(*rows[0]) if rows else None

    def create_dashboard(self, project_id: int, title: str, spec: str, now_ns: int) -> DashboardRow:
        def run(con: Any) -> DashboardRow:
            row = con.execute(
                _INSERT_DASHBOARD,
                [project_id, title, spec, now_ns, now_ns],
            ).fetchone()
            return DashboardRow(*row)

        result: DashboardRow = self.sql.write(run)
        return result

    def update_dashboard(
        self,
        project_id: int,
        dashboard_id: int,
        title: str,
        spec: str,
        now_ns: int,
        expected_version: int | None = None,
    ) -> DashboardRow | None:
        # A conflict is answered, not raised, inside the transaction: the writer logs
        # exceptions as failures, and this one is the caller's expected outcome.
        def run(con: Any) -> DashboardRow | int | None:
            found = con.execute(
                "SELECT version FROM dashboards WHERE project_id = ? AND id = ?",
                [project_id, dashboard_id],
            ).fetchone()
            if found is None:
                return None
            if expected_version is not None and found[0] != expected_version:
                return int(found[0])
            row = con.execute(
                _UPDATE_DASHBOARD, [title, spec, now_ns, project_id, dashboard_id]
            ).fetchone()
            return DashboardRow(*row)

        result: DashboardRow | int | None = self.sql.write(run)
        if isinstance(result, int):
            raise VersionConflict(result)
        return result

    def delete_dashboard(self, project_id: int, dashboard_id: int) -> bool:
        def run(con: Any) -> bool:
            return (
                con.execute(
                    "DELETE FROM dashboards WHERE project_id = ? AND id = ? RETURNING id",
                    [project_id, dashboard_id],
                ).fetchone()
                is not None
            )

        deleted: bool = self.sql.write(run)
        return deleted

    # ------------------------------------------------------------ bulk import

    def import_state(self, rows: dict[str, Sequence[Sequence[object]]]) -> dict[str, int]:
        def run(con: Any) -> dict[str, int]:
            return {table: _import_table(con, table, rows[table]) for table in rows}

        result: dict[str, int] = self.sql.write(run, timeout=None)
        return result


def _insert_user(con: Any, name: str, password_hash: str, is_admin: bool, now_ns: int) -> int:
    row = con.execute(
        "INSERT INTO users (username, password_hash, is_admin, created_ns) "
        "VALUES (?, ?, ?, ?) RETURNING id",
        [name, password_hash, is_admin, now_ns],
    ).fetchone()
    return int(row[0])


def _user_id(con: Any, name: str) -> int:
    row = con.execute("SELECT id FROM users WHERE username = ?", [name]).fetchone()
    if row is None:
        raise UnknownUser(name)
    return int(row[0])


def _end_sessions_of(con: Any, uid: int) -> int:
    ended = con.execute("SELECT count(*) FROM sessions WHERE user_id = ?", [uid]).fetchone()
    con.execute("DELETE FROM sessions WHERE user_id = ?", [uid])
    con.execute("DELETE FROM login_tokens WHERE user_id = ?", [uid])
    return int(ended[0])


def _insert_session(
    con: Any,
    id_sha256: str,
    user_id: int,
    now_ns: int,
    expires_ns: int,
    replaces_sha256: str | None,
) -> None:
    con.execute("DELETE FROM sessions WHERE expires_ns <= ?", [now_ns])
    if replaces_sha256:
        con.execute("DELETE FROM sessions WHERE id_sha256 = ?", [replaces_sha256])
    con.execute(
        "INSERT INTO sessions VALUES (?, ?, ?, ?)", [id_sha256, user_id, now_ns, expires_ns]
    )


def _import_table(con: Any, table: str, rows: Sequence[Sequence[object]]) -> int:
    """Insert the ``rows`` of ``table`` whose keys are absent; the number inserted."""
    columns = STATE_TABLES[table]  # KeyError for a table that is not state
    count = f"SELECT count(*) FROM {table}"  # noqa: S608 - names from STATE_TABLES
    before = int(con.execute(count).fetchone()[0])
    if rows:
        marks = ", ".join("?" * len(columns))
        con.executemany(
            f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            [list(r) for r in rows],
        )
    if table in _ID_SEQUENCES:
        _advance(con, _ID_SEQUENCES[table], table)
    return int(con.execute(count).fetchone()[0]) - before


def _advance(con: Any, sequence: str, table: str) -> None:
    """Move ``sequence`` up to the largest id in ``table`` (DuckDB has no setval)."""
    top = int(con.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])  # noqa: S608
    last = con.execute(
        "SELECT coalesce(last_value, start_value - 1) FROM duckdb_sequences() "
        "WHERE sequence_name = ?",
        [sequence],
    ).fetchone()[0]
    if int(last) < top:
        con.execute(f"SELECT max(nextval('{sequence}')) FROM range(?)", [top - int(last)])  # noqa: S608
