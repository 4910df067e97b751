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
    INSTANCE_COLUMNS,
    RULE_STATUS_COLUMNS,
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
