"""Alerting's state (``store/alerting.py``) in PostgreSQL, shared by every process of a
scale-out deployment; same semantics as ``store/duckdb/alerting.py``.

Where processes may race, the database decides: names are a unique key (a lost race is
``NameTaken``), instance, status and group writes are upserts on their keys, and an
evaluation's outcome locks its rules' rows (``FOR SHARE``) so a rule deleted meanwhile
is either deleted after it (cascading) or makes it drop the rule's rows — never leaves
instances of a rule that no longer exists. Replacing a source's objects is serialised
per project and kind by a transaction-scoped advisory lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import errors

from heron.server.store._alerting_sql import (
    CONFIG,
    GROUP_UPDATE,
    INSTANCE_UPDATE,
    RULE_STATUS_UPDATE,
    AlertReads,
    Conflict,
    Taken,
    acks,
    duplicate_name,
)
from heron.server.store.alerting import (
    GROUP_COLUMNS,
    HISTORY_COLUMNS,
    INSTANCE_COLUMNS,
    NOTIFICATION_COLUMNS,
    RULE_STATUS_COLUMNS,
    ConfigKind,
    ConfigRow,
    GroupRow,
    HistoryRow,
    InstanceRow,
    NameTaken,
    NotificationRow,
    NotificationStatus,
    RuleStatusRow,
)
from heron.server.store.postgres._pool import Connection, Pool
from heron.server.store.state import VersionConflict

_M = "%s"


def _marks(n: int) -> str:
    return ", ".join([_M] * n)


# Column names come from the row dataclasses; no value is ever formatted into SQL.
_INSERT_CONFIG = (
    "INSERT INTO alert_config (project_id, kind, name, source, spec, version, created_ns, "  # noqa: S608
    "updated_ns) VALUES (%s, %s, %s, %s, %s, 1, %s, %s) "
    f"ON CONFLICT (project_id, kind, name) DO NOTHING RETURNING {CONFIG}"
)
# Replacing a source: a name another transaction took meanwhile fails the statement.
_ADD_CONFIG = _INSERT_CONFIG.replace(" ON CONFLICT (project_id, kind, name) DO NOTHING", "")
_UPDATE_CONFIG = (
    "UPDATE alert_config SET name = %s, spec = %s, version = version + 1, updated_ns = %s "  # noqa: S608
    f"WHERE id = %s RETURNING {CONFIG}"
)
_UPSERT_INSTANCE = (
    f"INSERT INTO alert_instances ({', '.join(INSTANCE_COLUMNS)}) "  # noqa: S608
    f"VALUES ({_marks(len(INSTANCE_COLUMNS))}) "
    f"ON CONFLICT (rule_id, fingerprint) DO UPDATE SET {INSTANCE_UPDATE}"
)
_INSERT_HISTORY = (
    f"INSERT INTO alert_history ({', '.join(HISTORY_COLUMNS[1:])}) "  # noqa: S608
    f"VALUES ({_marks(len(HISTORY_COLUMNS) - 1)})"
)
_UPSERT_STATUS = (
    f"INSERT INTO alert_rule_status ({', '.join(RULE_STATUS_COLUMNS)}) "  # noqa: S608
    f"VALUES ({_marks(len(RULE_STATUS_COLUMNS))}) "
    f"ON CONFLICT (rule_id) DO UPDATE SET {RULE_STATUS_UPDATE}"
)
_UPSERT_GROUP = (
    f"INSERT INTO notification_groups ({', '.join(GROUP_COLUMNS)}) "  # noqa: S608
    f"VALUES ({_marks(len(GROUP_COLUMNS))}) "
    f"ON CONFLICT (channel_id, group_key) DO UPDATE SET {GROUP_UPDATE}"
)
_INSERT_NOTIFICATION = (
    f"INSERT INTO notifications ({', '.join(NOTIFICATION_COLUMNS[1:])}) "  # noqa: S608
    f"VALUES ({_marks(len(NOTIFICATION_COLUMNS) - 1)}) RETURNING id"
)
_UNACK = f"UPDATE alert_instances SET {acks(_M)} WHERE rule_id = %s AND fingerprint = %s"  # noqa: S608
# Taken when free, expired or already ours; the statement decides, so racers cannot both win.
_CLAIM = (
    "INSERT INTO alert_lease VALUES ('alerting', %s, %s) ON CONFLICT (name) DO UPDATE "
    "SET holder = excluded.holder, expires_ns = excluded.expires_ns "
    "WHERE alert_lease.holder = excluded.holder OR alert_lease.expires_ns <= %s "
    "RETURNING holder"
)


class PostgresAlerts(AlertReads):
    """Implements ``store.alerting.AlertStore`` on PostgreSQL (a part of
    ``PostgresState``)."""

    _pool: Pool
    _mark = "%s"

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._pool.read(sql, params)
        return rows

    # ------------------------------------------------- rules, channels, silences, SLOs

    def create_alert_config(
        self, project_id: int, kind: ConfigKind, name: str, spec: str, source: str, now_ns: int
    ) -> ConfigRow:
        def run(con: Connection) -> ConfigRow | None:
            params = [project_id, kind, name, source, spec, now_ns, now_ns]
            row = con.execute(_INSERT_CONFIG, params).fetchone()
            return ConfigRow(*row) if row else None

        created = self._pool.transaction(run)
        if created is None:
            raise NameTaken(kind, name)
        return created

    def update_alert_config(
        self,
        project_id: int,
        kind: ConfigKind,
        config_id: int,
        name: str,
        spec: str,
        now_ns: int,
        expected_version: int | None = None,
    ) -> ConfigRow | None:
        def run(con: Connection) -> ConfigRow | Conflict | Taken | None:
            # The row lock makes a concurrent update wait, then see the new version.
            found = con.execute(
                "SELECT version FROM alert_config "
                "WHERE project_id = %s AND kind = %s AND id = %s FOR UPDATE",
                [project_id, kind, config_id],
            ).fetchone()
            if found is None:
                return None
            if expected_version is not None and found[0] != expected_version:
                return Conflict(int(found[0]))
            try:
                row = con.execute(_UPDATE_CONFIG, [name, spec, now_ns, config_id]).fetchone()
            except errors.UniqueViolation:  # rolls the transaction back
                raise NameTaken(kind, name) from None
            return ConfigRow(*row) if row else None

        result = self._pool.transaction(run)
        if isinstance(result, Conflict):
            raise VersionConflict(result.current)
        if isinstance(result, Taken):
            raise NameTaken(kind, result.name)
        return result

    def delete_alert_config(self, project_id: int, kind: ConfigKind, config_id: int) -> bool:
        def run(con: Connection) -> bool:
            gone = con.execute(
                "DELETE FROM alert_config WHERE project_id = %s AND kind = %s AND id = %s "
                "RETURNING id",
                [project_id, kind, config_id],
            ).fetchall()
            _cascade(con, kind, [config_id] if gone else [])
            return bool(gone)

        return self._pool.transaction(run)

    def replace_alert_config_source(
        self,
        project_id: int,
        kind: ConfigKind,
        source: str,
        items: Sequence[tuple[str, str]],
        now_ns: int,
    ) -> list[ConfigRow]:
        if (dup := duplicate_name(items)) is not None:
            raise NameTaken(kind, dup)
        wanted = dict(items)

        # NameTaken raised inside rolls the transaction back: nothing changes.

        def run(con: Connection) -> list[ConfigRow] | Taken:
            con.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                [f"heron.alert_config.{project_id}.{kind}"],
            )
            return _replace(con, project_id, kind, source, wanted, now_ns)

        result = self._pool.transaction(run)
        if isinstance(result, Taken):
            raise NameTaken(kind, result.name)
        return result

    # ------------------------------------------------------------ evaluation state

    def save_evaluation(
        self,
        upserts: Sequence[InstanceRow],
        deletes: Sequence[tuple[int, str]],
        history: Sequence[HistoryRow],
        statuses: Sequence[RuleStatusRow],
        unack: Sequence[tuple[int, str]] = (),
    ) -> None:
        def run(con: Connection) -> None:
            live = _lock_rules(con, {r.rule_id for r in upserts} | {s.rule_id for s in statuses})
            # Key order, so two writers of the same instances cannot deadlock.
            ordered = sorted(upserts, key=lambda r: (r.rule_id, r.fingerprint))
            _many(
                con,
                _UPSERT_INSTANCE,
                [_values(r, INSTANCE_COLUMNS) for r in ordered if r.rule_id in live],
            )
            _many(
                con,
                "DELETE FROM alert_instances WHERE rule_id = %s AND fingerprint = %s",
                [list(d) for d in sorted(deletes)],
            )
            _many(con, _INSERT_HISTORY, [_values(h, HISTORY_COLUMNS[1:]) for h in history])
            rows = [_values(s, RULE_STATUS_COLUMNS) for s in statuses if s.rule_id in live]
            _many(con, _UPSERT_STATUS, sorted(rows))
            _many(con, _UNACK, [["", 0, *u] for u in sorted(unack)])

        self._pool.transaction(run)

    def ack_alert(
        self, project_id: int, rule_id: int, fingerprint: str, by: str, now_ns: int
    ) -> bool:
        def run(con: Connection) -> bool:
            row = con.execute(
                f"UPDATE alert_instances SET {acks(_M)} "  # noqa: S608
                "WHERE project_id = %s AND rule_id = %s AND fingerprint = %s RETURNING rule_id",
                [by, now_ns, project_id, rule_id, fingerprint],
            ).fetchone()
            return row is not None

        return self._pool.transaction(run)

    # --------------------------------------------------------------- notifications

    def save_dispatch(
        self,
        groups: Sequence[GroupRow],
        delete_groups: Sequence[tuple[int, str]],
        notifications: Sequence[NotificationRow],
    ) -> list[int]:
        def run(con: Connection) -> list[int]:
            ordered = sorted(groups, key=lambda g: (g.channel_id, g.group_key))
            _many(con, _UPSERT_GROUP, [_values(g, GROUP_COLUMNS) for g in ordered])
            _many(
                con,
                "DELETE FROM notification_groups WHERE channel_id = %s AND group_key = %s",
                [list(d) for d in sorted(delete_groups)],
            )
            ids = []
            for n in notifications:
                row = con.execute(_INSERT_NOTIFICATION, _values(n, NOTIFICATION_COLUMNS[1:]))
                ids.append(int(_first(row.fetchone())))
            return ids

        return self._pool.transaction(run)

    def finish_attempt(
        self,
        notification_id: int,
        *,
        status: NotificationStatus,
        attempts: int,
        next_attempt_ns: int,
        last_error: str,
        sent_ns: int,
    ) -> None:
        self._pool.transaction(
            lambda con: con.execute(
                "UPDATE notifications SET status = %s, attempts = %s, next_attempt_ns = %s, "
                "last_error = %s, sent_ns = %s WHERE id = %s",
                [status, attempts, next_attempt_ns, last_error, sent_ns, notification_id],
            )
        )

    def claim_alerting(self, holder: str, now_ns: int, ttl_ns: int) -> bool:
        def run(con: Connection) -> bool:
            return con.execute(_CLAIM, [holder, now_ns + ttl_ns, now_ns]).fetchone() is not None

        return self._pool.transaction(run)

    def prune_alerting(self, before_ns: int) -> int:
        def run(con: Connection) -> int:
            history = con.execute("DELETE FROM alert_history WHERE at_ns < %s", [before_ns])
            sent = con.execute(
                "DELETE FROM notifications WHERE status IN ('sent', 'failed') AND created_ns < %s",
                [before_ns],
            )
            return history.rowcount + sent.rowcount

        return self._pool.transaction(run)


def _replace(
    con: Connection,
    project_id: int,
    kind: ConfigKind,
    source: str,
    wanted: dict[str, str],
    now_ns: int,
) -> list[ConfigRow] | Taken:
    """``replace_alert_config_source``'s transaction (under its lock)."""
    stored = {
        str(name): (int(cid), str(src), str(spec))
        for cid, name, src, spec in con.execute(
            "SELECT id, name, source, spec FROM alert_config "
            "WHERE project_id = %s AND kind = %s ORDER BY id FOR UPDATE",
            [project_id, kind],
        ).fetchall()
    }
    for name in wanted:
        if name in stored and stored[name][1] != source:
            return Taken(name)
    stale = [cid for name, (cid, src, _) in stored.items() if src == source and name not in wanted]
    if stale:
        con.execute("DELETE FROM alert_config WHERE id = ANY(%s::BIGINT[])", [stale])
        _cascade(con, kind, stale)
    for name, spec in wanted.items():
        if name not in stored:
            try:
                con.execute(_ADD_CONFIG, [project_id, kind, name, source, spec, now_ns, now_ns])
            except errors.UniqueViolation:  # created meanwhile; rolls everything back
                raise NameTaken(kind, name) from None
        elif stored[name][2] != spec:
            con.execute(_UPDATE_CONFIG, [name, spec, now_ns, stored[name][0]])
    rows = con.execute(
        f"SELECT {CONFIG} FROM alert_config "  # noqa: S608
        "WHERE project_id = %s AND kind = %s AND source = %s ORDER BY name, id",
        [project_id, kind, source],
    ).fetchall()
    return [ConfigRow(*r) for r in rows]


def _cascade(con: Connection, kind: str, config_ids: list[int]) -> None:
    """What goes with deleted objects: a rule's instances and status, a channel's
    notification groups (history and the notification log stay)."""
    if not config_ids:
        return
    if kind == "rule":
        con.execute("DELETE FROM alert_instances WHERE rule_id = ANY(%s::BIGINT[])", [config_ids])
        con.execute("DELETE FROM alert_rule_status WHERE rule_id = ANY(%s::BIGINT[])", [config_ids])
    elif kind == "channel":
        con.execute(
            "DELETE FROM notification_groups WHERE channel_id = ANY(%s::BIGINT[])", [config_ids]
        )


def _lock_rules(con: Connection, rule_ids: set[int]) -> set[int]:
    """The rules of ``rule_ids`` that exist, locked against deletion until commit."""
    if not rule_ids:
        return set()
    rows = con.execute(
        "SELECT id FROM alert_config WHERE kind = 'rule' AND id = ANY(%s::BIGINT[]) "
        "ORDER BY id FOR SHARE",
        [sorted(rule_ids)],
    ).fetchall()
    return {int(r[0]) for r in rows}


def _values(row: object, columns: Sequence[str]) -> list[Any]:
    return [getattr(row, c) for c in columns]


def _many(con: Connection, statement: str, rows: list[list[Any]]) -> None:
    if rows:
        with con.cursor() as cur:
            cur.executemany(statement, rows)


def _first(row: tuple[Any, ...] | None) -> Any:
    if row is None:
        raise LookupError("expected a row")
    return row[0]
