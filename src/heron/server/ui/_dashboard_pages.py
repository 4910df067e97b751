"""Dashboard pages: list, view, create and edit (a JSON editor), duplicate, delete,
import (a file upload) and a service's generated default dashboard.

Changes are plain form posts (CSRF-checked by the pages router) that redirect back;
export is a link to the API's download (``/api/v1/dashboards/{id}?download=1``). A
dashboard that does not validate is shown again in the editor with the error, nothing
lost.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from heron.server import query
from heron.server.errors import NotFound
from heron.server.model.dashboard import DashboardSpec
from heron.server.query import InvalidQuery, runtime
from heron.server.ui._kit import Kit, KitDep, UiRoute
from heron.server.ui._metric_pages import panels_data
from heron.server.ui._state import UiState

router = APIRouter(route_class=UiRoute)
MAX_UPLOAD_BYTES = 1 << 20
NEW_DASHBOARD = {
    "title": "New dashboard",
    "description": "",
    "panels": [
        {
            "title": "CPU utilisation",
            "type": "line",
            "query": {"metric": runtime.PROCESS_CPU, "agg": "avg", "by": ["service"]},
            "width": 6,
        }
    ],
}


def _pretty(data: object) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def _found(kit: Kit, dashboard_id: int) -> query.Dashboard:
    d = query.get_dashboard(kit.ctx.store, kit.project, dashboard_id)
    if d is None:
        raise NotFound(f"Dashboard {dashboard_id} was not found.")
    return d


@router.get("/dashboards")
def dashboard_list(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    return kit.render(
        request,
        "dashboards.html",
        state,
        nav="dashboards",
        dashboards=query.list_dashboards(kit.ctx.store, kit.project),
        services=query.list_services(kit.ctx.store, kit.project, state.time_range),
    )


@router.get("/dashboards/default")
def default_view(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    service = request.query_params.get("service")
    if not service:
        raise InvalidQuery("the 'service' parameter is required")
    spec = runtime.default_dashboard(service)
    return _view(kit, request, state, spec, None, {"service": service})


@router.get("/dashboards/new")
def new_form(kit: KitDep, request: Request) -> Response:
    return _editor(kit, request, kit.state(request), None, _pretty(NEW_DASHBOARD), "")


@router.post("/dashboards/new")
async def create(kit: KitDep, request: Request) -> Response:
    return await _save(kit, request, None)


@router.post("/dashboards/import")
async def import_file(kit: KitDep, request: Request) -> Response:
    async with request.form() as form:
        upload = form.get("file")
        text = form.get("json")
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(MAX_UPLOAD_BYTES + 1)
            if len(raw) > MAX_UPLOAD_BYTES:
                raise InvalidQuery("the dashboard file is larger than 1 MiB")
            text = raw.decode("utf-8", "replace")
    if not isinstance(text, str) or not text.strip():
        raise InvalidQuery("choose a dashboard JSON file to import")
    return await _create_from(kit, request, text)


@router.get("/dashboards/{dashboard_id}")
def view(kit: KitDep, request: Request, dashboard_id: int) -> Response:
    d = _found(kit, dashboard_id)
    return _view(kit, request, kit.state(request), d.spec, d, {})


@router.get("/dashboards/{dashboard_id}/edit")
def edit_form(kit: KitDep, request: Request, dashboard_id: int) -> Response:
    d = _found(kit, dashboard_id)
    text = _pretty({**d.spec.model_dump(mode="json"), "version": d.version})
    return _editor(kit, request, kit.state(request), d, text, "")


@router.post("/dashboards/{dashboard_id}/edit")
async def update(kit: KitDep, request: Request, dashboard_id: int) -> Response:
    return await _save(kit, request, dashboard_id)


@router.post("/dashboards/{dashboard_id}/duplicate")
async def duplicate(kit: KitDep, request: Request, dashboard_id: int) -> Response:
    d = await run_in_threadpool(
        query.duplicate_dashboard,
        kit.ctx.store,
        kit.project,
        dashboard_id,
        now_ns=kit.ctx.clock(),
    )
    if d is None:
        raise NotFound(f"Dashboard {dashboard_id} was not found.")
    return RedirectResponse(kit.state(request).url(f"/dashboards/{d.id}"), status_code=303)


@router.post("/dashboards/{dashboard_id}/delete")
async def delete(kit: KitDep, request: Request, dashboard_id: int) -> Response:
    await run_in_threadpool(query.delete_dashboard, kit.ctx.store, kit.project, dashboard_id)
    return RedirectResponse(kit.state(request).url("/dashboards"), status_code=303)


# ------------------------------------------------------------------ helpers


def _view(
    kit: Kit,
    request: Request,
    state: UiState,
    spec: DashboardSpec,
    stored: query.Dashboard | None,
    params: dict[str, str],
) -> Response:
    return kit.render(
        request,
        "dashboard.html",
        state,
        nav="dashboards",
        page_params=params,
        spec=spec,
        dashboard=stored,
        spec_json=_pretty(spec.model_dump(mode="json")),
        panels=panels_data(state, list(spec.panels)),
    )


def _editor(
    kit: Kit,
    request: Request,
    state: UiState,
    stored: query.Dashboard | None,
    text: str,
    error: str,
) -> Response:
    return kit.render(
        request,
        "dashboard_edit.html",
        state,
        nav="dashboards",
        status=400 if error else 200,
        dashboard=stored,
        text=text,
        error=error,
    )


def _parse(text: str) -> DashboardSpec:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise InvalidQuery(f"not JSON: {err}") from None
    return query.parse_dashboard(data)


async def _create_from(kit: Kit, request: Request, text: str) -> Response:
    state = kit.state(request)
    try:
        spec = _parse(text)
    except InvalidQuery as err:
        return _editor(kit, request, state, None, text, str(err))
    d = await run_in_threadpool(
        query.create_dashboard, kit.ctx.store, kit.project, spec, now_ns=kit.ctx.clock()
    )
    return RedirectResponse(state.url(f"/dashboards/{d.id}"), status_code=303)


async def _save(kit: Kit, request: Request, dashboard_id: int | None) -> Response:
    form = await request.form()
    text = form.get("json")
    text = text if isinstance(text, str) else ""
    if dashboard_id is None:
        return await _create_from(kit, request, text)
    state = kit.state(request)
    stored = _found(kit, dashboard_id)
    try:
        spec = _parse(text)
        d = await run_in_threadpool(
            query.update_dashboard,
            kit.ctx.store,
            kit.project,
            dashboard_id,
            spec,
            now_ns=kit.ctx.clock(),
        )
    except InvalidQuery as err:
        return _editor(kit, request, state, stored, text, str(err))
    except query.VersionConflict as err:
        msg = (
            f"Someone saved this dashboard meanwhile (now version {err.current}). "
            "Your text is below: reload the page to see theirs, then apply your change again."
        )
        return _editor(kit, request, state, stored, text, msg)
    if d is None:
        raise NotFound(f"Dashboard {dashboard_id} was not found.")
    return RedirectResponse(state.url(f"/dashboards/{d.id}"), status_code=303)
