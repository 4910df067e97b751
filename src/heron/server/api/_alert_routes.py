"""Alerting and SLOs: ``/api/v1/alerts/...`` (rules, alerts, history, silences,
channels, the notification log) and ``/api/v1/slos``.

Bodies are the JSON of docs/alerting.md; what a GET answers is the same JSON plus ``id``,
``version`` and times, and can be sent back as it is (those keys are dropped, ``version``
guards against overwriting someone else's change). Invalid bodies answer 400 naming the
field; a name in use, a read-only (file or SLO) rule, a channel in use and a stale
version answer 409. Changes need the API token, or a session with the page's CSRF token
in ``X-CSRF-Token``. No ``from __future__ import annotations``: FastAPI reads parameter
annotations at runtime.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from starlette.responses import Response

from heron.server.alerting import service
from heron.server.alerting.conditions import ConditionError
from heron.server.alerting.files import load_rule_files
from heron.server.alerting.preview import preview_rule
from heron.server.alerting.slo import SloStatus
from heron.server.api._params import Project
from heron.server.api._route import ApiRoute
from heron.server.api._schemas import ErrorBody
from heron.server.auth import verify_csrf
from heron.server.context import Ctx
from heron.server.errors import BadRequest, Conflict, NotFound
from heron.server.model.alerting import SpecError, parse_rule
from heron.server.query import iso
from heron.server.store.alerting import NameTaken, NotificationRow
from heron.server.store.state import VersionConflict

# Keys a GET adds to an object's JSON: dropped from a body, so a GET can be sent back.
_META = frozenset(
    ("id", "version", "created", "updated", "source", "read_only", "status")
    + ("missing_channels", "state", "rule_ids")
)


class AlertRoute(ApiRoute):
    """Maps the alerting service's exceptions to the API's 400 and 409 answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SpecError as e:
                raise BadRequest(str(e)) from None
            except ConditionError as e:  # a preview of a condition that cannot run
                raise BadRequest(f"condition: {e}") from None
            except (NameTaken, service.ReadOnly, service.ChannelInUse) as e:
                raise Conflict(str(e)) from None
            except VersionConflict as e:
                raise Conflict(
                    f"it was changed meanwhile (now version {e.current}); "
                    "reload it and apply your change again"
                ) from None

        return handle


async def _csrf_unless_bearer(request: Request) -> None:
    """Bearer tokens are never sent by a browser on its own; cookies are."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    await verify_csrf(request)


def _who(request: Request) -> str:
    """The signed-in user's name, else ``api token`` (ack and silence authorship)."""
    auth = getattr(request.app.state, "auth", None)
    user = auth.user_for(request) if auth is not None else None
    return user.username if user is not None else "api token"


router = APIRouter(route_class=AlertRoute, tags=["alerting"])
_change = [Depends(_csrf_unless_bearer)]
_CHANGES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Session without a CSRF token."},
    409: {"model": ErrorBody, "description": "Name taken, read-only, in use or stale."},
}
_MISSING: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "Not found."}}
Id = Annotated[int, Path(ge=1, description="The object's id, as listed.")]
JsonBody = Annotated[Any, Body(description="The JSON of docs/alerting.md.")]


def _spec_and_version(body: Any) -> tuple[Any, int | None]:
    """The body without the keys a GET adds, and its ``version`` (None: not given)."""
    if not isinstance(body, dict):
        return body, None
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise BadRequest("version must be an integer")
    return {k: v for k, v in body.items() if k not in _META}, version


def _found(value: Any, what: str, some_id: int | str) -> Any:
    if value is None or value is False:
        raise NotFound(f"{what} {some_id} not found")
    return value


def _times(version: int, created_ns: int, updated_ns: int) -> dict[str, Any]:
    return {"version": version, "created": iso(created_ns), "updated": iso(updated_ns)}


# ----------------------------------------------------------------------------- rules
def _rule_json(r: service.Rule) -> dict[str, Any]:
    status = None
    if r.status is not None:
        status = {
            "last_eval": iso(r.status.last_eval_ns),
            "duration_ms": r.status.duration_ms,
            "error": r.status.error,
            "instances": r.status.instances,
        }
    return {
        "id": r.id,
        **r.spec.model_dump(mode="json", by_alias=True),
        "source": r.source,
        "read_only": r.read_only,
        "missing_channels": r.missing_channels,
        "status": status,
        **_times(r.version, r.created_ns, r.updated_ns),
    }


@router.get("/alerts/rules")
def list_rules(ctx: Ctx, project: Project) -> dict[str, Any]:
    """Every rule by name, with where it comes from (`api`, `starter`, `file:<name>`,
    `slo:<id>`), whether it is read-only, its last evaluation (`status.error` says why a
    broken rule failed) and channels it names that do not exist."""
    return {"rules": [_rule_json(r) for r in service.list_rules(ctx.store, project)]}


@router.post("/alerts/rules", status_code=201, responses=_CHANGES, dependencies=_change)
def create_rule(ctx: Ctx, project: Project, body: JsonBody) -> dict[str, Any]:
    """Create a rule; its channels must exist (400 `channels.0: no channel named ...`)."""
    spec, _ = _spec_and_version(body)
    return _rule_json(service.create_rule(ctx.store, project, spec, ctx.clock()))


@router.post("/alerts/rules/preview", responses=_CHANGES, dependencies=_change)
def preview(
    ctx: Ctx,
    project: Project,
    body: JsonBody,
    hours: Annotated[float, Query(gt=0, le=48, description="How far back.")] = 6,
) -> dict[str, Any]:
    """The rule's condition over the last `hours` (no more than 200 steps) and when it
    would have fired and resolved, without storing anything."""
    spec = parse_rule(_spec_and_version(body)[0])
    p = preview_rule(ctx.store, project, spec, ctx.clock(), hours)
    return {
        "step_s": p.step_s,
        "op": p.op,
        "threshold": p.threshold,
        "series": [
            {"labels": s.labels, "points": [[t // 10**9, v] for t, v in s.points]} for s in p.series
        ],
        "events": [
            {
                "labels": e.labels,
                "fired": iso(e.fired_ns),
                "resolved": iso(e.resolved_ns) if e.resolved_ns else None,
            }
            for e in p.events
        ],
    }


@router.post("/alerts/rules/reload", responses=_CHANGES, dependencies=_change)
def reload_rules(ctx: Ctx, project: Project) -> dict[str, Any]:
    """Load the rule files (`alert_rules_path`) again; answers their errors (a file
    that fails keeps its previous rules) and the rules now loaded from files."""
    errors = load_rule_files(ctx.store, project, ctx.config, ctx.clock())
    rules = [r for r in service.list_rules(ctx.store, project) if r.source.startswith("file:")]
    return {"errors": errors, "rules": [_rule_json(r) for r in rules]}


@router.get("/alerts/rules/{rule_id}", responses=_MISSING)
def get_rule(ctx: Ctx, project: Project, rule_id: Id) -> dict[str, Any]:
    """One rule, as listed."""
    return _rule_json(_found(service.get_rule(ctx.store, project, rule_id), "rule", rule_id))


@router.put("/alerts/rules/{rule_id}", responses={**_MISSING, **_CHANGES}, dependencies=_change)
def update_rule(ctx: Ctx, project: Project, rule_id: Id, body: JsonBody) -> dict[str, Any]:
    """Replace a rule; with `version` in the body a stale version is refused (409).
    Rules from files or SLOs are read-only (409)."""
    spec, version = _spec_and_version(body)
    r = service.update_rule(ctx.store, project, rule_id, spec, ctx.clock(), version)
    return _rule_json(_found(r, "rule", rule_id))


def _set_enabled(ctx: Ctx, project: int, rule_id: int, enabled: bool) -> dict[str, Any]:
    r = service.set_rule_enabled(ctx.store, project, rule_id, enabled, ctx.clock())
    return _rule_json(_found(r, "rule", rule_id))


@router.post(
    "/alerts/rules/{rule_id}/enable", responses={**_MISSING, **_CHANGES}, dependencies=_change
)
def enable_rule(ctx: Ctx, project: Project, rule_id: Id) -> dict[str, Any]:
    """Enable a rule (also a starter rule)."""
    return _set_enabled(ctx, project, rule_id, True)


@router.post(
    "/alerts/rules/{rule_id}/disable", responses={**_MISSING, **_CHANGES}, dependencies=_change
)
def disable_rule(ctx: Ctx, project: Project, rule_id: Id) -> dict[str, Any]:
    """Disable a rule: it is no longer evaluated."""
    return _set_enabled(ctx, project, rule_id, False)


@router.delete(
    "/alerts/rules/{rule_id}",
    status_code=204,
    responses={**_MISSING, **_CHANGES},
    dependencies=_change,
)
def delete_rule(ctx: Ctx, project: Project, rule_id: Id) -> Response:
    """Delete a rule with its alerts (its history stays). Starter rules are disabled
    instead (409), file and SLO rules are read-only (409)."""
    _found(service.delete_rule(ctx.store, project, rule_id), "rule", rule_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- alerts
def _alert_json(a: service.Alert) -> dict[str, Any]:
    return {
        "rule_id": a.rule_id,
        "rule": a.rule_name,
        "fingerprint": a.fingerprint,
        "state": a.state,
        "severity": a.severity,
        "value": a.value,
        "labels": a.labels,
        "annotations": a.annotations,
        "active_since": iso(a.active_since_ns),
        "fired": iso(a.fired_ns) if a.fired_ns else None,
        "resolved": iso(a.resolved_ns) if a.resolved_ns else None,
        "acked_by": a.acked_by or None,
        "acked": iso(a.acked_ns) if a.acked_ns else None,
        "muted": a.muted or None,
        "link": a.link,
    }


@router.get("/alerts")
def list_alerts(
    ctx: Ctx,
    project: Project,
    state: Annotated[
        list[Literal["pending", "firing", "resolved"]] | None,
        Query(description="Only these states (repeat the parameter for several)."),
    ] = None,
) -> dict[str, Any]:
    """Alert instances, firing first, then by severity and age: labels, rendered
    annotations, value, times, acknowledgement, why they are muted (`silenced by ...`,
    `inhibited by ...`) and a link to the Heron page of the instance."""
    alerts = service.list_alerts(ctx.store, project, ctx.clock(), list(state) if state else None)
    return {"alerts": [_alert_json(a) for a in alerts]}


@router.post(
    "/alerts/{rule_id}/{fingerprint}/ack",
    responses={**_MISSING, **_CHANGES},
    dependencies=_change,
)
def ack(
    ctx: Ctx,
    request: Request,
    project: Project,
    rule_id: Id,
    fingerprint: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="As listed.")],
) -> dict[str, Any]:
    """Acknowledge an alert: it is no longer escalated. Answers who and when."""
    who = _who(request)
    now = ctx.clock()
    _found(
        service.ack_alert(ctx.store, project, rule_id, fingerprint, who, now),
        "alert",
        f"{rule_id}/{fingerprint}",
    )
    return {"acked_by": who, "acked": iso(now)}


@router.get("/alerts/history")
def history(
    ctx: Ctx,
    project: Project,
    rule_id: Annotated[int | None, Query(ge=1, description="Only this rule.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 200,
) -> dict[str, Any]:
    """State changes of alert instances (pending, firing, resolved, inactive), newest
    first."""
    rows = service.alert_history(ctx.store, project, rule_id, limit)
    return {
        "history": [
            {
                "id": h.id,
                "rule_id": h.rule_id,
                "rule": h.rule_name,
                "fingerprint": h.fingerprint,
                "labels": h.labels,
                "state": h.state,
                "value": h.value,
                "at": iso(h.at_ns),
            }
            for h in rows
        ]
    }


# -------------------------------------------------------------------------- silences
def _silence_json(s: service.Silence) -> dict[str, Any]:
    return {
        "id": s.id,
        **s.spec.model_dump(mode="json"),
        "state": s.state,
        **_times(s.version, s.created_ns, s.updated_ns),
    }


@router.get("/alerts/silences")
def list_silences(ctx: Ctx, project: Project) -> dict[str, Any]:
    """Silences: active first, then pending, then expired."""
    found = service.list_silences(ctx.store, project, ctx.clock())
    return {"silences": [_silence_json(s) for s in found]}


@router.post("/alerts/silences", status_code=201, responses=_CHANGES, dependencies=_change)
def create_silence(ctx: Ctx, request: Request, project: Project, body: JsonBody) -> dict[str, Any]:
    """Silence the alerts whose labels match every matcher from `starts` to `ends`
    (`created_by` defaults to the user)."""
    spec, _ = _spec_and_version(body)
    s = service.create_silence(ctx.store, project, spec, ctx.clock(), _who(request))
    return _silence_json(s)


@router.get("/alerts/silences/{silence_id}", responses=_MISSING)
def get_silence(ctx: Ctx, project: Project, silence_id: Id) -> dict[str, Any]:
    """One silence, as listed."""
    s = service.get_silence(ctx.store, project, silence_id, ctx.clock())
    return _silence_json(_found(s, "silence", silence_id))


@router.put(
    "/alerts/silences/{silence_id}",
    responses={**_MISSING, **_CHANGES},
    dependencies=_change,
)
def update_silence(ctx: Ctx, project: Project, silence_id: Id, body: JsonBody) -> dict[str, Any]:
    """Change a silence's matchers, times or comment."""
    spec, _ = _spec_and_version(body)
    s = service.update_silence(ctx.store, project, silence_id, spec, ctx.clock())
    return _silence_json(_found(s, "silence", silence_id))


@router.delete(
    "/alerts/silences/{silence_id}",
    responses={**_MISSING, **_CHANGES},
    dependencies=_change,
)
def expire_silence(ctx: Ctx, project: Project, silence_id: Id) -> dict[str, Any]:
    """Expire a silence now (it stays listed as expired); answers it."""
    s = service.expire_silence(ctx.store, project, silence_id, ctx.clock())
    return _silence_json(_found(s, "silence", silence_id))


# -------------------------------------------------------------------------- channels
def _channel_json(c: service.Channel) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "config": c.config,
        "source": c.source,
        **_times(c.version, c.created_ns, c.updated_ns),
    }


@router.get("/alerts/channels")
def list_channels(ctx: Ctx, project: Project) -> dict[str, Any]:
    """Channels by name; secrets (a Slack URL, a password, a routing key, webhook
    header values) read `••••`."""
    return {"channels": [_channel_json(c) for c in service.list_channels(ctx.store, project)]}


@router.post("/alerts/channels", status_code=201, responses=_CHANGES, dependencies=_change)
def create_channel(ctx: Ctx, project: Project, body: JsonBody) -> dict[str, Any]:
    """Create a channel. A URL to a loopback, link-local or metadata address is refused
    (400) unless its host is in `alert_allowed_hosts`."""
    spec, _ = _spec_and_version(body)
    c = service.create_channel(
        ctx.store, project, spec, ctx.clock(), allowed_hosts=ctx.config.alert_allowed_hosts
    )
    return _channel_json(c)


@router.get("/alerts/channels/{channel_id}", responses=_MISSING)
def get_channel(ctx: Ctx, project: Project, channel_id: Id) -> dict[str, Any]:
    """One channel, secrets masked."""
    c = service.get_channel(ctx.store, project, channel_id)
    return _channel_json(_found(c, "channel", channel_id))


@router.put(
    "/alerts/channels/{channel_id}",
    responses={**_MISSING, **_CHANGES},
    dependencies=_change,
)
def update_channel(ctx: Ctx, project: Project, channel_id: Id, body: JsonBody) -> dict[str, Any]:
    """Replace a channel; a secret sent back as `••••` keeps its stored value. A channel
    that rules or SLOs name cannot be renamed (409)."""
    spec, version = _spec_and_version(body)
    c = service.update_channel(
        ctx.store,
        project,
        channel_id,
        spec,
        ctx.clock(),
        version,
        allowed_hosts=ctx.config.alert_allowed_hosts,
    )
    return _channel_json(_found(c, "channel", channel_id))


@router.delete(
    "/alerts/channels/{channel_id}",
    status_code=204,
    responses={**_MISSING, **_CHANGES},
    dependencies=_change,
)
def delete_channel(ctx: Ctx, project: Project, channel_id: Id) -> Response:
    """Delete a channel no rule or SLO names (409 lists those that do)."""
    _found(service.delete_channel(ctx.store, project, channel_id), "channel", channel_id)
    return Response(status_code=204)


def _notification_json(n: NotificationRow | service.Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "channel_id": n.channel_id,
        "channel": getattr(n, "channel", None),
        "group_key": n.group_key,
        "kind": n.kind,
        "status": n.status,
        "attempts": n.attempts,
        "next_attempt": iso(n.next_attempt_ns) if n.status == "pending" else None,
        "last_error": n.last_error or None,
        "created": iso(n.created_ns),
        "sent": iso(n.sent_ns) if n.sent_ns else None,
    }


@router.post(
    "/alerts/channels/{channel_id}/test",
    responses={**_MISSING, **_CHANGES},
    dependencies=_change,
)
def test_channel(ctx: Ctx, project: Project, channel_id: Id) -> dict[str, Any]:
    """Send a test notification now; answers it as logged (`status` sent or failed,
    `last_error` saying why)."""
    n = service.test_channel(ctx.store, project, channel_id, ctx.clock(), config=ctx.config)
    return _notification_json(_found(n, "channel", channel_id))


@router.get("/alerts/notifications")
def notifications(
    ctx: Ctx,
    project: Project,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100,
    before_id: Annotated[
        int | None, Query(ge=1, description="Older than this id (the next page).")
    ] = None,
    status: Annotated[
        Literal["pending", "sent", "failed"] | None, Query(description="Only this status.")
    ] = None,
    channel_id: Annotated[int | None, Query(ge=1, description="Only this channel.")] = None,
) -> dict[str, Any]:
    """The notification log, newest first: pending ones (with their next attempt), sent
    ones and failed ones (with the last error)."""
    rows = service.list_notifications(ctx.store, project, limit, before_id, status, channel_id)
    return {"notifications": [_notification_json(n) for n in rows]}


# ------------------------------------------------------------------------------ SLOs
def _status_json(s: SloStatus) -> dict[str, Any]:
    return {
        "good": s.good,
        "total": s.total,
        "sli": s.sli,
        "objective": s.objective,
        "budget_remaining": s.budget_remaining,
        "burn_rates": s.burn_rates,
        "burndown": [[t, b] for t, b in s.burndown],
        "firing": s.firing,
    }


def _slo_json(slo: service.Slo, status: SloStatus | None) -> dict[str, Any]:
    return {
        "id": slo.id,
        **slo.spec.model_dump(mode="json"),
        "rule_ids": slo.rule_ids,
        "status": None if status is None else _status_json(status),
        **_times(slo.version, slo.created_ns, slo.updated_ns),
    }


@router.get("/slos")
def list_slos(ctx: Ctx, project: Project) -> dict[str, Any]:
    """SLOs with their status (SLI, error budget left, burn rates, burn-down), the least
    budget left first."""
    found = service.list_slos(ctx.store, project, ctx.clock())
    return {"slos": [_slo_json(slo, status) for slo, status in found]}


@router.post("/slos", status_code=201, responses=_CHANGES, dependencies=_change)
def create_slo(ctx: Ctx, project: Project, body: JsonBody) -> dict[str, Any]:
    """Create an SLO and (unless `alerts` is false) its two burn-rate rules."""
    spec, _ = _spec_and_version(body)
    now = ctx.clock()
    slo = service.create_slo(ctx.store, project, spec, now)
    return _slo_json(slo, service.slo_state(ctx.store, project, slo, now))


@router.get("/slos/{slo_id}", responses=_MISSING)
def get_slo(ctx: Ctx, project: Project, slo_id: Id) -> dict[str, Any]:
    """One SLO with its status."""
    slo = _found(service.get_slo(ctx.store, project, slo_id), "SLO", slo_id)
    return _slo_json(slo, service.slo_state(ctx.store, project, slo, ctx.clock()))


@router.put("/slos/{slo_id}", responses={**_MISSING, **_CHANGES}, dependencies=_change)
def update_slo(ctx: Ctx, project: Project, slo_id: Id, body: JsonBody) -> dict[str, Any]:
    """Replace an SLO; its burn-rate rules follow (with `version`: 409 when stale)."""
    spec, version = _spec_and_version(body)
    now = ctx.clock()
    slo = service.update_slo(ctx.store, project, slo_id, spec, now, version)
    slo = _found(slo, "SLO", slo_id)
    return _slo_json(slo, service.slo_state(ctx.store, project, slo, now))


@router.delete(
    "/slos/{slo_id}", status_code=204, responses={**_MISSING, **_CHANGES}, dependencies=_change
)
def delete_slo(ctx: Ctx, project: Project, slo_id: Id) -> Response:
    """Delete an SLO with its burn-rate rules and their alerts."""
    _found(service.delete_slo(ctx.store, project, slo_id), "SLO", slo_id)
    return Response(status_code=204)
