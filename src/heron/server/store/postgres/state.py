"""``PostgresState``: the shared state of several Heron processes (scale-out mode) in
PostgreSQL: projects, ingest keys, API tokens, users, sessions, sign-in tokens, issues,
releases, dashboards and alerting (``alerting.py``). Same semantics as
``store/duckdb/state.py``.

Every change is one transaction on a pooled connection (READ COMMITTED). Where two
processes may race, the statement itself decides: ``INSERT … ON CONFLICT DO NOTHING``,
``DELETE … RETURNING`` for one-time tokens, row locks (``FOR UPDATE``) taken in id order
for issue counters, a table lock for "only the first one". A connection failure raises
``StorageUnavailable`` without the URL's password.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from psycopg import sql

from heron.server.analyze.issues import IssueState, apply_event, new_issue
from heron.server.model.event import ErrorEvent
from heron.server.store.postgres import schema as pg_schema
from heron.server.store.postgres._pool import Connection, Pool
from heron.server.store.postgres.alerting import PostgresAlerts
from heron.server.store.postgres.loadtests import PostgresLoadTests
from heron.server.store.state import (
    DASHBOARD_COLUMNS,
    STATE_TABLES,
    DashboardRow,
    LastAdmin,
    UnknownUser,
    UserRow,
    VersionConflict,
)
from heron.server.store.state import (
    ISSUE_COLUMNS as _ISSUE_COLUMNS,
)

_UPDATED_COLUMNS = _ISSUE_COLUMNS[6:]  # level … regressed_ns
# Identifiers from the fixed tuples above; no value is ever formatted into SQL.
_SELECT_ISSUES = "SELECT " + ", ".join(_ISSUE_COLUMNS) + " FROM issues "  # noqa: S608
_INSERT_ISSUE = (
    "INSERT INTO issues ("  # noqa: S608
    + ", ".join(_ISSUE_COLUMNS[1:])
    + ") VALUES ("
    + ", ".join(["%s"] * (len(_ISSUE_COLUMNS) - 1))
    + ") ON CONFLICT (project_id, fingerprint) DO NOTHING"
)
_UPDATE_ISSUE = (
    "UPDATE issues SET "  # noqa: S608
    + ", ".join(f"{c} = %s" for c in _UPDATED_COLUMNS)
    + " WHERE id = %s"
)
_BY_FINGERPRINT = "WHERE project_id = %s AND fingerprint = ANY(%s::BIGINT[])"
_SELECT_KEYS = "SELECT project_id, fingerprint FROM issues " + _BY_FINGERPRINT  # noqa: S608
_LOCK_ISSUES = _SELECT_ISSUES + _BY_FINGERPRINT + " ORDER BY id FOR UPDATE"
_SELECT_BY_ID = _SELECT_ISSUES + "WHERE project_id = %s AND id = ANY(%s::BIGINT[])"
_RESOLVE = (
    "UPDATE issues SET status = 'resolved', "
    "resolved_release = coalesce(%s, last_release, ''), status_changed_ns = %s "
    "WHERE project_id = %s AND id = %s RETURNING id"
)
_IGNORE = (
    "UPDATE issues SET status = 'ignored', status_changed_ns = %s "
    "WHERE project_id = %s AND id = %s RETURNING id"
)
_REOPEN = (
    "UPDATE issues SET status = 'open', resolved_release = NULL, regressed_ns = NULL, "
    "status_changed_ns = %s WHERE project_id = %s AND id = %s RETURNING id"
)
_U64 = 1 << 64
_DASHBOARD_COLS = ", ".join(DASHBOARD_COLUMNS)
_DASHBOARD = f"SELECT {_DASHBOARD_COLS} FROM dashboards "  # noqa: S608 - fixed column names
_INSERT_DASHBOARD = (
    "INSERT INTO dashboards (project_id, title, spec, version, created_ns, updated_ns) "  # noqa: S608
    f"VALUES (%s, %s, %s, 1, %s, %s) RETURNING {_DASHBOARD_COLS}"
)
_UPDATE_DASHBOARD = (
    "UPDATE dashboards SET title = %s, spec = %s, version = version + 1, updated_ns = %s "  # noqa: S608
    f"WHERE project_id = %s AND id = %s RETURNING {_DASHBOARD_COLS}"
)


def _signed(fingerprint: int) -> int:
    """The BIGINT holding a 64-bit unsigned fingerprint's bits."""
    return fingerprint - _U64 if fingerprint >= 1 << 63 else fingerprint


def _unsigned(stored: int) -> int:
    return stored + _U64 if stored < 0 else stored


class PostgresState(PostgresAlerts, PostgresLoadTests):
    """Implements ``store.state.StateStore`` on PostgreSQL, in the schema ``schema``
    (created and migrated on construction; see ``postgres/schema.py``).

    ``url``: a libpq connection string, ``postgresql://user:password@host:5432/db`` or
    ``host=… dbname=…``. Raises ``StorageUnavailable`` when PostgreSQL cannot be reached.
    """

    def __init__(self, url: str, *, schema: str = "heron", pool_size: int = 8) -> None:
        self.schema = pg_schema.check_schema_name(schema)
        self._pool = Pool(url, self.schema, size=pool_size)
        try:
            with self._pool.connection() as con:
                self.version = pg_schema.migrate(con, self.schema)
        except BaseException:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresState({self._pool.where!r}, schema={self.schema!r})"

    def close(self) -> None:
        """Close the pooled connections (calls after this raise StorageUnavailable)."""
        self._pool.close()

    # ---------------------------------------------------------------- projects

    def ensure_project(self, name: str, ingest_key: str, now_ns: int) -> tuple[int, str, bool]:
        def run(con: Connection) -> tuple[int, str, bool]:
            created = con.execute(
                "INSERT INTO projects VALUES (1, %s, %s) ON CONFLICT (name) DO NOTHING "
                "RETURNING id",
                [name, now_ns],
            ).fetchone()
            if created is not None:
                con.execute(
                    "INSERT INTO ingest_keys VALUES (%s, 1, %s, false)", [ingest_key, now_ns]
                )
                return 1, ingest_key, True
            row = _one(
                con,
                "SELECT p.id, k.key FROM projects p JOIN ingest_keys k ON k.project_id = p.id "
                "WHERE p.name = %s AND NOT k.revoked ORDER BY k.created_ns, k.key LIMIT 1",
                [name],
            )
            return int(row[0]), str(row[1]), False

        return self._pool.transaction(run)

    def add_api_token(self, token_sha256: str, name: str, now_ns: int) -> bool:
        def run(con: Connection) -> bool:
            return _insert_token(con, token_sha256, name, now_ns)

        return self._pool.transaction(run)

    def add_first_api_token(self, token_sha256: str, name: str, now_ns: int) -> bool:
        def run(con: Connection) -> bool:
            # Writers of this table wait for each other; readers do not.
            con.execute("LOCK TABLE api_tokens IN EXCLUSIVE MODE")
            if con.execute("SELECT 1 FROM api_tokens LIMIT 1").fetchone():
                return False
            return _insert_token(con, token_sha256, name, now_ns)

        return self._pool.transaction(run)

    def ingest_keys(self) -> list[tuple[str, int]]:
        rows = self._pool.read("SELECT key, project_id FROM ingest_keys WHERE NOT revoked")
        return [(str(k), int(p)) for k, p in rows]

    def api_token_digests(self) -> list[str]:
        return [str(t) for (t,) in self._pool.read("SELECT token_sha256 FROM api_tokens")]

    def ensure_browser_key(self, project_id: int, key: str, now_ns: int) -> str:
        def run(con: Connection) -> str:
            con.execute(
                "INSERT INTO browser_keys VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                [key, project_id, now_ns],
            )
            row = _one(con, "SELECT key FROM browser_keys WHERE project_id = %s", [project_id])
            return str(row[0])

        return self._pool.transaction(run)

    def browser_keys(self) -> list[tuple[str, int]]:
        rows = self._pool.read("SELECT key, project_id FROM browser_keys")
        return [(str(k), int(p)) for k, p in rows]

    # ------------------------------------------------------------------- users

    def count_users(self) -> int:
        return int(self._pool.read("SELECT count(*) FROM users")[0][0])

    def user_password_hash(self, username: str) -> tuple[UserRow, str] | None:
        rows = self._pool.read(
            "SELECT id, username, is_admin, password_hash FROM users WHERE username = %s",
            [username],
        )
        if not rows:
            return None
        uid, uname, admin, stored = rows[0]
        return (uid, uname, admin), stored

    def add_user(
        self, username: str, password_hash: str, is_admin: bool, now_ns: int
    ) -> int | None:
        def run(con: Connection) -> int | None:
            return _insert_user(con, username, password_hash, is_admin, now_ns)

        return self._pool.transaction(run)

    def add_first_user(
        self, username: str, password_hash: str, is_admin: bool, now_ns: int
    ) -> int | None:
        def run(con: Connection) -> int | None:
            con.execute("LOCK TABLE users IN EXCLUSIVE MODE")
            if con.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return None
            return _insert_user(con, username, password_hash, is_admin, now_ns)

        return self._pool.transaction(run)

    def set_password(self, username: str, password_hash: str) -> int:
        def run(con: Connection) -> int:
            row = con.execute(
                "UPDATE users SET password_hash = %s WHERE username = %s RETURNING id",
                [password_hash, username],
            ).fetchone()
            if row is None:
                raise UnknownUser(username)
            return _end_sessions_of(con, int(row[0]))

        return self._pool.transaction(run)

    def rehash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        self._pool.transaction(
            lambda con: con.execute(
                "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s",
                [new_hash, user_id, old_hash],
            )
        )

    def delete_user(self, username: str) -> int:
        def run(con: Connection) -> int:
            # Lock every admin (in id order): two admins deleting each other at once
            # cannot both succeed.
            admins = con.execute(
                "SELECT id FROM users WHERE is_admin ORDER BY id FOR UPDATE"
            ).fetchall()
            uid = _user_id(con, username)
            if [a for (a,) in admins] == [uid]:
                raise LastAdmin(username)
            ended = _end_sessions_of(con, uid)
            con.execute("DELETE FROM users WHERE id = %s", [uid])
            return ended

        return self._pool.transaction(run)

    def list_users(self, now_ns: int) -> list[tuple[str, bool, int, int]]:
        rows = self._pool.read(
            "SELECT u.username, u.is_admin, u.created_ns, "
            "  (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_ns > %s) "
            "FROM users u ORDER BY u.username",
            [now_ns],
        )
        return [(n, a, int(c), int(s)) for n, a, c, s in rows]

    # ---------------------------------------------------------------- sessions

    def add_session(
        self,
        id_sha256: str,
        user_id: int,
        now_ns: int,
        expires_ns: int,
        replaces_sha256: str | None,
    ) -> None:
        self._pool.transaction(
            lambda con: _insert_session(
                con, id_sha256, user_id, now_ns, expires_ns, replaces_sha256
            )
        )

    def session_user(self, id_sha256: str, now_ns: int) -> UserRow | None:
        rows = self._pool.read(
            "SELECT u.id, u.username, u.is_admin FROM sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.id_sha256 = %s AND s.expires_ns > %s",
            [id_sha256, now_ns],
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def end_session(self, id_sha256: str) -> None:
        self._pool.transaction(
            lambda con: con.execute("DELETE FROM sessions WHERE id_sha256 = %s", [id_sha256])
        )

    def add_login_token(
        self, username: str, token_sha256: str, now_ns: int, expires_ns: int
    ) -> None:
        def run(con: Connection) -> None:
            uid = _user_id(con, username)
            con.execute("DELETE FROM login_tokens WHERE expires_ns <= %s", [now_ns])
            con.execute(
                "INSERT INTO login_tokens VALUES (%s, %s, %s, %s)",
                [token_sha256, uid, now_ns, expires_ns],
            )

        self._pool.transaction(run)

    def redeem_login_token(
        self,
        token_sha256: str,
        now_ns: int,
        session_sha256: str,
        session_expires_ns: int,
        replaces_sha256: str | None,
    ) -> UserRow | None:
        def run(con: Connection) -> UserRow | None:
            # The DELETE is the claim: of two racing redeemers, the second waits for the
            # first's row lock and then finds nothing to delete.
            row = con.execute(
                "WITH t AS (DELETE FROM login_tokens WHERE token_sha256 = %s "
                "  RETURNING user_id, expires_ns) "
                "SELECT u.id, u.username, u.is_admin, t.expires_ns FROM t "
                "JOIN users u ON u.id = t.user_id",
                [token_sha256],
            ).fetchone()
            if row is None or row[3] <= now_ns:
                return None
            _insert_session(
                con, session_sha256, row[0], now_ns, session_expires_ns, replaces_sha256
            )
            return row[0], row[1], row[2]

        return self._pool.transaction(run)

    # ------------------------------------------------------------ issue status

    def set_issue_status(
        self, project_id: int, issue_id: int, status: str, release: str | None, now_ns: int
    ) -> bool:
        if status == "resolved":
            query = _RESOLVE
            params: list[Any] = [release or None, now_ns, project_id, issue_id]
        else:
            query = _IGNORE if status == "ignored" else _REOPEN
            params = [now_ns, project_id, issue_id]

        def run(con: Connection) -> bool:
            return con.execute(query, params).fetchone() is not None

        return self._pool.transaction(run)

    # ---------------------------------------------------------- issue grouping

    def assign_issues(self, events: Sequence[tuple[int, ErrorEvent]]) -> None:
        pairs = list(events)
        if pairs:
            self._pool.transaction(lambda con: _assign(con, pairs))

    def issue_states(self, project_id: int, issue_ids: Sequence[int]) -> dict[int, IssueState]:
        if not issue_ids:
            return {}
        rows = self._pool.read(_SELECT_BY_ID, [project_id, list(issue_ids)])
        return {int(row[0]): _issue(row) for row in rows}

    # -------------------------------------------------------------- dashboards

    def list_dashboards(self, project_id: int) -> list[DashboardRow]:
        rows = self._pool.read(
            _DASHBOARD + "WHERE project_id = %s ORDER BY title, id", [project_id]
        )
        return [DashboardRow(*r) for r in rows]

    def get_dashboard(self, project_id: int, dashboard_id: int) -> DashboardRow | None:
        rows = self._pool.read(
            _DASHBOARD + "WHERE project_id = %s AND id = %s", [project_id, dashboard_id]
        )
        return DashboardRow(*rows[0]) if rows else None

    def create_dashboard(self, project_id: int, title: str, spec: str, now_ns: int) -> DashboardRow:
        def run(con: Connection) -> DashboardRow:
            row = _one(
                con,
                _INSERT_DASHBOARD,
                [project_id, title, spec, now_ns, now_ns],
            )
            return DashboardRow(*row)

        return self._pool.transaction(run)

    def update_dashboard(
        self,
        project_id: int,
        dashboard_id: int,
        title: str,
        spec: str,
        now_ns: int,
        expected_version: int | None = None,
    ) -> DashboardRow | None:
        def run(con: Connection) -> DashboardRow | None:
            # The row lock makes a concurrent update wait, then see the new version.
            found = con.execute(
                "SELECT version FROM dashboards WHERE project_id = %s AND id = %s FOR UPDATE",
                [project_id, dashboard_id],
            ).fetchone()
            if found is None:
                return None
            if expected_version is not None and found[0] != expected_version:
                raise VersionConflict(int(found[0]))
            row = _one(
                con,
                _UPDATE_DASHBOARD,
                [title, spec, now_ns, project_id, dashboard_id],
            )
            return DashboardRow(*row)

        return self._pool.transaction(run)

    def delete_dashboard(self, project_id: int, dashboard_id: int) -> bool:
        def run(con: Connection) -> bool:
            return (
                con.execute(
                    "DELETE FROM dashboards WHERE project_id = %s AND id = %s RETURNING id",
                    [project_id, dashboard_id],
                ).fetchone()
                is not None
            )

        return self._pool.transaction(run)

    # ------------------------------------------------------------ bulk import

    def import_state(self, rows: dict[str, Sequence[Sequence[object]]]) -> dict[str, int]:
        """``StateImport``: one transaction; ``ON CONFLICT DO NOTHING`` keeps the rows
        already there, identity sequences move past the imported ids."""

        def run(con: Connection) -> dict[str, int]:
            return {table: _import_table(con, table, rows[table]) for table in rows}

        return self._pool.transaction(run)


def _one(con: Connection, query: str, params: Sequence[Any]) -> tuple[Any, ...]:
    row = con.execute(query, params).fetchone()
    if row is None:
        raise LookupError("expected a row")
    return row


def _insert_token(con: Connection, token_sha256: str, name: str, now_ns: int) -> bool:
    row = con.execute(
        "INSERT INTO api_tokens VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        [token_sha256, name, now_ns],
    ).fetchone()
    return row is not None


def _insert_user(
    con: Connection, name: str, password_hash: str, is_admin: bool, now_ns: int
) -> int | None:
    row = con.execute(
        "INSERT INTO users (username, password_hash, is_admin, created_ns) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (username) DO NOTHING RETURNING id",
        [name, password_hash, is_admin, now_ns],
    ).fetchone()
    return int(row[0]) if row else None


def _user_id(con: Connection, name: str) -> int:
    row = con.execute("SELECT id FROM users WHERE username = %s", [name]).fetchone()
    if row is None:
        raise UnknownUser(name)
    return int(row[0])


def _end_sessions_of(con: Connection, uid: int) -> int:
    ended = con.execute("DELETE FROM sessions WHERE user_id = %s", [uid]).rowcount
    con.execute("DELETE FROM login_tokens WHERE user_id = %s", [uid])
    return ended


def _insert_session(
    con: Connection,
    id_sha256: str,
    user_id: int,
    now_ns: int,
    expires_ns: int,
    replaces_sha256: str | None,
) -> None:
    con.execute("DELETE FROM sessions WHERE expires_ns <= %s", [now_ns])
    if replaces_sha256:
        con.execute("DELETE FROM sessions WHERE id_sha256 = %s", [replaces_sha256])
    con.execute(
        "INSERT INTO sessions VALUES (%s, %s, %s, %s)", [id_sha256, user_id, now_ns, expires_ns]
    )


# ------------------------------------------------------------- issue grouping


def _issue(row: Sequence[Any]) -> IssueState:
    issue = IssueState(*row)
    issue.fingerprint = _unsigned(issue.fingerprint)
    return issue


def _assign(con: Connection, pairs: list[tuple[int, ErrorEvent]]) -> None:
    """Group, create what is missing, lock, apply the rules, persist (one transaction).

    Lock order, so racing processes wait and never deadlock: release rows in key order,
    then new issue rows in key order (an INSERT waits only for another's uncommitted
    insert of the same key), then every issue of the batch in id order (``FOR UPDATE``
    sees only committed rows, so it never waits for a process still inserting)."""
    _record_releases(con, pairs)
    groups: dict[tuple[int, int], list[ErrorEvent]] = {}
    for pid, ev in pairs:
        groups.setdefault((pid, _signed(ev.issue_fingerprint)), []).append(ev)
    for evs in groups.values():
        evs.sort(key=lambda e: e.time_ns)
    by_project: dict[int, list[int]] = {}
    for pid, fp in sorted(groups):
        by_project.setdefault(pid, []).append(fp)
    seen = {
        (pid, fp)
        for p, fps in by_project.items()
        for pid, fp in con.execute(_SELECT_KEYS, [p, fps]).fetchall()
    }
    missing = [key for key in sorted(groups) if key not in seen]
    if missing:
        with con.cursor() as cur:
            cur.executemany(_INSERT_ISSUE, [_new_row(k, groups[k][0]) for k in missing])
    issues: dict[tuple[int, int], IssueState] = {}
    for p, fps in by_project.items():
        for row in con.execute(_LOCK_ISSUES, [p, fps]).fetchall():
            issues[(int(row[1]), int(row[2]))] = _issue(row)
    first_seen = _ReleaseFirstSeen(con)
    for key, evs in groups.items():
        for ev in evs:
            apply_event(issues[key], ev, first_seen)
    with con.cursor() as cur:
        cur.executemany(
            _UPDATE_ISSUE,
            [
                [*(getattr(i, c) for c in _UPDATED_COLUMNS), i.id]
                for i in sorted(issues.values(), key=lambda i: i.id)
            ],
        )


def _new_row(key: tuple[int, int], first: ErrorEvent) -> list[Any]:
    """An INSERT's values for a new issue of its first event (counted when applied)."""
    issue = new_issue(0, key[0], first)
    issue.fingerprint = key[1]
    return [getattr(issue, c) for c in _ISSUE_COLUMNS[1:]]


def _record_releases(con: Connection, pairs: list[tuple[int, ErrorEvent]]) -> None:
    """Insert the releases not seen before (first seen: the batch's oldest event)."""
    first: dict[tuple[int, str], int] = {}
    for pid, ev in pairs:
        if ev.release:
            key = (pid, ev.release)
            first[key] = min(first.get(key, ev.time_ns), ev.time_ns)
    if first:
        with con.cursor() as cur:
            cur.executemany(
                "INSERT INTO releases VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                [[pid, rel, first[(pid, rel)]] for pid, rel in sorted(first)],
            )


class _ReleaseFirstSeen:
    """When a release was first seen, read lazily (only resolved issues ask)."""

    def __init__(self, con: Connection) -> None:
        self.con = con
        self.cache: dict[tuple[int, str], int | None] = {}

    def __call__(self, project_id: int, release: str) -> int | None:
        key = (project_id, release)
        if key not in self.cache:
            row = self.con.execute(
                "SELECT first_seen_ns FROM releases WHERE project_id = %s AND release = %s",
                [project_id, release],
            ).fetchone()
            self.cache[key] = int(row[0]) if row else None
        return self.cache[key]


def _import_table(con: Connection, table: str, rows: Sequence[Sequence[object]]) -> int:
    """Insert the ``rows`` of ``table`` whose keys are absent; the number inserted."""
    columns = STATE_TABLES[table]  # KeyError for a table that is not state
    name = sql.Identifier(table)
    count = sql.SQL("SELECT count(*) FROM {}").format(name)
    before = _count(con, count)
    if table == "issues":  # the 64-bit fingerprint as the BIGINT with its bits
        at = columns.index("fingerprint")
        rows = [(*r[:at], _signed(cast(int, r[at])), *r[at + 1 :]) for r in rows]
    if rows:
        insert = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
            name,
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )
        with con.cursor() as cur:
            cur.executemany(insert, [list(r) for r in rows])
    if table in (
        "users",
        "issues",
        "dashboards",
        "alert_config",
        "alert_history",
        "notifications",
        "loadtest_runs",
    ):  # identities: the next generated id follows these
        con.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) FROM {} "
                "HAVING max(id) IS NOT NULL"
            ).format(name),
            [table],
        )
    return _count(con, count) - before


def _count(con: Connection, query: sql.Composed) -> int:
    row = con.execute(query).fetchone()
    return int(row[0]) if row else 0
