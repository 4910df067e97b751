"""SQL text alerting's state shares between its engines (DuckDB and PostgreSQL both
speak ``ON CONFLICT … DO UPDATE SET col = excluded.col``): column lists, upsert clauses
and the optional filters of the log readers, built with each engine's parameter mark.
Names come from the row dataclasses only; values are always bound parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from heron.server.store.alerting import (
    CONFIG_COLUMNS,
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
    NotificationRow,
    NotificationStatus,
    RuleStatusRow,
)

CONFIG = ", ".join(CONFIG_COLUMNS)


def _set_excluded(columns: Sequence[str]) -> str:
    return ", ".join(f"{c} = excluded.{c}" for c in columns)


# An upsert of an instance keeps the stored row's ack (only ack_alert and unack change it).
INSTANCE_UPDATE = _set_excluded(
    [c for c in INSTANCE_COLUMNS if c not in ("rule_id", "fingerprint", "acked_by", "acked_ns")]
)
RULE_STATUS_UPDATE = _set_excluded(RULE_STATUS_COLUMNS[1:])
GROUP_UPDATE = _set_excluded([c for c in GROUP_COLUMNS if c not in ("channel_id", "group_key")])


def acks(mark: str) -> str:
    """The SET clause of an ack (two parameters: by, at)."""
    return f"acked_by = {mark}, acked_ns = {mark}"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A transaction's answer: the stored version differs from the expected one."""

    current: int


@dataclass(frozen=True, slots=True)
class Taken:
    """A transaction's answer: another object has the name."""

    name: str


def duplicate_name(items: Sequence[tuple[str, str]]) -> str | None:
    """The first name that occurs twice in ``items``, if any."""
    seen: set[str] = set()
    for name, _ in items:
        if name in seen:
            return name
        seen.add(name)
    return None


def history_filters(
    mark: str, project_id: int, rule_id: int | None, fingerprint: str | None, since_ns: int
) -> tuple[str, list[Any]]:
    """WHERE conditions (without WHERE) and parameters of ``alert_history``."""
    parts = [f"project_id = {mark}", f"at_ns >= {mark}"]
    params: list[Any] = [project_id, since_ns]
    if rule_id is not None:
        parts.append(f"rule_id = {mark}")
        params.append(rule_id)
    if fingerprint is not None:
        parts.append(f"fingerprint = {mark}")
        params.append(fingerprint)
    return " AND ".join(parts), params


def notification_filters(
    mark: str,
    project_id: int,
    before_id: int | None,
    status: str | None,
    channel_id: int | None,
) -> tuple[str, list[Any]]:
    """WHERE conditions (without WHERE) and parameters of the notification log."""
    parts = [f"project_id = {mark}"]
    params: list[Any] = [project_id]
    for column, value, op in (
        ("id", before_id, "<"),
        ("status", status, "="),
        ("channel_id", channel_id, "="),
    ):
        if value is not None:
            parts.append(f"{column} {op} {mark}")
            params.append(value)
    return " AND ".join(parts), params


_NOTIFICATIONS = f"SELECT {', '.join(NOTIFICATION_COLUMNS)} FROM notifications "  # noqa: S608


class AlertReads:
    """The reading half of ``AlertStore``: the same SQL on every state backend. A backend
    names its parameter mark (``_mark``) and how it reads rows (``_rows``); statements
    here are written with ``?`` and get the backend's mark."""

    _mark = "?"

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._rows(sql.replace("?", self._mark), params)

    def list_alert_config(self, project_id: int | None, kind: ConfigKind) -> list[ConfigRow]:
        where, params = in_project(project_id, "kind = ?", [kind])
        rows = self._read(f"SELECT {CONFIG} FROM alert_config {where} ORDER BY name, id", params)  # noqa: S608
        return [ConfigRow(*r) for r in rows]

    def get_alert_config(
        self, project_id: int, kind: ConfigKind, config_id: int
    ) -> ConfigRow | None:
        rows = self._read(
            f"SELECT {CONFIG} FROM alert_config WHERE project_id = ? AND kind = ? AND id = ?",  # noqa: S608
            [project_id, kind, config_id],
        )
        return ConfigRow(*rows[0]) if rows else None

    def alert_instances(self, project_id: int | None = None) -> list[InstanceRow]:
        where, params = in_project(project_id)
        rows = self._read(
            f"SELECT {', '.join(INSTANCE_COLUMNS)} FROM alert_instances {where} "  # noqa: S608
            "ORDER BY rule_id, fingerprint",
            params,
        )
        return [InstanceRow(*r) for r in rows]

    def alert_history(
        self,
        project_id: int,
        *,
        rule_id: int | None = None,
        fingerprint: str | None = None,
        since_ns: int = 0,
        limit: int = 200,
    ) -> list[HistoryRow]:
        where, params = history_filters("?", project_id, rule_id, fingerprint, since_ns)
        rows = self._read(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM alert_history WHERE {where} "  # noqa: S608
            "ORDER BY at_ns DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        return [HistoryRow(*r) for r in rows]

    def rule_statuses(self, project_id: int | None = None) -> list[RuleStatusRow]:
        where, params = in_project(project_id)
        rows = self._read(
            f"SELECT {', '.join(RULE_STATUS_COLUMNS)} FROM alert_rule_status {where} "  # noqa: S608
            "ORDER BY rule_id",
            params,
        )
        return [RuleStatusRow(*r) for r in rows]

    def notification_groups(self, project_id: int | None = None) -> list[GroupRow]:
        where, params = in_project(project_id)
        rows = self._read(
            f"SELECT {', '.join(GROUP_COLUMNS)} FROM notification_groups {where} "  # noqa: S608
            "ORDER BY channel_id, group_key",
            params,
        )
        return [GroupRow(*r) for r in rows]

    def due_notifications(self, now_ns: int, limit: int = 100) -> list[NotificationRow]:
        rows = self._read(
            _NOTIFICATIONS + "WHERE status = 'pending' AND next_attempt_ns <= ? "
            "ORDER BY id LIMIT ?",
            [now_ns, limit],
        )
        return [NotificationRow(*r) for r in rows]

    def list_notifications(
        self,
        project_id: int,
        *,
        limit: int = 100,
        before_id: int | None = None,
        status: NotificationStatus | None = None,
        channel_id: int | None = None,
    ) -> list[NotificationRow]:
        where, params = notification_filters("?", project_id, before_id, status, channel_id)
        rows = self._read(
            _NOTIFICATIONS + f"WHERE {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [NotificationRow(*r) for r in rows]


def in_project(
    project_id: int | None, condition: str = "", params: Sequence[Any] = ()
) -> tuple[str, list[Any]]:
    """A WHERE clause (``?`` marks): ``condition`` and, unless ``project_id`` is None,
    the project."""
    parts = [condition] if condition else []
    values = list(params)
    if project_id is not None:
        parts.append("project_id = ?")
        values.append(project_id)
    return ("WHERE " + " AND ".join(parts) if parts else ""), values
