"""Dashboards kept in the state store: list, read, create, update, duplicate, delete.

The spec is validated (``model/dashboard.DashboardSpec``) before it reaches the store,
which keeps it as JSON text; rows are parsed back with the same model. A change of the
format must therefore read every version it ever wrote (``heron_dashboard`` names it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from heron.server.model.dashboard import DashboardSpec
from heron.server.query._common import InvalidQuery
from heron.server.query._timerange import iso
from heron.server.store.base import Store
from heron.server.store.state import DashboardRow, VersionConflict

__all__ = [
    "Dashboard",
    "VersionConflict",
    "create_dashboard",
    "delete_dashboard",
    "duplicate_dashboard",
    "get_dashboard",
    "list_dashboards",
    "parse_dashboard",
    "update_dashboard",
]


@dataclass(frozen=True, slots=True)
class Dashboard:
    id: int
    spec: DashboardSpec
    version: int
    created_ns: int
    updated_ns: int

    @property
    def title(self) -> str:
        return self.spec.title

    def export(self) -> dict[str, Any]:
        """The importable JSON: the spec plus id, version and times (ignored on import)."""
        return {
            **self.spec.model_dump(mode="json"),
            "id": self.id,
            "version": self.version,
            "created": iso(self.created_ns),
            "updated": iso(self.updated_ns),
        }


def parse_dashboard(data: Any) -> DashboardSpec:
    """A spec from JSON data; InvalidQuery (→ 400) naming each field that is wrong."""
    try:
        return DashboardSpec.model_validate(data)
    except ValidationError as err:
        raise InvalidQuery(describe(err)) from None


def describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False)[:10]:
        loc = [str(p) for p in e["loc"]]
        if "query" in loc[:-1]:  # drop the union's tag: panels.0.query.agg
            at = loc.index("query") + 1
            loc = loc[:at] + loc[at + 1 :] if loc[at] in ("metric", "red") else loc
        where = ".".join(loc) or "dashboard"
        parts.append(f"{where}: {e['msg']}")
    return "invalid dashboard: " + "; ".join(parts)


def _dashboard(row: DashboardRow) -> Dashboard:
    return Dashboard(
        row.id,
        DashboardSpec.model_validate_json(row.spec),
        row.version,
        row.created_ns,
        row.updated_ns,
    )


def list_dashboards(store: Store, project_id: int) -> list[Dashboard]:
    return [_dashboard(r) for r in store.state.list_dashboards(project_id)]


def get_dashboard(store: Store, project_id: int, dashboard_id: int) -> Dashboard | None:
    row = store.state.get_dashboard(project_id, dashboard_id)
    return _dashboard(row) if row else None


def create_dashboard(
    store: Store, project_id: int, spec: DashboardSpec, *, now_ns: int
) -> Dashboard:
    return _dashboard(store.state.create_dashboard(project_id, spec.title, spec.to_json(), now_ns))


def update_dashboard(
    store: Store,
    project_id: int,
    dashboard_id: int,
    spec: DashboardSpec,
    *,
    now_ns: int,
) -> Dashboard | None:
    """Replace a dashboard; None if absent. When ``spec.version`` is given it must be the
    stored version, else VersionConflict (someone saved in between)."""
    row = store.state.update_dashboard(
        project_id, dashboard_id, spec.title, spec.to_json(), now_ns, spec.version
    )
    return _dashboard(row) if row else None


def duplicate_dashboard(
    store: Store, project_id: int, dashboard_id: int, *, now_ns: int
) -> Dashboard | None:
    """A new dashboard copied from one, titled "Copy of …"; None if there is none."""
    found = get_dashboard(store, project_id, dashboard_id)
    if found is None:
        return None
    title = f"Copy of {found.spec.title}"[:200]
    return create_dashboard(
        store, project_id, found.spec.model_copy(update={"title": title}), now_ns=now_ns
    )


def delete_dashboard(store: Store, project_id: int, dashboard_id: int) -> bool:
    return store.state.delete_dashboard(project_id, dashboard_id)
