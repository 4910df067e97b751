"""Which notifications to send, and when: grouping, group wait and interval, repeats,
resolve notifications, silences, inhibition and escalation (Alertmanager's semantics).

The dispatcher reads the evaluator's instances and the notification groups, decides,
and writes the groups it changed together with the new outbox rows in ONE
``save_dispatch`` call: after a restart it knows what it sent, so it neither re-sends
nor forgets. It never sends itself (the deliverer does), and while a group has a
notification still waiting in the outbox (its channel is down) it decides nothing new
for that group, so an outage ends with one notification, not a backlog of repeats.

A group is one rule's instances with the same ``group_by`` label values, per channel of
the rule: its key is ``<rule id>:<fingerprint of the group labels>`` (PagerDuty's
dedup key). A group's digest keeps the fingerprints (and labels) it last reported
firing, so a resolve can be told even after the instance is gone.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from heron.server.alerting.notify.channels import build_payload
from heron.server.model.alerting import (
    ChannelSpec,
    RuleSpec,
    SilenceSpec,
    SpecError,
    fingerprint,
    parse_channel,
    parse_rule,
    parse_silence,
)
from heron.server.store.alerting import ConfigRow, GroupRow, InstanceRow, NotificationRow

log = logging.getLogger("heron.alerts")
S = 10**9
# Alertmanager forgets a pushed alert after its resolve_timeout (5 min by default)
# unless it is pushed again: firing alerts are re-pushed every minute.
ALERTMANAGER_REPUSH_S = 60
_MUTABLE = ("warning", "info")


def _labels(inst: InstanceRow) -> dict[str, str]:
    labels: dict[str, str] = json.loads(inst.labels)
    return labels


def _parse(rows: Sequence[ConfigRow], parse: Callable[[Any], Any]) -> dict[int, Any]:
    """id → spec of the rows that parse (a stored spec that no longer does is logged)."""
    out = {}
    for row in rows:
        try:
            out[row.id] = parse(json.loads(row.spec))
        except (SpecError, ValueError) as err:
            log.warning("alerting: %s %d (%s) is invalid: %s", row.kind, row.id, row.name, err)
    return out


def condition_labels(rule: RuleSpec, labels: dict[str, str]) -> dict[str, str]:
    """The labels the condition gave an instance (not the rule's, alertname, severity)."""
    drop = {"alertname", "severity", *rule.labels}
    return {k: v for k, v in labels.items() if k not in drop}


def muted(
    instances: Sequence[InstanceRow],
    rules: Sequence[ConfigRow],
    silences: Sequence[ConfigRow],
    now_ns: int,
) -> dict[tuple[int, str], str]:
    """(rule id, fingerprint) → why its notifications are muted: ``silenced by <silence
    id>`` (an active silence of the project matches its labels) or ``inhibited by
    <alertname>`` (a firing critical instance of a rule of the same inhibition group
    whose condition labels it has too, e.g. the same service, mutes warning and info
    ones). Rules and silences are the stored rows (``list_alert_config``)."""
    specs: dict[int, RuleSpec] = _parse(rules, parse_rule)
    project_of = {row.id: row.project_id for row in rules}
    active: dict[int, list[tuple[int, SilenceSpec]]] = defaultdict(list)
    for sid, spec in _parse(silences, parse_silence).items():
        if spec.active(now_ns):
            active[next(r.project_id for r in silences if r.id == sid)].append((sid, spec))
    inhibitors: dict[tuple[int, str], list[tuple[dict[str, str], str]]] = defaultdict(list)
    for inst in instances:
        spec = specs.get(inst.rule_id)
        if spec and spec.group and inst.state == "firing" and spec.severity == "critical":
            cond = condition_labels(spec, _labels(inst))
            inhibitors[(project_of[inst.rule_id], spec.group)].append((cond, spec.name))
    out: dict[tuple[int, str], str] = {}
    for inst in instances:
        labels = _labels(inst)
        hit = next((sid for sid, s in active[inst.project_id] if s.matches(labels)), None)
        if hit is not None:
            out[(inst.rule_id, inst.fingerprint)] = f"silenced by {hit}"
            continue
        spec = specs.get(inst.rule_id)
        if spec is None or spec.group is None or spec.severity not in _MUTABLE:
            continue
        for cond, name in inhibitors[(inst.project_id, spec.group)]:
            if all(labels.get(k) == v for k, v in cond.items()):
                out[(inst.rule_id, inst.fingerprint)] = f"inhibited by {name}"
                break
    return out


@dataclass
class _Group:
    """A group of one rule's instances (same group_by values), this cycle."""

    project_id: int
    rule_id: int
    key: str
    labels: dict[str, str]
    instances: list[InstanceRow] = field(default_factory=list)


@dataclass
class _Outcome:
    upserts: list[GroupRow] = field(default_factory=list)
    deletes: list[tuple[int, str]] = field(default_factory=list)
    notifications: list[NotificationRow] = field(default_factory=list)


def group_key(rule_id: int, labels: dict[str, str]) -> str:
    return f"{rule_id}:{fingerprint(labels)}"


def _alert(inst: InstanceRow, now_ns: int) -> dict[str, Any]:
    annotations: dict[str, Any] = json.loads(inst.annotations or "{}")
    firing = inst.state == "firing"
    return {
        "status": "firing" if firing else "resolved",
        "labels": _labels(inst),
        "annotations": annotations,
        "value": inst.value,
        "starts_ns": inst.fired_ns or inst.active_since_ns,
        "ends_ns": 0 if firing else (inst.resolved_ns or now_ns),
        "fingerprint": inst.fingerprint,
        "link": str(annotations.get("link", "")),
    }


def _gone(fp: str, labels: dict[str, str], now_ns: int) -> dict[str, Any]:
    """A resolved alert whose instance is no longer stored (from the group's digest)."""
    return {
        "status": "resolved",
        "labels": labels,
        "annotations": {},
        "value": None,
        "starts_ns": 0,
        "ends_ns": now_ns,
        "fingerprint": fp,
        "link": "",
    }


def _common(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


class Dispatcher:
    """Decides notifications from the stored alert state (one per deployment, in the
    jobs role: the engine calls :meth:`run` after each evaluation)."""

    def __init__(self, store: Any, *, public_url: str, clock: Callable[[], int]) -> None:
        self._store = store
        self._public_url = public_url.rstrip("/")
        self._clock = clock
        self._warned: set[tuple[int, str, str]] = set()  # (project, rule, channel) logged

    # ------------------------------------------------------------------ the cycle
    def run(self, now_ns: int) -> int:
        """Decide and store this cycle's notifications; returns how many were queued."""
        state = self._store.state
        rule_rows = state.list_alert_config(None, "rule")
        rules: dict[int, RuleSpec] = _parse(rule_rows, parse_rule)
        rule_project = {row.id: row.project_id for row in rule_rows}
        channel_rows = state.list_alert_config(None, "channel")
        channel_specs: dict[int, ChannelSpec] = _parse(channel_rows, parse_channel)
        by_name = {
            (row.project_id, channel_specs[row.id].name): (row.id, channel_specs[row.id])
            for row in channel_rows
            if row.id in channel_specs
        }
        by_id = {cid: spec for (_, _), (cid, spec) in by_name.items()}
        instances = state.alert_instances()
        mutes = muted(instances, rule_rows, state.list_alert_config(None, "silence"), now_ns)
        stored = {(g.channel_id, g.group_key): g for g in state.notification_groups()}
        in_flight = {
            (n.channel_id, n.group_key)
            for project in sorted(set(rule_project.values()))
            for n in state.list_notifications(project, status="pending", limit=10_000)
        }
        groups = self._groups(instances, rules, stored)
        out = _Outcome()
        seen: set[tuple[int, str]] = set()
        for grp in groups.values():
            spec = rules.get(grp.rule_id)
            if spec is None:
                continue
            targets = self._channels(grp.project_id, spec, spec.channels, by_name)
            for cid, channel in targets:
                seen.add((cid, grp.key))
                if (cid, grp.key) in in_flight:
                    continue
                self._decide(
                    grp, spec, cid, channel, stored.get((cid, grp.key)), mutes, now_ns, out
                )
            self._escalate(grp, spec, by_name, stored, mutes, in_flight, seen, now_ns, out)
        self._orphans(stored, seen, rules, by_id, in_flight, now_ns, out)
        if out.upserts or out.deletes or out.notifications:
            state.save_dispatch(out.upserts, out.deletes, out.notifications)
        return len(out.notifications)

    def _groups(
        self,
        instances: Sequence[InstanceRow],
        rules: dict[int, RuleSpec],
        stored: dict[tuple[int, str], GroupRow],
    ) -> dict[str, _Group]:
        """This cycle's groups: those with instances, and the stored ones of existing
        rules (whose instances may be gone: their resolve is still to be told)."""
        groups: dict[str, _Group] = {}
        for inst in instances:
            spec = rules.get(inst.rule_id)
            if spec is None:
                continue
            labels = _labels(inst)
            glabels = {k: labels.get(k, "") for k in spec.group_by}
            key = group_key(inst.rule_id, glabels)
            grp = groups.setdefault(key, _Group(inst.project_id, inst.rule_id, key, glabels))
            grp.instances.append(inst)
        for g in stored.values():
            rule_id = int(g.group_key.split(":", 1)[0]) if g.group_key[0].isdigit() else 0
            if rule_id in rules and g.group_key not in groups:
                groups[g.group_key] = _Group(
                    g.project_id, rule_id, g.group_key, json.loads(g.labels)
                )
        return groups

    def _channels(
        self,
        project_id: int,
        spec: RuleSpec,
        names: Sequence[str],
        by_name: dict[tuple[int, str], tuple[int, ChannelSpec]],
    ) -> list[tuple[int, ChannelSpec]]:
        out = []
        for name in names:
            found = by_name.get((project_id, name))
            if found is None:
                if (project_id, spec.name, name) not in self._warned:
                    self._warned.add((project_id, spec.name, name))
                    log.warning("alerting: rule %r names no channel %r; skipped", spec.name, name)
            else:
                out.append(found)
        return out

    # ------------------------------------------------------------------ decisions
    def _decide(
        self,
        grp: _Group,
        spec: RuleSpec,
        cid: int,
        channel: ChannelSpec,
        group: GroupRow | None,
        mutes: dict[tuple[int, str], str],
        now_ns: int,
        out: _Outcome,
    ) -> None:
        """One group on one channel: wait, send (new, changed, repeat, resolved) or drop."""
        pushing = channel.config.type == "alertmanager"
        wait = 0 if pushing else spec.group_wait
        interval = 0 if pushing else spec.group_interval
        repeat = ALERTMANAGER_REPUSH_S if pushing else spec.effective_repeat_s()
        send_resolved = pushing or spec.send_resolved
        current = {i.fingerprint: i for i in grp.instances}
        firing = {
            fp: i
            for fp, i in current.items()
            if i.state == "firing" and (i.rule_id, fp) not in mutes
        }
        told: dict[str, dict[str, str]] = (
            json.loads(group.digest).get("firing", {}) if group else {}
        )
        resolved = [
            fp
            for fp in told
            if fp not in current
            or (current[fp].state != "firing" and (grp.rule_id, fp) not in mutes)
        ]
        if group is None:
            if firing:
                group = GroupRow(
                    grp.project_id, cid, grp.key, json.dumps(grp.labels), now_ns, 0, "{}"
                )
                out.upserts.append(group)
                if wait <= 0:
                    self._send(grp, spec, cid, channel, group, firing, [], told, now_ns, out)
            return
        if group.last_sent_ns == 0:
            if not firing:
                out.deletes.append((cid, grp.key))
            elif now_ns >= group.first_ns + wait * S:
                self._send(grp, spec, cid, channel, group, firing, [], told, now_ns, out)
            return
        changed = bool(set(firing) - set(told)) or bool(resolved and send_resolved)
        if changed and now_ns >= group.last_sent_ns + interval * S:
            tell = resolved if send_resolved else []
            self._send(grp, spec, cid, channel, group, firing, tell, told, now_ns, out)
        elif firing and now_ns >= group.last_sent_ns + repeat * S:
            self._send(grp, spec, cid, channel, group, firing, [], told, now_ns, out)
        elif not firing and not (resolved and send_resolved):
            out.deletes.append((cid, grp.key))

    def _send(
        self,
        grp: _Group,
        spec: RuleSpec,
        cid: int,
        channel: ChannelSpec,
        group: GroupRow,
        firing: dict[str, InstanceRow],
        resolved: list[str],
        told: dict[str, dict[str, str]],
        now_ns: int,
        out: _Outcome,
        kind: str | None = None,
    ) -> None:
        current = {i.fingerprint: i for i in grp.instances}
        alerts = [_alert(firing[fp], now_ns) for fp in sorted(firing)]
        for fp in sorted(resolved):
            inst = current.get(fp)
            alerts.append(_alert(inst, now_ns) if inst else _gone(fp, told[fp], now_ns))
        status = "firing" if firing else "resolved"
        notification = self._notification(kind or status, status, grp, spec.name, channel, alerts)
        payload = build_payload(kind or status, channel, notification)
        digest = {
            "firing": {fp: _labels(firing[fp]) for fp in sorted(firing)},
            "resolved": sorted(resolved),
        }
        if kind != "escalation":
            out.upserts[:] = [
                g for g in out.upserts if (g.channel_id, g.group_key) != (cid, grp.key)
            ]
            out.upserts.append(replace(group, last_sent_ns=now_ns, digest=json.dumps(digest)))
        out.notifications.append(
            NotificationRow(
                0,
                grp.project_id,
                cid,
                group.group_key,
                kind or status,
                payload,
                "pending",
                0,
                now_ns,
                "",
                now_ns,
                0,
            )
        )

    def _notification(
        self,
        kind: str,
        status: str,
        grp: _Group,
        title: str,
        channel: ChannelSpec,
        alerts: list[dict[str, Any]],
    ) -> dict[str, Any]:
        links = {a["link"] for a in alerts if a["link"]}
        link = links.pop() if len(links) == 1 else f"{self._public_url}/alerts"
        return {
            "kind": kind,
            "status": status,
            "group_key": grp.key,
            "group_labels": grp.labels,
            "common_labels": _common([a["labels"] for a in alerts]),
            "common_annotations": {
                k: v for k, v in _common([a["annotations"] for a in alerts]).items() if k != "link"
            },
            "receiver": channel.name,
            "external_url": self._public_url,
            "link": link,
            "title": title,
            "alerts": alerts,
        }

    def _escalate(
        self,
        grp: _Group,
        spec: RuleSpec,
        by_name: dict[tuple[int, str], tuple[int, ChannelSpec]],
        stored: dict[tuple[int, str], GroupRow],
        mutes: dict[tuple[int, str], str],
        in_flight: set[tuple[int, str]],
        seen: set[tuple[int, str]],
        now_ns: int,
        out: _Outcome,
    ) -> None:
        """Once per firing episode: unacknowledged critical instances firing for
        ``escalate_after`` go to the ``escalate_to`` channels too."""
        if spec.escalate_after is None or not spec.escalate_to:
            return
        firing = [
            i
            for i in grp.instances
            if i.state == "firing" and (i.rule_id, i.fingerprint) not in mutes
        ]
        due = {
            i.fingerprint: i
            for i in firing
            if _labels(i).get("severity") == "critical"
            and not i.acked_by
            and i.fired_ns
            and now_ns - i.fired_ns >= spec.escalate_after * S
        }
        key = f"esc:{grp.key}"
        for cid, channel in self._channels(grp.project_id, spec, spec.escalate_to, by_name):
            seen.add((cid, key))
            group = stored.get((cid, key))
            if (cid, key) in in_flight:
                continue
            if group is not None and not firing:
                out.deletes.append((cid, key))
            elif group is None and due:
                row = GroupRow(
                    grp.project_id,
                    cid,
                    key,
                    json.dumps(grp.labels),
                    now_ns,
                    now_ns,
                    json.dumps({"firing": sorted(due)}),
                    escalated_ns=now_ns,
                )
                out.upserts.append(row)
                self._send(
                    grp, spec, cid, channel, row, due, [], {}, now_ns, out, kind="escalation"
                )

    def _orphans(
        self,
        stored: dict[tuple[int, str], GroupRow],
        seen: set[tuple[int, str]],
        rules: dict[int, RuleSpec],
        channels: dict[int, ChannelSpec],
        in_flight: set[tuple[int, str]],
        now_ns: int,
        out: _Outcome,
    ) -> None:
        """Groups no rule uses any more (rule or channel deleted, channel taken off the
        rule): a deleted rule's firing alerts are told resolved once, then dropped."""
        for (cid, key), group in stored.items():
            if (cid, key) in seen or (cid, key) in in_flight:
                continue
            out.deletes.append((cid, key))
            rule_id = int(key.split(":", 1)[0]) if key[0].isdigit() else 0
            told = json.loads(group.digest).get("firing", {})
            channel = channels.get(cid)
            if rule_id in rules or not told or channel is None or key.startswith("esc:"):
                continue
            grp = _Group(group.project_id, rule_id, key, json.loads(group.labels))
            alerts = [_gone(fp, labels, now_ns) for fp, labels in sorted(told.items())]
            first: dict[str, str] = next(iter(told.values()), {})
            name = first.get("alertname", "deleted rule")
            n = self._notification("resolved", "resolved", grp, name, channel, alerts)
            payload = build_payload("resolved", channel, n)
            out.notifications.append(
                NotificationRow(
                    0,
                    group.project_id,
                    cid,
                    key,
                    "resolved",
                    payload,
                    "pending",
                    0,
                    now_ns,
                    "",
                    now_ns,
                    0,
                )
            )
