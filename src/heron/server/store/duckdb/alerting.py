"""DuckDB statements for alerting's state (``store/alerting.py``): rules, channels,
silences and SLOs, alert instances and their history, rule health, notification groups
and the outbox. Every change runs on the writer thread, one transaction each, so checks
and writes cannot interleave with another change. Outcomes the caller expects (a taken
name, a version conflict) are answered from the transaction and raised after it: the
writer logs exceptions as failures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

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
from heron.server.store.duckdb._sql import SqlReads
from heron.server.store.state import VersionConflict

_MARKS = "?"
# Column names come from the row dataclasses; no value is ever formatted into SQL.
_INSERT_CONFIG = (
    "INSERT INTO alert_config (project_id, kind, name, source, spec, version, created_ns, "  # noqa: S608
    f"updated_ns) VALUES (?, ?, ?, ?, ?, 1, ?, ?) RETURNING {CONFIG}"
)
_UPDATE_CONFIG = (
    "UPDATE alert_config SET name = ?, spec = ?, version = version + 1, updated_ns = ? "  # noqa: S608
    f"WHERE id = ? RETURNING {CONFIG}"
)
_UPSERT_INSTANCE = (
    f"INSERT INTO alert_instances ({', '.join(INSTANCE_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(INSTANCE_COLUMNS))}) "
    f"ON CONFLICT (rule_id, fingerprint) DO UPDATE SET {INSTANCE_UPDATE}"
)
_INSERT_HISTORY = (
    f"INSERT INTO alert_history ({', '.join(HISTORY_COLUMNS[1:])}) "  # noqa: S608
    f"VALUES ({', '.join('?' * (len(HISTORY_COLUMNS) - 1))})"
)
_UPSERT_STATUS = (
    f"INSERT INTO alert_rule_status ({', '.join(RULE_STATUS_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(RULE_STATUS_COLUMNS))}) "
    f"ON CONFLICT (rule_id) DO UPDATE SET {RULE_STATUS_UPDATE}"
)
_UPSERT_GROUP = (
    f"INSERT INTO notification_groups ({', '.join(GROUP_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(GROUP_COLUMNS))}) "
    f"ON CONFLICT (channel_id, group_key) DO UPDATE SET {GROUP_UPDATE}"
)
_INSERT_NOTIFICATION = (
    f"INSERT INTO notifications ({', '.join(NOTIFICATION_COLUMNS[1:])}) "  # noqa: S608
    f"VALUES ({', '.join('?' * (len(NOTIFICATION_COLUMNS) - 1))}) RETURNING id"
)
# Taken when free, expired or already ours; the statement decides, so racers cannot both win.
_CLAIM = (
    "INSERT INTO alert_lease VALUES ('alerting', ?, ?) ON CONFLICT (name) DO UPDATE "
    "SET holder = excluded.holder, expires_ns = excluded.expires_ns "
    "WHERE alert_lease.holder = excluded.holder OR alert_lease.expires_ns <= ? "
    "RETURNING holder"
)


class DuckDBAlerts(AlertReads):
    """Implements ``store.alerting.AlertStore`` on DuckDB (a part of ``DuckDBState``)."""

    sql: SqlReads

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.sql.read(sql, params)
        return rows

    # ------------------------------------------------- rules, channels, silences, SLOs

    def create_alert_config(
        self, project_id: int, kind: ConfigKind, name: str, spec: str, source: str, now_ns: int
    ) -> ConfigRow:
        def run(con: Any) -> ConfigRow | None:
            if _owner(con, project_id, kind, name) is not None:
                return None
            params = [project_id, kind, name, source, spec, now_ns, now_ns]
            return ConfigRow(*con.execute(_INSERT_CONFIG, params).fetchone())

        row: ConfigRow | None = self.sql.write(run)
        if row is None:
            raise NameTaken(kind, name)
        return row

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
        def run(con: Any) -> ConfigRow | Conflict | Taken | None:
            found = con.execute(
                "SELECT version FROM alert_config WHERE project_id = ? AND kind = ? AND id = ?",
                [project_id, kind, config_id],
            ).fetchone()
            if found is None:
                return None
            if expected_version is not None and found[0] != expected_version:
                return Conflict(int(found[0]))
            if _owner(con, project_id, kind, name) not in (None, config_id):
                return Taken(name)
            row = con.execute(_UPDATE_CONFIG, [name, spec, now_ns, config_id]).fetchone()
            return ConfigRow(*row)

        result: ConfigRow | Conflict | Taken | None = self.sql.write(run)
        return _raise_outcome(result, kind)

    def delete_alert_config(self, project_id: int, kind: ConfigKind, config_id: int) -> bool:
        def run(con: Any) -> bool:
            gone = con.execute(
                "DELETE FROM alert_config WHERE project_id = ? AND kind = ? AND id = ? "
                "RETURNING id",
                [project_id, kind, config_id],
            ).fetchall()
            _cascade(con, kind, [config_id] if gone else [])
            return bool(gone)

        deleted: bool = self.sql.write(run)
        return deleted

    def replace_alert_config_source(
        self,
        project_id: int,
        kind: ConfigKind,
        source: str,
        items: Sequence[tuple[str, str]],
        now_ns: int,
    ) -> list[ConfigRow]:
        wanted = dict(items)
        if (dup := duplicate_name(items)) is not None:
            raise NameTaken(kind, dup)

        def run(con: Any) -> list[ConfigRow] | Taken:
            stored = {
                name: (cid, src, spec)
                for cid, name, src, spec in con.execute(
                    "SELECT id, name, source, spec FROM alert_config "
                    "WHERE project_id = ? AND kind = ?",
                    [project_id, kind],
                ).fetchall()
            }
            for name in wanted:
                if name in stored and stored[name][1] != source:
                    return Taken(name)
            stale = [
                cid
                for name, (cid, src, _) in stored.items()
                if src == source and name not in wanted
            ]
            if stale:
                con.execute(
                    "DELETE FROM alert_config WHERE list_contains(?::BIGINT[], id)", [stale]
                )
                _cascade(con, kind, stale)
            for name, spec in wanted.items():
                if name not in stored:
                    params = [project_id, kind, name, source, spec, now_ns, now_ns]
                    con.execute(_INSERT_CONFIG, params)
                elif stored[name][2] != spec:
                    con.execute(_UPDATE_CONFIG, [name, spec, now_ns, stored[name][0]])
            rows = con.execute(
                f"SELECT {CONFIG} FROM alert_config "  # noqa: S608
                "WHERE project_id = ? AND kind = ? AND source = ? ORDER BY name, id",
                [project_id, kind, source],
            ).fetchall()
            return [ConfigRow(*r) for r in rows]

        result: list[ConfigRow] | Taken = self.sql.write(run)
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
        def run(con: Any) -> None:
            # A rule deleted while it was being evaluated stays deleted: its outcome is
            # dropped instead of bringing back instances nothing would clean up.
            live = _live_rules(con, {r.rule_id for r in upserts} | {s.rule_id for s in statuses})
            rows = [_values(r, INSTANCE_COLUMNS) for r in upserts if r.rule_id in live]
            _many(con, _UPSERT_INSTANCE, rows)
            _delete_keys(con, "alert_instances", deletes)
            _many(con, _INSERT_HISTORY, [_values(h, HISTORY_COLUMNS[1:]) for h in history])
            statuses_live = [_values(s, RULE_STATUS_COLUMNS) for s in statuses if s.rule_id in live]
            _many(con, _UPSERT_STATUS, statuses_live)
            _delete_keys(con, "alert_instances", unack, set_="acked_by = '', acked_ns = 0")

        self.sql.write(run)

    def ack_alert(
        self, project_id: int, rule_id: int, fingerprint: str, by: str, now_ns: int
    ) -> bool:
        def run(con: Any) -> bool:
            return bool(
                con.execute(
                    f"UPDATE alert_instances SET {acks(_MARKS)} "  # noqa: S608
                    "WHERE project_id = ? AND rule_id = ? AND fingerprint = ? RETURNING rule_id",
                    [by, now_ns, project_id, rule_id, fingerprint],
                ).fetchall()
            )

        acked: bool = self.sql.write(run)
        return acked

    # --------------------------------------------------------------- notifications

    def save_dispatch(
        self,
        groups: Sequence[GroupRow],
        delete_groups: Sequence[tuple[int, str]],
        notifications: Sequence[NotificationRow],
    ) -> list[int]:
        def run(con: Any) -> list[int]:
            _many(con, _UPSERT_GROUP, [_values(g, GROUP_COLUMNS) for g in groups])
            _delete_keys(con, "notification_groups", delete_groups)
            # One statement each: executemany does not return RETURNING rows.
            return [
                int(
                    con.execute(
                        _INSERT_NOTIFICATION, _values(n, NOTIFICATION_COLUMNS[1:])
                    ).fetchone()[0]
                )
                for n in notifications
            ]

        ids: list[int] = self.sql.write(run)
        return ids

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
        self.sql.write(
            lambda con: con.execute(
                "UPDATE notifications SET status = ?, attempts = ?, next_attempt_ns = ?, "
                "last_error = ?, sent_ns = ? WHERE id = ?",
                [status, attempts, next_attempt_ns, last_error, sent_ns, notification_id],
            )
        )

    def claim_alerting(self, holder: str, now_ns: int, ttl_ns: int) -> bool:
        def run(con: Any) -> bool:
            return bool(con.execute(_CLAIM, [holder, now_ns + ttl_ns, now_ns]).fetchall())

        claimed: bool = self.sql.write(run)
        return claimed

    def prune_alerting(self, before_ns: int) -> int:
        def run(con: Any) -> int:
            history = con.execute("DELETE FROM alert_history WHERE at_ns < ?", [before_ns])
            deleted = int(history.fetchone()[0])
            sent = con.execute(
                "DELETE FROM notifications WHERE status IN ('sent', 'failed') AND created_ns < ?",
                [before_ns],
            )
            return deleted + int(sent.fetchone()[0])

        pruned: int = self.sql.write(run)
        return pruned


def _owner(con: Any, project_id: int, kind: str, name: str) -> int | None:
    """The id of the project's object of ``kind`` named ``name``, if any."""
    row = con.execute(
        "SELECT id FROM alert_config WHERE project_id = ? AND kind = ? AND name = ?",
        [project_id, kind, name],
    ).fetchone()
    return int(row[0]) if row else None


def _cascade(con: Any, kind: str, config_ids: list[int]) -> None:
    """What goes with deleted objects: a rule's instances and status, a channel's
    notification groups (history and the notification log stay)."""
    if not config_ids:
        return
    if kind == "rule":
        for table in ("alert_instances", "alert_rule_status"):
            con.execute(
                f"DELETE FROM {table} WHERE list_contains(?::BIGINT[], rule_id)",  # noqa: S608
                [config_ids],
            )
    elif kind == "channel":
        con.execute(
            "DELETE FROM notification_groups WHERE list_contains(?::BIGINT[], channel_id)",
            [config_ids],
        )


def _live_rules(con: Any, rule_ids: set[int]) -> set[int]:
    if not rule_ids:
        return set()
    rows = con.execute(
        "SELECT id FROM alert_config WHERE kind = 'rule' AND list_contains(?::BIGINT[], id)",
        [sorted(rule_ids)],
    ).fetchall()
    return {int(r[0]) for r in rows}


def _values(row: object, columns: Sequence[str]) -> list[Any]:
    return [getattr(row, c) for c in columns]


def _many(con: Any, statement: str, rows: list[list[Any]]) -> None:
    """Run an ``INSERT ... VALUES (?, ...) [ON CONFLICT ...]`` for every row in one
    statement: the rows go in as an Arrow table (values stay data, never SQL text).
    DuckDB's ``executemany`` costs ~2.5 ms a row, and even multi-row VALUES made the
    first cycle of a 1,000-rule evaluation (5,000 new instances) spend 1.5 s saving."""
    if not rows:
        return
    at = statement.index(" VALUES (")
    columns = statement[statement.index("(") + 1 : statement.index(")")].split(", ")
    tail = statement[statement.index(")", at) + 1 :]
    with _registered(con, columns, rows) as name:
        con.execute(f"{statement[:at]} SELECT * FROM {name}{tail}")  # noqa: S608


def _delete_keys(con: Any, table: str, keys: Sequence[tuple[int, str]], set_: str = "") -> None:
    """Delete (or, with ``set_``, update) the rows of ``table`` keyed by ``(rule_id,
    fingerprint)`` or ``(channel_id, group_key)`` pairs, in one statement."""
    if not keys:
        return
    a, b = (
        ("channel_id", "group_key")
        if table == "notification_groups"
        else ("rule_id", "fingerprint")
    )
    with _registered(con, ["k1", "k2"], [list(k) for k in keys]) as name:
        match = f"{table}.{a} = {name}.k1 AND {table}.{b} = {name}.k2"
        if set_:
            con.execute(f"UPDATE {table} SET {set_} FROM {name} WHERE {match}")  # noqa: S608
        else:
            con.execute(f"DELETE FROM {table} USING {name} WHERE {match}")  # noqa: S608


@contextmanager
def _registered(con: Any, columns: list[str], rows: list[list[Any]]) -> Iterator[str]:
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    name = "_alert_rows"
    con.register(name, table)
    try:
        yield name
    finally:
        con.unregister(name)


def _raise_outcome(result: ConfigRow | Conflict | Taken | None, kind: str) -> ConfigRow | None:
    """The row, or raise the expected outcome the transaction answered with."""
    if isinstance(result, Conflict):
        raise VersionConflict(result.current)
    if isinstance(result, Taken):
        raise NameTaken(kind, result.name)
    return result
