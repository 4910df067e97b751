"""What the JSON API and the UI call to read and change alerting: rules, alerts, history,
silences, channels, the notification log and SLOs.

Every change is validated here (``model/alerting.py`` parses, this module checks the
references between objects: a rule's channels exist, a channel in use is not renamed or
deleted), so the API and the UI refuse the same things with the same messages. Rules owned
by a file (``file:<name>``) or an SLO (``slo:<id>``) are read-only (:class:`ReadOnly`); the
starter set (``starter``) may be edited and disabled but not deleted, so it is created
once per project and never comes back unasked. Secrets of channels never leave this module
unmasked: a client that sends the mask back keeps the stored value.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from heron.server.alerting._channels import (
    Channel,
    channel_users,
    create_channel,
    delete_channel,
    get_channel,
    list_channels,
    test_channel,
    update_channel,
)
from heron.server.alerting._common import ChannelInUse, ReadOnly
from heron.server.alerting._slos import (
    Slo,
    create_slo,
    delete_slo,
    get_slo,
    list_slos,
    slo_state,
    update_slo,
)
from heron.server.alerting.notify.dispatch import muted
from heron.server.model.alerting import (
    RuleSpec,
    SilenceSpec,
    SpecError,
    parse_rule,
    parse_silence,
)
from heron.server.store.alerting import ConfigRow, HistoryRow, NotificationRow, RuleStatusRow
from heron.server.store.base import Store

__all__ = [
    "Alert",
    "Channel",
    "ChannelInUse",
    "History",
    "Notification",
    "ReadOnly",
    "Rule",
    "Silence",
    "Slo",
    "ack_alert",
    "alert_history",
    "channel_users",
    "create_channel",
    "create_rule",
    "create_silence",
    "create_slo",
    "delete_channel",
    "delete_rule",
    "delete_slo",
    "expire_silence",
    "get_channel",
    "get_rule",
    "get_silence",
    "get_slo",
    "list_alerts",
    "list_channels",
    "list_notifications",
    "list_rules",
    "list_silences",
    "list_slos",
    "set_rule_enabled",
    "slo_state",
    "test_channel",
    "update_channel",
    "update_rule",
    "update_silence",
    "update_slo",
]

EDITABLE_SOURCES = ("api", "starter")
"""Sources whose rules the API and UI may change (``starter`` ones are not deleted)."""


# ----------------------------------------------------------------------------- rules
@dataclass(frozen=True, slots=True)
class Rule:
    """A stored rule with its last evaluation (``status``; None: not evaluated yet).
    ``missing_channels``: names in ``channels``/``escalate_to`` no channel has (rules from
    files may name channels that do not exist; the dispatcher skips them)."""

    id: int
    name: str
    source: str
    spec: RuleSpec
    version: int
    created_ns: int
    updated_ns: int
    status: RuleStatusRow | None
    missing_channels: list[str] = field(default_factory=list)

    @property
    def read_only(self) -> bool:
        return self.source not in EDITABLE_SOURCES

    @property
    def broken(self) -> str:
        """Why the rule failed at its last evaluation ('' = healthy or not evaluated)."""
        return self.status.error if self.status else ""


def _rule(
    row: ConfigRow, status: RuleStatusRow | None, channel_names: set[str] | None = None
) -> Rule:
    spec = RuleSpec.model_validate_json(row.spec)
    missing = []
    if channel_names is not None:
        missing = [n for n in [*spec.channels, *spec.escalate_to] if n not in channel_names]
    return Rule(
        row.id,
        row.name,
        row.source,
        spec,
        row.version,
        row.created_ns,
        row.updated_ns,
        status,
        list(dict.fromkeys(missing)),
    )


def _channel_names(store: Store, project_id: int) -> set[str]:
    return {r.name for r in store.state.list_alert_config(project_id, "channel")}


def _statuses(store: Store, project_id: int) -> dict[int, RuleStatusRow]:
    return {s.rule_id: s for s in store.state.rule_statuses(project_id)}


def list_rules(store: Store, project_id: int) -> list[Rule]:
    """The project's rules by name, each with its status and missing channels."""
    statuses = _statuses(store, project_id)
    names = _channel_names(store, project_id)
    rows = store.state.list_alert_config(project_id, "rule")
    return [_rule(r, statuses.get(r.id), names) for r in rows]


def get_rule(store: Store, project_id: int, rule_id: int) -> Rule | None:
    row = store.state.get_alert_config(project_id, "rule", rule_id)
    if row is None:
        return None
    return _rule(row, _statuses(store, project_id).get(rule_id), _channel_names(store, project_id))


def check_rule_refs(store: Store, project_id: int, spec: RuleSpec) -> None:
    """Refuse a rule naming a channel or an SLO that does not exist (SpecError → 400)."""
    names = _channel_names(store, project_id)
    for where, values in (("channels", spec.channels), ("escalate_to", spec.escalate_to)):
        for i, name in enumerate(values):
            if name not in names:
                raise SpecError(f"invalid rule: {where}.{i}: no channel named {name!r}")
    cond = spec.condition
    if cond.kind == "slo_burn" and (
        store.state.get_alert_config(project_id, "slo", cond.slo_id) is None
    ):
        raise SpecError(f"invalid rule: condition.slo_id: no SLO with id {cond.slo_id}")


def create_rule(store: Store, project_id: int, data: Any, now_ns: int) -> Rule:
    """Validate and store a new rule (source ``api``). Raises SpecError, NameTaken."""
    spec = parse_rule(data)
    check_rule_refs(store, project_id, spec)
    row = store.state.create_alert_config(
        project_id, "rule", spec.name, spec.to_json(), "api", now_ns
    )
    return _rule(row, None, _channel_names(store, project_id))


def _editable(store: Store, project_id: int, rule_id: int) -> ConfigRow | None:
    row = store.state.get_alert_config(project_id, "rule", rule_id)
    if row is not None and row.source not in EDITABLE_SOURCES:
        raise ReadOnly(_owner_text(row))
    return row


def _owner_text(row: ConfigRow) -> str:
    if row.source.startswith("slo:"):
        return f"rule {row.name!r} is generated from SLO {row.source[4:]}: change the SLO instead"
    origin = row.source.partition(":")[2] or row.source
    return f"rule {row.name!r} comes from the rule file {origin!r}: change the file and reload"


def update_rule(
    store: Store,
    project_id: int,
    rule_id: int,
    data: Any,
    now_ns: int,
    expected_version: int | None = None,
) -> Rule | None:
    """Replace a rule (None: no such rule). Raises SpecError, NameTaken, ReadOnly and
    VersionConflict (when ``expected_version`` is stale)."""
    if _editable(store, project_id, rule_id) is None:
        return None
    spec = parse_rule(data)
    check_rule_refs(store, project_id, spec)
    return _save_rule(store, project_id, rule_id, spec, now_ns, expected_version)


def _save_rule(
    store: Store,
    project_id: int,
    rule_id: int,
    spec: RuleSpec,
    now_ns: int,
    expected_version: int | None,
) -> Rule | None:
    row = store.state.update_alert_config(
        project_id, "rule", rule_id, spec.name, spec.to_json(), now_ns, expected_version
    )
    if row is None:
        return None
    return _rule(row, _statuses(store, project_id).get(rule_id), _channel_names(store, project_id))


def set_rule_enabled(
    store: Store, project_id: int, rule_id: int, enabled: bool, now_ns: int
) -> Rule | None:
    """Enable or disable a rule (api or starter rules; ReadOnly otherwise)."""
    row = _editable(store, project_id, rule_id)
    if row is None:
        return None
    spec = RuleSpec.model_validate_json(row.spec).model_copy(update={"enabled": enabled})
    return _save_rule(store, project_id, rule_id, spec, now_ns, None)


def delete_rule(store: Store, project_id: int, rule_id: int) -> bool:
    """Delete a rule with its instances (False: no such rule). Raises ReadOnly for file
    and SLO rules, and for starter rules (disable those)."""
    row = _editable(store, project_id, rule_id)
    if row is None:
        return False
    if row.source == "starter":
        raise ReadOnly(f"rule {row.name!r} is a starter rule: disable it instead of deleting it")
    return store.state.delete_alert_config(project_id, "rule", rule_id)


# ---------------------------------------------------------------------------- alerts
@dataclass(frozen=True, slots=True)
class Alert:
    """An alert instance as shown: ``muted`` says why no notification goes out for it
    ('' = none: "silenced by …" or "inhibited by …"); ``link`` is the Heron page of the
    instance (a path, or a URL when ``public_url`` is set)."""

    rule_id: int
    rule_name: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    severity: str
    value: float | None
    active_since_ns: int
    fired_ns: int
    resolved_ns: int
    acked_by: str
    acked_ns: int
    muted: str
    link: str


_STATE_ORDER = {"firing": 0, "pending": 1, "resolved": 2}
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def list_alerts(
    store: Store, project_id: int, now_ns: int, states: list[str] | None = None
) -> list[Alert]:
    """The project's alert instances, firing first, then by severity and age; ``states``
    keeps only those states (pending, firing, resolved)."""
    rules = store.state.list_alert_config(project_id, "rule")
    by_id = {r.id: r for r in rules}
    instances = [
        i
        for i in store.state.alert_instances(project_id)
        if i.rule_id in by_id and (states is None or i.state in states)
    ]
    silences = store.state.list_alert_config(project_id, "silence")
    mutes = muted(instances, rules, silences, now_ns)
    alerts = []
    for inst in instances:
        labels = json.loads(inst.labels)
        annotations = json.loads(inst.annotations)
        alerts.append(
            Alert(
                inst.rule_id,
                by_id[inst.rule_id].name,
                inst.fingerprint,
                labels,
                annotations,
                inst.state,
                labels.get("severity", ""),
                inst.value,
                inst.active_since_ns,
                inst.fired_ns,
                inst.resolved_ns,
                inst.acked_by,
                inst.acked_ns,
                mutes.get((inst.rule_id, inst.fingerprint), ""),
                str(annotations.get("link", "")),
            )
        )
    alerts.sort(
        key=lambda a: (
            _STATE_ORDER.get(a.state, 3),
            _SEVERITY_ORDER.get(a.severity, 3),
            a.active_since_ns,
            a.rule_name,
            a.fingerprint,
        )
    )
    return alerts


def ack_alert(
    store: Store, project_id: int, rule_id: int, fingerprint: str, user: str, now_ns: int
) -> bool:
    """Acknowledge an instance (stops its escalation); False: no such instance."""
    return store.state.ack_alert(project_id, rule_id, fingerprint, user, now_ns)


@dataclass(frozen=True, slots=True)
class History:
    """A state change of an instance, with its rule's name ('' once the rule is gone)."""

    id: int
    rule_id: int
    rule_name: str
    fingerprint: str
    labels: dict[str, str]
    state: str
    value: float | None
    at_ns: int


def alert_history(
    store: Store, project_id: int, rule_id: int | None = None, limit: int = 200
) -> list[History]:
    """State changes, newest first (of one rule, or all)."""
    names = {r.id: r.name for r in store.state.list_alert_config(project_id, "rule")}
    rows: list[HistoryRow] = store.state.alert_history(project_id, rule_id=rule_id, limit=limit)
    return [
        History(
            h.id,
            h.rule_id,
            names.get(h.rule_id, ""),
            h.fingerprint,
            json.loads(h.labels),
            h.state,
            h.value,
            h.at_ns,
        )
        for h in rows
    ]


# -------------------------------------------------------------------------- silences
@dataclass(frozen=True, slots=True)
class Silence:
    """A silence and where it stands now: pending (not started), active or expired."""

    id: int
    spec: SilenceSpec
    state: str
    version: int
    created_ns: int
    updated_ns: int


def _silence(row: ConfigRow, now_ns: int) -> Silence:
    spec = SilenceSpec.model_validate_json(row.spec)
    if now_ns < spec.starts_ns:
        state = "pending"
    elif now_ns < spec.ends_ns:
        state = "active"
    else:
        state = "expired"
    return Silence(row.id, spec, state, row.version, row.created_ns, row.updated_ns)


def list_silences(store: Store, project_id: int, now_ns: int) -> list[Silence]:
    """Active silences first, then pending, then expired; newest end first within each."""
    order = {"active": 0, "pending": 1, "expired": 2}
    rows = store.state.list_alert_config(project_id, "silence")
    found = [_silence(r, now_ns) for r in rows]
    return sorted(found, key=lambda s: (order[s.state], -s.spec.ends_ns, -s.id))


def get_silence(store: Store, project_id: int, silence_id: int, now_ns: int) -> Silence | None:
    row = store.state.get_alert_config(project_id, "silence", silence_id)
    return None if row is None else _silence(row, now_ns)


def create_silence(
    store: Store, project_id: int, data: Any, now_ns: int, user: str = ""
) -> Silence:
    """Store a silence (``created_by`` defaults to ``user``). Raises SpecError."""
    spec = parse_silence(data)
    if not spec.created_by and user:
        spec = spec.model_copy(update={"created_by": user})
    name = f"silence-{secrets.token_hex(6)}"  # silences have no name of their own
    row = store.state.create_alert_config(
        project_id, "silence", name, spec.to_json(), "api", now_ns
    )
    return _silence(row, now_ns)


def update_silence(
    store: Store, project_id: int, silence_id: int, data: Any, now_ns: int
) -> Silence | None:
    """Replace a silence's matchers, times or comment (None: no such silence)."""
    row = store.state.get_alert_config(project_id, "silence", silence_id)
    if row is None:
        return None
    spec = parse_silence(data)
    new = store.state.update_alert_config(
        project_id, "silence", silence_id, row.name, spec.to_json(), now_ns
    )
    return None if new is None else _silence(new, now_ns)


def expire_silence(store: Store, project_id: int, silence_id: int, now_ns: int) -> Silence | None:
    """End a silence now (kept, as expired, for the record); a pending one is expired
    before it starts. None: no such silence."""
    row = store.state.get_alert_config(project_id, "silence", silence_id)
    if row is None:
        return None
    spec = SilenceSpec.model_validate_json(row.spec)
    if spec.ends_ns <= now_ns:
        return _silence(row, now_ns)
    now_s = now_ns // 10**9
    ends = datetime.fromtimestamp(now_s, timezone.utc)
    starts = min(spec.starts, datetime.fromtimestamp(now_s - 1, timezone.utc))
    expired = spec.model_copy(update={"starts": starts, "ends": ends})
    new = store.state.update_alert_config(
        project_id, "silence", silence_id, row.name, expired.to_json(), now_ns
    )
    return None if new is None else _silence(new, now_ns)


# --------------------------------------------------------------------- notifications
@dataclass(frozen=True, slots=True)
class Notification:
    """A notification of the log (the outbox): ``channel`` is the channel's name ('' once
    deleted); ``payload`` the JSON sent (secrets are in channel configs, not here)."""

    id: int
    channel_id: int
    channel: str
    group_key: str
    kind: str
    status: str
    attempts: int
    next_attempt_ns: int
    last_error: str
    created_ns: int
    sent_ns: int
    payload: str


def list_notifications(
    store: Store,
    project_id: int,
    limit: int = 100,
    before_id: int | None = None,
    status: str | None = None,
    channel_id: int | None = None,
) -> list[Notification]:
    """The notification log, newest first; ``before_id`` pages back."""
    names = {c.id: c.name for c in store.state.list_alert_config(project_id, "channel")}
    rows: list[NotificationRow] = store.state.list_notifications(
        project_id,
        limit=limit,
        before_id=before_id,
        status=status,  # type: ignore[arg-type]
        channel_id=channel_id,
    )
    return [
        Notification(
            n.id,
            n.channel_id,
            names.get(n.channel_id, ""),
            n.group_key,
            n.kind,
            n.status,
            n.attempts,
            n.next_attempt_ns,
            n.last_error,
            n.created_ns,
            n.sent_ns,
            n.payload,
        )
        for n in rows
    ]
