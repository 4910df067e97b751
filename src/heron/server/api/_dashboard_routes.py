"""Dashboards: ``/api/v1/dashboards`` — list, read (= export), create (= import),
update, duplicate, delete, and a service's generated default dashboard.

The body of a create or update is the dashboard JSON of ``model/dashboard.py``; what a
GET answers is the same JSON plus ``id``, ``version``, ``created`` and ``updated``, so a
download can be posted back as it is. Changes need the API token, or a session with the
page's CSRF token in ``X-CSRF-Token``. No ``from __future__ import annotations``:
FastAPI reads parameter annotations at runtime.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from starlette.responses import JSONResponse, Response

from heron.server import query
from heron.server.api._params import Project
from heron.server.api._route import ApiRoute
from heron.server.api._schemas import ErrorBody
from heron.server.auth import verify_csrf
from heron.server.context import Ctx
from heron.server.errors import Conflict, NotFound
from heron.server.model.dashboard import DashboardSpec
from heron.server.query.runtime import default_dashboard

DashboardId = Annotated[int, Path(ge=1, description="The dashboard's id, as listed.")]
# The dashboard JSON's schema, documented once: the responses name the model (which puts
# it in the OpenAPI components) and the request bodies refer to it. Bodies are validated
# by query.parse_dashboard, whose 400 names every wrong field.
_SCHEMA_REF = {"$ref": "#/components/schemas/DashboardSpec"}


def _json_body() -> dict[str, Any]:
    """A fresh ``openapi_extra`` each time: FastAPI merges into it in place."""
    return {
        "requestBody": {
            "required": True,
            "description": "The dashboard JSON (docs/dashboards.md); an export is accepted as is.",
            "content": {"application/json": {"schema": dict(_SCHEMA_REF)}},
        }
    }


_DOC = {"model": DashboardSpec, "description": "The dashboard (plus id, version, times)."}
_CHANGES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Session without a CSRF token."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such dashboard."},
}


async def _csrf_unless_bearer(request: Request) -> None:
    """Bearer tokens are never sent by a browser on its own; cookies are."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # the router's dependency has already checked it
    await verify_csrf(request)


router = APIRouter(route_class=ApiRoute, tags=["dashboards"])
_change = [Depends(_csrf_unless_bearer)]


def _found(d: query.Dashboard | None, dashboard_id: int) -> query.Dashboard:
    if d is None:
        raise NotFound(f"dashboard {dashboard_id} not found")
    return d


@router.get("/dashboards")
def list_dashboards(ctx: Ctx, project: Project) -> dict[str, Any]:
    """The project's dashboards by title: id, title, description, panel count, version
    and when each was last updated."""
    rows = query.list_dashboards(ctx.store, project)
    return {
        "dashboards": [
            {
                "id": d.id,
                "title": d.title,
                "description": d.spec.description,
                "panels": len(d.spec.panels),
                "version": d.version,
                "updated": query.iso(d.updated_ns),
            }
            for d in rows
        ]
    }


@router.get("/dashboards/default", responses={200: _DOC})
def service_default(
    service: Annotated[str, Query(min_length=1, max_length=256, description="The service.")],
) -> dict[str, Any]:
    """The dashboard generated for a service (its RED figures and runtime charts); not
    stored: post it to /dashboards to keep an editable copy."""
    return default_dashboard(service).model_dump(mode="json")


@router.post(
    "/dashboards",
    status_code=201,
    responses={201: _DOC, **_CHANGES},
    dependencies=_change,
    openapi_extra=_json_body(),
)
def create(ctx: Ctx, project: Project, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Create a dashboard (this is also the import of an exported one); answers it as
    stored, with its new id and version 1."""
    spec = query.parse_dashboard(body)
    return query.create_dashboard(ctx.store, project, spec, now_ns=ctx.clock()).export()


@router.get("/dashboards/{dashboard_id}", responses={200: _DOC, **_NOT_FOUND})
def get(
    ctx: Ctx,
    project: Project,
    dashboard_id: DashboardId,
    download: Annotated[
        bool, Query(description="Answer as a file to save (Content-Disposition).")
    ] = False,
) -> Response:
    """The dashboard's JSON (the export: post it to /dashboards to import it)."""
    d = _found(query.get_dashboard(ctx.store, project, dashboard_id), dashboard_id)
    headers = {}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="dashboard-{d.id}.json"'
    return JSONResponse(d.export(), headers=headers)


@router.put(
    "/dashboards/{dashboard_id}",
    responses={
        200: _DOC,
        **_NOT_FOUND,
        **_CHANGES,
        409: {"model": ErrorBody, "description": "Stale version."},
    },
    dependencies=_change,
    openapi_extra=_json_body(),
)
def update(
    ctx: Ctx,
    project: Project,
    dashboard_id: DashboardId,
    body: Annotated[Any, Body()],
) -> dict[str, Any]:
    """Replace a dashboard. With `version` in the body, the update is refused (409) when
    the stored version differs, so two editors do not overwrite each other unseen."""
    spec = query.parse_dashboard(body)
    try:
        d = query.update_dashboard(ctx.store, project, dashboard_id, spec, now_ns=ctx.clock())
    except query.VersionConflict as err:
        raise Conflict(
            f"dashboard {dashboard_id} was changed meanwhile (now version {err.current}); "
            "reload it and apply your change again"
        ) from None
    return _found(d, dashboard_id).export()


@router.post(
    "/dashboards/{dashboard_id}/duplicate",
    status_code=201,
    responses={**_NOT_FOUND, **_CHANGES},
    dependencies=_change,
)
def duplicate(ctx: Ctx, project: Project, dashboard_id: DashboardId) -> dict[str, Any]:
    """A copy of the dashboard titled "Copy of …", with an id of its own."""
    d = query.duplicate_dashboard(ctx.store, project, dashboard_id, now_ns=ctx.clock())
    return _found(d, dashboard_id).export()


@router.delete(
    "/dashboards/{dashboard_id}",
    status_code=204,
    responses={**_NOT_FOUND, **_CHANGES},
    dependencies=_change,
)
def delete(ctx: Ctx, project: Project, dashboard_id: DashboardId) -> Response:
    """Delete a dashboard."""
    if not query.delete_dashboard(ctx.store, project, dashboard_id):
        raise NotFound(f"dashboard {dashboard_id} not found")
    return Response(status_code=204)
