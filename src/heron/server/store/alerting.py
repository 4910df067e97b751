"""Alerting state: rules, channels, silences and SLOs (one table of JSON specs), alert
instances with their history, rule health, notification groups and the notification
outbox (which is also the notification log).

Part of the state store (``StateStore`` extends ``AlertStore``): every backend keeps it
in the same database as users and issues (DuckDB's file, or PostgreSQL for ClickHouse
deployments), so a restart neither forgets what is firing nor re-sends what was sent.
Specs are validated above the store (``model/alerting.py``); the store keeps their JSON
text. Every method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal, Protocol

ConfigKind = Literal["rule", "channel", "silence", "slo"]
NotificationStatus = Literal["pending", "sent", "failed"]


class NameTaken(Exception):
    """Another object of the same kind in the project has this name."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"a {kind} named {name!r} exists already")
        self.kind = kind
        self.name = name


@dataclass(frozen=True, slots=True)
class ConfigRow:
    """A rule, channel, silence or SLO. ``source`` says who owns it: ``api`` (the API and
    UI edit it), ``file`` (a rule file: read-only in the UI), ``slo:<id>`` (a burn-rate
    rule generated from SLO ``id``). Names are unique per project and kind (silences get
    generated names). ``version`` starts at 1 and grows by one per update."""

    id: int
    project_id: int
    kind: str
    name: str
    source: str
    spec: str
    version: int
    created_ns: int
    updated_ns: int


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """One alert instance of a rule: the rule's condition held (or holds) for the sample
    with these labels. Instances the evaluator finds inactive are deleted; ``resolved``
    ones are kept until their resolve notification is due (and a while after, for the
    alerts page)."""

    rule_id: int
    fingerprint: str
    """``model.alerting.fingerprint(labels)``."""
    project_id: int
    labels: str
    """JSON object of the instance's labels."""
    annotations: str
    """JSON object of the rendered annotations (summary, description, runbook_url, link)."""
    state: str
    """pending, firing or resolved."""
    value: float | None
    """The condition's value at the last evaluation (None: no data)."""
    active_since_ns: int
    """When the condition started holding (pending from then on)."""
    fired_ns: int
    """When it went firing (0: never)."""
    resolved_ns: int
    """When it resolved (0: not resolved)."""
    last_eval_ns: int
    last_true_ns: int
    """The last evaluation at which the condition held (keep_firing_for counts from it)."""
    acked_by: str = ""
    """Who acknowledged it ('' = nobody). ``save_evaluation`` never changes the two ack
    columns of an existing row (only ``ack_alert`` and ``unack`` do)."""
    acked_ns: int = 0


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A state change of an instance (``id`` 0 until stored)."""

    id: int
    project_id: int
    rule_id: int
    fingerprint: str
    labels: str
    state: str
    """The state entered: pending, firing, resolved or inactive."""
    value: float | None
    at_ns: int


@dataclass(frozen=True, slots=True)
class RuleStatusRow:
    """How a rule evaluated last: ``error`` '' when healthy, else why it is broken."""

    rule_id: int
    project_id: int
    last_eval_ns: int
    duration_ms: float
    error: str
    instances: int


@dataclass(frozen=True, slots=True)
class GroupRow:
    """The notification state of one group of alerts on one channel: what it last sent
    and when (so group_interval/repeat_interval hold across restarts)."""

    project_id: int
    channel_id: int
    group_key: str
    labels: str
    """JSON object of the group's labels (the rule's ``group_by`` values)."""
    first_ns: int
    """When the group first had an alert to send (group_wait counts from it)."""
    last_sent_ns: int
    """0: never sent."""
    digest: str
    """What the last notification said (its firing and resolved fingerprints)."""
    escalated_ns: int = 0


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """A notification to deliver (``pending``) or delivered (``sent``) or given up on
    (``failed``): the outbox and the notification log. ``id`` 0 until stored."""

    id: int
    project_id: int
    channel_id: int
    group_key: str
    kind: str
    """firing, resolved, escalation or test."""
    payload: str
    """JSON: what the channel sends (built when the notification was decided)."""
    status: str
    attempts: int
    next_attempt_ns: int
    last_error: str
    created_ns: int
    sent_ns: int


CONFIG_COLUMNS = tuple(f.name for f in fields(ConfigRow))
INSTANCE_COLUMNS = tuple(f.name for f in fields(InstanceRow))
HISTORY_COLUMNS = tuple(f.name for f in fields(HistoryRow))
RULE_STATUS_COLUMNS = tuple(f.name for f in fields(RuleStatusRow))
GROUP_COLUMNS = tuple(f.name for f in fields(GroupRow))
NOTIFICATION_COLUMNS = tuple(f.name for f in fields(NotificationRow))


class AlertStore(Protocol):
    # ------------------------------------------------- rules, channels, silences, SLOs
    def list_alert_config(self, project_id: int | None, kind: ConfigKind) -> list[ConfigRow]:
        """Objects of ``kind`` by name, then id (every project's when None)."""
        ...

    def get_alert_config(
        self, project_id: int, kind: ConfigKind, config_id: int
    ) -> ConfigRow | None: ...

    def create_alert_config(
        self, project_id: int, kind: ConfigKind, name: str, spec: str, source: str, now_ns: int
    ) -> ConfigRow:
        """Store a new object at version 1. Raises NameTaken."""
        ...

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
        """Replace name and spec, version + 1; None if there is no such object. Raises
        NameTaken, and VersionConflict (``store.state``) when ``expected_version`` is given
        and is not the stored one."""
        ...

    def delete_alert_config(self, project_id: int, kind: ConfigKind, config_id: int) -> bool:
        """False if there was no such object. Deleting a rule deletes its instances and
        status too (its history stays); deleting a channel deletes its notification
        groups (its notification log stays)."""
        ...

    def replace_alert_config_source(
        self,
        project_id: int,
        kind: ConfigKind,
        source: str,
        items: Sequence[tuple[str, str]],
        now_ns: int,
    ) -> list[ConfigRow]:
        """Make the objects of ``source`` exactly ``items`` ((name, spec) pairs) in one
        transaction: a name already in the source keeps its id (version + 1 when its spec
        changed), new names are created, the source's other objects are deleted (as
        ``delete_alert_config`` deletes). Raises NameTaken (and changes nothing) when a
        name belongs to another source. Returns the source's objects by name."""
        ...

    # ------------------------------------------------------------ evaluation state
    def alert_instances(self, project_id: int | None = None) -> list[InstanceRow]:
        """Every stored instance (of one project, or all), by rule id then fingerprint."""
        ...

    def save_evaluation(
        self,
        upserts: Sequence[InstanceRow],
        deletes: Sequence[tuple[int, str]],
        history: Sequence[HistoryRow],
        statuses: Sequence[RuleStatusRow],
        unack: Sequence[tuple[int, str]] = (),
    ) -> None:
        """One evaluation's outcome in one transaction: insert or replace instances
        (keeping an existing row's ack columns), delete ``(rule_id, fingerprint)``
        instances, append history, insert or replace rule statuses, and clear the acks of
        ``unack`` instances."""
        ...

    def ack_alert(
        self, project_id: int, rule_id: int, fingerprint: str, by: str, now_ns: int
    ) -> bool:
        """Acknowledge an instance; False if there is no such instance."""
        ...

    def alert_history(
        self,
        project_id: int,
        *,
        rule_id: int | None = None,
        fingerprint: str | None = None,
        since_ns: int = 0,
        limit: int = 200,
    ) -> list[HistoryRow]:
        """State changes, newest first."""
        ...

    def rule_statuses(self, project_id: int | None = None) -> list[RuleStatusRow]: ...

    # --------------------------------------------------------------- notifications
    def notification_groups(self, project_id: int | None = None) -> list[GroupRow]: ...

    def save_dispatch(
        self,
        groups: Sequence[GroupRow],
        delete_groups: Sequence[tuple[int, str]],
        notifications: Sequence[NotificationRow],
    ) -> list[int]:
        """One dispatch in one transaction: insert or replace groups (by channel id and
        group key), delete ``(channel_id, group_key)`` groups, insert ``notifications``
        (their ``id`` ignored). Returns the new notifications' ids in order."""
        ...

    def due_notifications(self, now_ns: int, limit: int = 100) -> list[NotificationRow]:
        """Pending notifications whose ``next_attempt_ns`` has come, oldest first."""
        ...

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
        """Record a delivery attempt's outcome."""
        ...

    def list_notifications(
        self,
        project_id: int,
        *,
        limit: int = 100,
        before_id: int | None = None,
        status: NotificationStatus | None = None,
        channel_id: int | None = None,
    ) -> list[NotificationRow]:
        """The notification log, newest first (``before_id`` pages)."""
        ...

    def claim_alerting(self, holder: str, now_ns: int, ttl_ns: int) -> bool:
        """Take or renew the alerting lease for ``holder`` until ``now_ns + ttl_ns``: True
        when it is ``holder``'s now (it held it, or nobody's lease runs), False while
        another holder's runs. An engine evaluates and dispatches only while it holds
        it, so two jobs processes overlapping (a rolling restart) never both send."""
        ...

    def prune_alerting(self, before_ns: int) -> int:
        """Delete history and sent or failed notifications older than ``before_ns``;
        returns the rows deleted."""
        ...
