"""SLOs as the API and UI see them: stored with their generated burn-rate rules (source
``slo:<id>``), which follow every change of the SLO and go with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from heron.server.alerting.slo import SloStatus, burn_rules, slo_status
from heron.server.model.alerting import SloSpec, SpecError, parse_slo
from heron.server.store.alerting import ConfigRow, NameTaken
from heron.server.store.base import Store


@dataclass(frozen=True, slots=True)
class Slo:
    """A stored SLO; ``rule_ids`` are its generated burn-rate rules (none when
    ``spec.alerts`` is off)."""

    id: int
    name: str
    spec: SloSpec
    version: int
    created_ns: int
    updated_ns: int
    rule_ids: list[int]


def _slo(store: Store, row: ConfigRow) -> Slo:
    source = f"slo:{row.id}"
    rules = store.state.list_alert_config(row.project_id, "rule")
    owned = [r.id for r in rules if r.source == source]
    spec = SloSpec.model_validate_json(row.spec)
    return Slo(row.id, row.name, spec, row.version, row.created_ns, row.updated_ns, owned)


def _check_channels(store: Store, project_id: int, spec: SloSpec) -> None:
    names = {r.name for r in store.state.list_alert_config(project_id, "channel")}
    for i, name in enumerate(spec.channels):
        if name not in names:
            raise SpecError(f"invalid slo: channels.{i}: no channel named {name!r}")


def _write_rules(store: Store, project_id: int, slo_id: int, spec: SloSpec, now_ns: int) -> None:
    items = [(r.name, r.to_json()) for r in burn_rules(slo_id, spec)] if spec.alerts else []
    store.state.replace_alert_config_source(project_id, "rule", f"slo:{slo_id}", items, now_ns)


def list_slos(store: Store, project_id: int, now_ns: int) -> list[tuple[Slo, SloStatus]]:
    """Every SLO with its status, the least error budget left first."""
    found = [
        (slo, slo_state(store, project_id, slo, now_ns))
        for slo in (_slo(store, r) for r in store.state.list_alert_config(project_id, "slo"))
    ]
    return sorted(found, key=lambda p: (p[1].budget_remaining, p[0].name))


def get_slo(store: Store, project_id: int, slo_id: int) -> Slo | None:
    row = store.state.get_alert_config(project_id, "slo", slo_id)
    return None if row is None else _slo(store, row)


def slo_state(store: Store, project_id: int, slo: Slo, now_ns: int) -> SloStatus:
    """The SLO's SLI, error budget, burn rates and burn-down now."""
    return slo_status(store, project_id, slo.id, slo.spec, now_ns)


def create_slo(store: Store, project_id: int, data: Any, now_ns: int) -> Slo:
    """Store an SLO and its burn-rate rules. Raises SpecError, NameTaken (of the SLO or
    of a generated rule: then nothing is stored)."""
    spec = parse_slo(data)
    _check_channels(store, project_id, spec)
    row = store.state.create_alert_config(
        project_id, "slo", spec.name, spec.to_json(), "api", now_ns
    )
    try:
        _write_rules(store, project_id, row.id, spec, now_ns)
    except NameTaken:
        store.state.delete_alert_config(project_id, "slo", row.id)
        raise
    return _slo(store, row)


def update_slo(
    store: Store,
    project_id: int,
    slo_id: int,
    data: Any,
    now_ns: int,
    expected_version: int | None = None,
) -> Slo | None:
    """Replace an SLO and regenerate its rules (ids kept for unchanged names). Raises
    SpecError, NameTaken (then the SLO is put back as it was), VersionConflict."""
    old = store.state.get_alert_config(project_id, "slo", slo_id)
    if old is None:
        return None
    spec = parse_slo(data)
    _check_channels(store, project_id, spec)
    row = store.state.update_alert_config(
        project_id, "slo", slo_id, spec.name, spec.to_json(), now_ns, expected_version
    )
    if row is None:
        return None
    try:
        _write_rules(store, project_id, slo_id, spec, now_ns)
    except NameTaken:
        store.state.update_alert_config(project_id, "slo", slo_id, old.name, old.spec, now_ns)
        raise
    return _slo(store, row)


def delete_slo(store: Store, project_id: int, slo_id: int) -> bool:
    """Delete an SLO and its rules (with their alert instances)."""
    if store.state.get_alert_config(project_id, "slo", slo_id) is None:
        return False
    store.state.replace_alert_config_source(project_id, "rule", f"slo:{slo_id}", [], 0)
    return store.state.delete_alert_config(project_id, "slo", slo_id)
