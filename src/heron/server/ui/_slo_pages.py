"""SLO pages: the list sorted by error budget remaining (least first), an SLO's page with
its budget burn-down chart and burn rates, and a JSON editor (creating an SLO also
creates its burn-rate alert rules)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from heron.server.alerting import service
from heron.server.alerting.slo import SloStatus
from heron.server.errors import NotFound
from heron.server.model.alerting import SloSpec
from heron.server.ui._alert_pages import (
    EDIT_ERRORS,
    back,
    edit_error,
    form_text,
    parse_json,
    pretty,
)
from heron.server.ui._kit import Kit, KitDep, UiRoute

router = APIRouter(route_class=UiRoute)
BURN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
NEW_SLO: dict[str, Any] = {
    "name": "Checkout availability",
    "service": "demo-shop",
    "endpoint": None,
    "sli": "availability",
    "objective": 99.9,
    "window_days": 30,
    "channels": [],
}


@router.get("/slos")
def slo_list(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    slos = service.list_slos(kit.ctx.store, kit.project, kit.ctx.clock())
    return kit.render(request, "slos.html", state, nav="slos", slos=slos)


@router.get("/slos/new")
def new_slo_form(kit: KitDep, request: Request) -> Response:
    return _editor(kit, request, None, pretty(NEW_SLO), "")


@router.post("/slos/new")
async def create_slo(kit: KitDep, request: Request) -> Response:
    return await _save(kit, request, None)


def _found(kit: Kit, slo_id: int) -> service.Slo:
    slo = service.get_slo(kit.ctx.store, kit.project, slo_id)
    if slo is None:
        raise NotFound(f"SLO {slo_id} was not found.")
    return slo


@router.get("/slos/{slo_id}")
def slo_page(kit: KitDep, request: Request, slo_id: int) -> Response:
    state = kit.state(request)
    slo = _found(kit, slo_id)
    now_ns = kit.ctx.clock()
    current = service.slo_state(kit.ctx.store, kit.project, slo, now_ns)
    rules = [
        r for r in service.list_rules(kit.ctx.store, kit.project) if r.source == f"slo:{slo_id}"
    ]
    return kit.render(
        request,
        "slo.html",
        state,
        nav="slos",
        slo=slo,
        slo_status=current,
        windows=BURN_WINDOWS,
        rules=rules,
        burndown=burndown_chart(current, slo.spec, now_ns),
    )


@router.get("/slos/{slo_id}/edit")
def edit_form(kit: KitDep, request: Request, slo_id: int) -> Response:
    slo = _found(kit, slo_id)
    text = pretty({**slo.spec.model_dump(mode="json"), "version": slo.version})
    return _editor(kit, request, slo, text, "")


@router.post("/slos/{slo_id}/edit")
async def update_slo(kit: KitDep, request: Request, slo_id: int) -> Response:
    return await _save(kit, request, slo_id)


@router.post("/slos/{slo_id}/delete")
async def delete_slo(kit: KitDep, request: Request, slo_id: int) -> Response:
    await run_in_threadpool(service.delete_slo, kit.ctx.store, kit.project, slo_id)
    return back(kit, request, "/slos")


def burndown_chart(status: SloStatus, spec: SloSpec, now_ns: int) -> dict[str, Any]:
    """Chart data for alerts.js: budget remaining (percent of the budget) over the SLO's
    window, which starts with the whole budget (the x axis spans the whole window)."""
    hi = now_ns // 10**9
    lo = hi - spec.window_days * 86400
    # A point closes its step; the current step's closes at "now" (not after it).
    points = [(min(t, hi), round(v * 100, 3)) for t, v in status.burndown if t > lo]
    points = [(lo, 100.0), *points]
    return {"t": [t for t, _ in points], "values": [v for _, v in points], "lo": lo, "hi": hi}


def _editor(kit: Kit, request: Request, slo: service.Slo | None, text: str, error: str) -> Response:
    return kit.render(
        request,
        "alert_edit.html",
        kit.state(request),
        nav="slos",
        tab="",
        status=400 if error else 200,
        what="slo",
        title=f"Edit SLO {slo.spec.name}" if slo else "New SLO",
        action=f"/slos/{slo.id}/edit" if slo else "/slos/new",
        cancel=f"/slos/{slo.id}" if slo else "/slos",
        text=text,
        error=error,
        hint=(
            "sli is availability (good = not an error) or latency (good = not an error and "
            "faster than threshold_ms). objective is a percentage over window_days (7, 28 or "
            "30). Saving creates its burn-rate alert rules (page: critical, ticket: "
            "warning) notifying channels, unless alerts is false."
        ),
    )


async def _save(kit: Kit, request: Request, slo_id: int | None) -> Response:
    f = await form_text(request, "json")
    slo = _found(kit, slo_id) if slo_id is not None else None
    now = kit.ctx.clock()
    try:
        data = parse_json(f["json"])
        saved: service.Slo | None
        if slo_id is None:
            saved = await run_in_threadpool(
                service.create_slo, kit.ctx.store, kit.project, data, now
            )
        else:
            version = data.pop("version", None) if isinstance(data, dict) else None
            saved = await run_in_threadpool(
                service.update_slo, kit.ctx.store, kit.project, slo_id, data, now, version
            )
    except EDIT_ERRORS as err:
        return _editor(kit, request, slo, f["json"], edit_error(err))
    if saved is None:
        raise NotFound(f"SLO {slo_id} was not found.")
    return back(kit, request, f"/slos/{saved.id}")
