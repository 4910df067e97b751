"""Alerting pages: the alerts (firing, pending, silenced), rules with their editor and
preview, silences, channels (with a test send) and the notification log.

Every change is a plain form post (CSRF-checked by the pages router) that redirects back.
Specs are edited as JSON text and validated by :mod:`heron.server.alerting.service`; an
invalid one is shown again in the editor with the error naming the field, nothing lost.
Rules from files or generated from an SLO are shown read-only.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from heron.server.alerting import preview, service
from heron.server.auth import require_user
from heron.server.errors import NotFound
from heron.server.model.alerting import SpecError, parse_rule
from heron.server.query import InvalidQuery
from heron.server.store.alerting import NameTaken
from heron.server.store.state import VersionConflict
from heron.server.ui._kit import RENDERER, Kit, KitDep, UiRoute

router = APIRouter(route_class=UiRoute)
NS = 1_000_000_000
PREVIEW_HOURS = 6.0
NOTIFICATION_STATUSES = ("pending", "sent", "failed")
NEW_RULE: dict[str, Any] = {
    "name": "Slow responses",
    "severity": "warning",
    "condition": {"kind": "red", "figure": "p95_ms", "window": "5m", "op": ">", "threshold": 2000},
    "for": "5m",
    "annotations": {"summary": "{{ labels.service }} p95 is {{ value|round(0) }} ms"},
    "channels": [],
}
NEW_CHANNEL: dict[str, Any] = {"name": "server log", "config": {"type": "log"}}
EDIT_ERRORS = (
    SpecError,
    NameTaken,
    VersionConflict,
    service.ReadOnly,
    service.ChannelInUse,
    InvalidQuery,
)


def as_labels(value: object) -> dict[str, str]:
    """Labels as a dict, from a dict or the JSON text the store keeps."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


RENDERER.env.filters["as_labels"] = as_labels


def pretty(data: object) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def parse_json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise SpecError(f"not JSON: {err}") from None


def edit_error(err: Exception) -> str:
    """What the editor says about a failed save."""
    if isinstance(err, VersionConflict):
        return "Someone saved this meanwhile: reload the page to see their version."
    return str(err)


async def form_text(request: Request, *names: str) -> dict[str, str]:
    form = await request.form()
    return {n: v if isinstance(v := form.get(n), str) else "" for n in names}


def back(kit: Kit, request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(kit.state(request).url(path), status_code=303)


# ------------------------------------------------------------------------- alerts
@router.get("/alerts")
def alerts_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    now = kit.ctx.clock()
    alerts = service.list_alerts(kit.ctx.store, kit.project, now)
    silenced = [a for a in alerts if a.muted and a.state != "resolved"]
    live = [a for a in alerts if not a.muted]
    return kit.render(
        request,
        "alerts.html",
        state,
        nav="alerts",
        tab="alerts",
        firing=[a for a in live if a.state == "firing"],
        pending=[a for a in live if a.state == "pending"],
        resolved=[a for a in live if a.state == "resolved"],
        silenced=silenced,
        history=service.alert_history(kit.ctx.store, kit.project, limit=50),
        rule_names={r.id: r.name for r in service.list_rules(kit.ctx.store, kit.project)},
    )


@router.post("/alerts/ack")
async def ack(kit: KitDep, request: Request) -> Response:
    f = await form_text(request, "rule_id", "fingerprint")
    user = require_user(request).username
    rule_id = _int(f["rule_id"], "rule_id")
    done = await run_in_threadpool(
        service.ack_alert,
        kit.ctx.store,
        kit.project,
        rule_id,
        f["fingerprint"],
        user,
        kit.ctx.clock(),
    )
    if not done:
        raise NotFound("That alert is no longer active.")
    return back(kit, request, "/alerts")


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidQuery(f"{name} must be a whole number") from None


# -------------------------------------------------------------------------- rules
@router.get("/alerts/rules")
def rules_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    rules = service.list_rules(kit.ctx.store, kit.project)
    counts: dict[int, dict[str, int]] = {}
    for a in service.list_alerts(kit.ctx.store, kit.project, kit.ctx.clock()):
        by_state = counts.setdefault(a.rule_id, {})
        by_state[a.state] = by_state.get(a.state, 0) + 1
    return kit.render(
        request, "alert_rules.html", state, nav="alerts", tab="rules", rules=rules, counts=counts
    )


def _rule(kit: Kit, rule_id: int) -> service.Rule:
    rule = service.get_rule(kit.ctx.store, kit.project, rule_id)
    if rule is None:
        raise NotFound(f"Rule {rule_id} was not found.")
    return rule


@router.get("/alerts/rules/new")
def new_rule_form(kit: KitDep, request: Request) -> Response:
    return _rule_editor(kit, request, None, pretty(NEW_RULE), "", None)


@router.post("/alerts/rules/new")
async def create_rule(kit: KitDep, request: Request) -> Response:
    return await _save_rule(kit, request, None)


@router.get("/alerts/rules/{rule_id}")
def rule_page(kit: KitDep, request: Request, rule_id: int) -> Response:
    state = kit.state(request)
    rule = _rule(kit, rule_id)
    now = kit.ctx.clock()
    alerts = [
        a for a in service.list_alerts(kit.ctx.store, kit.project, now) if a.rule_id == rule_id
    ]
    return kit.render(
        request,
        "alert_rule.html",
        state,
        nav="alerts",
        tab="rules",
        rule=rule,
        spec_json=pretty(_rule_dict(rule)),
        alerts=alerts,
        history=service.alert_history(kit.ctx.store, kit.project, rule_id=rule_id, limit=100),
        preview=_preview(kit, rule.spec, now),
    )


@router.get("/alerts/rules/{rule_id}/edit")
def edit_rule_form(kit: KitDep, request: Request, rule_id: int) -> Response:
    rule = _rule(kit, rule_id)
    text = pretty({**_rule_dict(rule), "version": rule.version})
    return _rule_editor(kit, request, rule, text, "", None)


@router.post("/alerts/rules/{rule_id}/edit")
async def update_rule(kit: KitDep, request: Request, rule_id: int) -> Response:
    return await _save_rule(kit, request, rule_id)


@router.post("/alerts/rules/{rule_id}/delete")
async def delete_rule(kit: KitDep, request: Request, rule_id: int) -> Response:
    rule = _rule(kit, rule_id)
    if rule.read_only:
        raise InvalidQuery(f"rule {rule.name!r} comes from {rule.source}: change it there")
    try:
        await run_in_threadpool(service.delete_rule, kit.ctx.store, kit.project, rule_id)
    except service.ReadOnly as err:
        raise InvalidQuery(str(err)) from None
    return back(kit, request, "/alerts/rules")


@router.post("/alerts/rules/{rule_id}/enable")
async def enable_rule(kit: KitDep, request: Request, rule_id: int) -> Response:
    return await _set_enabled(kit, request, rule_id, True)


@router.post("/alerts/rules/{rule_id}/disable")
async def disable_rule(kit: KitDep, request: Request, rule_id: int) -> Response:
    return await _set_enabled(kit, request, rule_id, False)


async def _set_enabled(kit: Kit, request: Request, rule_id: int, enabled: bool) -> Response:
    try:
        rule = await run_in_threadpool(
            service.set_rule_enabled, kit.ctx.store, kit.project, rule_id, enabled, kit.ctx.clock()
        )
    except service.ReadOnly as err:
        raise InvalidQuery(str(err)) from None
    if rule is None:
        raise NotFound(f"Rule {rule_id} was not found.")
    return back(kit, request, f"/alerts/rules/{rule_id}")


def _rule_dict(rule: service.Rule) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(rule.spec.to_json())
    return data


def _rule_editor(
    kit: Kit,
    request: Request,
    rule: service.Rule | None,
    text: str,
    error: str,
    shown: dict[str, Any] | None,
) -> Response:
    return kit.render(
        request,
        "alert_rule_edit.html",
        kit.state(request),
        nav="alerts",
        tab="rules",
        status=400 if error else 200,
        rule=rule,
        text=text,
        error=error,
        preview=shown,
    )


async def _save_rule(kit: Kit, request: Request, rule_id: int | None) -> Response:
    f = await form_text(request, "json", "action")
    rule = _rule(kit, rule_id) if rule_id is not None else None
    now = kit.ctx.clock()
    try:
        data = parse_json(f["json"])
        if f["action"] == "preview":
            spec = parse_rule(data)
            shown = await run_in_threadpool(_preview, kit, spec, now)
            return _rule_editor(kit, request, rule, f["json"], "", shown)
        saved: service.Rule | None
        if rule_id is None:
            saved = await run_in_threadpool(
                service.create_rule, kit.ctx.store, kit.project, data, now
            )
        else:
            version = data.pop("version", None) if isinstance(data, dict) else None
            saved = await run_in_threadpool(
                service.update_rule, kit.ctx.store, kit.project, rule_id, data, now, version
            )
    except EDIT_ERRORS as err:
        return _rule_editor(kit, request, rule, f["json"], edit_error(err), None)
    if saved is None:
        raise NotFound(f"Rule {rule_id} was not found.")
    return back(kit, request, f"/alerts/rules/{saved.id}")


def _preview(kit: Kit, spec: Any, now_ns: int) -> dict[str, Any]:
    """The condition over the last hours as chart data, or the reason there is none."""
    try:
        p = preview.preview_rule(kit.ctx.store, kit.project, spec, now_ns, PREVIEW_HOURS)
    except (SpecError, InvalidQuery, ValueError, LookupError) as err:
        return {"error": str(err), "events": [], "series": []}
    return preview_chart(p, now_ns)


def preview_chart(p: preview.Preview, now_ns: int) -> dict[str, Any]:
    """Chart data for alerts.js: one time axis (seconds), one line per instance."""
    ts = sorted({t for s in p.series for t, _ in s.points})
    lines = []
    for s in p.series[:20]:
        at = dict(s.points)
        lines.append({"label": label_text(s.labels), "values": [at.get(t) for t in ts]})
    events = [
        {
            "label": label_text(e.labels),
            "fired_s": e.fired_ns / NS,
            "resolved_s": None if e.resolved_ns is None else e.resolved_ns / NS,
        }
        for e in p.events
    ]
    return {
        "t": [t / NS for t in ts],
        "series": lines,
        "threshold": p.threshold,
        "op": p.op,
        "step_s": p.step_s,
        "events": events,
        "from": (now_ns / NS) - PREVIEW_HOURS * 3600,
        "to": now_ns / NS,
        "error": "",
    }


def label_text(labels: dict[str, str]) -> str:
    """``k=v, k=v`` without the labels every instance of a rule shares."""
    shown = {k: v for k, v in labels.items() if k not in ("alertname", "severity")}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "(all)"


# ----------------------------------------------------------------------- silences
@router.get("/alerts/silences")
def silences_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    silences = service.list_silences(kit.ctx.store, kit.project, kit.ctx.clock())
    return kit.render(
        request, "alert_silences.html", state, nav="alerts", tab="silences", silences=silences
    )


@router.get("/alerts/silences/new")
def new_silence_form(kit: KitDep, request: Request) -> Response:
    """A silence prefilled from an alert's labels (``rule_id`` + ``fingerprint``)."""
    q = request.query_params
    now = kit.ctx.clock()
    matchers = [{"label": "alertname", "value": "", "op": "="}]
    if q.get("fingerprint"):
        for a in service.list_alerts(kit.ctx.store, kit.project, now):
            if a.fingerprint == q["fingerprint"] and str(a.rule_id) == q.get("rule_id", ""):
                matchers = [
                    {"label": k, "value": v, "op": "="} for k, v in sorted(a.labels.items())
                ]
    data = {
        "matchers": matchers,
        "starts": iso_s(now // NS),
        "ends": iso_s(now // NS + 2 * 3600),
        "comment": "",
        "created_by": require_user(request).username,
    }
    return _silence_editor(kit, request, pretty(data), "")


@router.post("/alerts/silences/new")
async def create_silence(kit: KitDep, request: Request) -> Response:
    f = await form_text(request, "json")
    user = require_user(request).username
    try:
        data = parse_json(f["json"])
        await run_in_threadpool(
            service.create_silence, kit.ctx.store, kit.project, data, kit.ctx.clock(), user
        )
    except EDIT_ERRORS as err:
        return _silence_editor(kit, request, f["json"], edit_error(err))
    return back(kit, request, "/alerts/silences")


@router.post("/alerts/silences/{silence_id}/expire")
async def expire_silence(kit: KitDep, request: Request, silence_id: int) -> Response:
    done = await run_in_threadpool(
        service.expire_silence, kit.ctx.store, kit.project, silence_id, kit.ctx.clock()
    )
    if not done:
        raise NotFound(f"Silence {silence_id} was not found.")
    return back(kit, request, "/alerts/silences")


def _silence_editor(kit: Kit, request: Request, text: str, error: str) -> Response:
    return kit.render(
        request,
        "alert_edit.html",
        kit.state(request),
        nav="alerts",
        tab="silences",
        status=400 if error else 200,
        what="silence",
        title="New silence",
        action="/alerts/silences/new",
        cancel="/alerts/silences",
        text=text,
        error=error,
        hint=(
            "Alerts whose labels match every matcher are not notified between starts and "
            "ends (they still show, marked silenced). op is =, !=, =~ or !~ (regular "
            "expressions match the whole value). Times are ISO 8601."
        ),
    )


def iso_s(seconds: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------- channels
@router.get("/alerts/channels")
def channels_page(kit: KitDep, request: Request) -> Response:
    return _channels(kit, request, None)


def _channels(kit: Kit, request: Request, tested: dict[str, str] | None) -> Response:
    return kit.render(
        request,
        "alert_channels.html",
        kit.state(request),
        nav="alerts",
        tab="channels",
        channels=service.list_channels(kit.ctx.store, kit.project),
        tested=tested,
        pretty=pretty,
    )


def _channel(kit: Kit, channel_id: int) -> service.Channel:
    channel = service.get_channel(kit.ctx.store, kit.project, channel_id)
    if channel is None:
        raise NotFound(f"Channel {channel_id} was not found.")
    return channel


@router.get("/alerts/channels/new")
def new_channel_form(kit: KitDep, request: Request) -> Response:
    return _channel_editor(kit, request, None, pretty(NEW_CHANNEL), "")


@router.post("/alerts/channels/new")
async def create_channel(kit: KitDep, request: Request) -> Response:
    return await _save_channel(kit, request, None)


@router.get("/alerts/channels/{channel_id}/edit")
def edit_channel_form(kit: KitDep, request: Request, channel_id: int) -> Response:
    c = _channel(kit, channel_id)
    text = pretty({"name": c.name, "config": c.config, "version": c.version})
    return _channel_editor(kit, request, c, text, "")


@router.post("/alerts/channels/{channel_id}/edit")
async def update_channel(kit: KitDep, request: Request, channel_id: int) -> Response:
    return await _save_channel(kit, request, channel_id)


@router.post("/alerts/channels/{channel_id}/delete")
async def delete_channel(kit: KitDep, request: Request, channel_id: int) -> Response:
    try:
        await run_in_threadpool(service.delete_channel, kit.ctx.store, kit.project, channel_id)
    except (service.ReadOnly, service.ChannelInUse) as err:
        raise InvalidQuery(str(err)) from None
    return back(kit, request, "/alerts/channels")


@router.post("/alerts/channels/{channel_id}/test")
async def test_channel(kit: KitDep, request: Request, channel_id: int) -> Response:
    """Send a test notification now and show the channels with its outcome."""
    channel = _channel(kit, channel_id)
    row = await run_in_threadpool(
        lambda: service.test_channel(
            kit.ctx.store, kit.project, channel_id, kit.ctx.clock(), config=kit.ctx.config
        )
    )
    if row is None:
        raise NotFound(f"Channel {channel_id} was not found.")
    tested = {"name": channel.name, "status": row.status, "error": row.last_error}
    return await run_in_threadpool(_channels, kit, request, tested)


def _channel_editor(
    kit: Kit, request: Request, channel: service.Channel | None, text: str, error: str
) -> Response:
    base = f"/alerts/channels/{channel.id}/edit" if channel else "/alerts/channels/new"
    return kit.render(
        request,
        "alert_edit.html",
        kit.state(request),
        nav="alerts",
        tab="channels",
        status=400 if error else 200,
        what="channel",
        title=f"Edit channel {channel.name}" if channel else "New channel",
        action=base,
        cancel="/alerts/channels",
        text=text,
        error=error,
        hint=(
            "config.type is slack (url), email (host, port, security, username, password, "
            "from, to), webhook (url, headers), pagerduty (routing_key), alertmanager (url) "
            "or log. Secrets show as •••• : leave them so to keep the stored value. "
            "See docs/alerting.md."
        ),
    )


async def _save_channel(kit: Kit, request: Request, channel_id: int | None) -> Response:
    f = await form_text(request, "json")
    channel = _channel(kit, channel_id) if channel_id is not None else None
    now = kit.ctx.clock()
    try:
        data = parse_json(f["json"])
        hosts = kit.ctx.config.alert_allowed_hosts
        if channel_id is None:
            await run_in_threadpool(
                lambda: service.create_channel(
                    kit.ctx.store, kit.project, data, now, allowed_hosts=hosts
                )
            )
        else:
            version = data.pop("version", None) if isinstance(data, dict) else None
            saved = await run_in_threadpool(
                lambda: service.update_channel(
                    kit.ctx.store, kit.project, channel_id, data, now, version, allowed_hosts=hosts
                )
            )
            if saved is None:
                raise NotFound(f"Channel {channel_id} was not found.")
    except EDIT_ERRORS as err:
        return _channel_editor(kit, request, channel, f["json"], edit_error(err))
    return back(kit, request, "/alerts/channels")


# ------------------------------------------------------------------ notifications
@router.get("/alerts/notifications")
def notifications_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in NOTIFICATION_STATUSES:
        raise InvalidQuery(f"status must be one of {', '.join(NOTIFICATION_STATUSES)}")
    before = _int(q["before"], "before") if q.get("before") else None
    rows = service.list_notifications(
        kit.ctx.store, kit.project, limit=100, before_id=before, status=status, channel_id=None
    )
    channels = {c.id: c.name for c in service.list_channels(kit.ctx.store, kit.project)}
    return kit.render(
        request,
        "alert_notifications.html",
        state,
        nav="alerts",
        tab="notifications",
        page_params={"status": status} if status else {},
        rows=rows,
        channels=channels,
        shown_status=status,
        statuses=NOTIFICATION_STATUSES,
        summary=notification_summary,
    )


def notification_summary(payload: str) -> str:
    """A line saying what a notification was about, from its stored payload."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload[:200]
    if isinstance(data, dict):
        for key in ("text", "summary", "subject", "title"):
            if isinstance(data.get(key), str):
                return str(data[key])[:300]
        alerts = data.get("alerts")
        if isinstance(alerts, list):
            names = sorted({str(a.get("labels", {}).get("alertname", "")) for a in alerts})
            return f"{len(alerts)} alert(s): {', '.join(n for n in names if n)}"[:300]
    return payload[:200]
