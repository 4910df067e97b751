"""N+1 detection: the same query, or the same outgoing call, repeated under one parent.

Within one trace, the spans that share a parent and a fingerprint — the SQL fingerprint
of a database span, or ``METHOD url-template`` of an outgoing HTTP call — form a *repeat
group*. Groups of at least ``min_count`` spans (5 by default) are recorded, one row per
trace, parent and fingerprint in ``n_plus_one``, with the endpoint they ran under.
Whether a group is a finding (its spans took ≥ 50 ms in all, by default) is decided when
reading, so the time threshold is a query parameter and needs no re-detection.

Detection re-reads a recent window on each run and replaces the rows of the groups that
start in it: running twice, or a span arriving late, never duplicates a group. Groups
are read from ``margin_ns`` before the window so that a group which started before the
window (recorded by an earlier run) is recognised and left alone, not recorded again cut
short.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from heron.server.analyze._entry import entry_endpoints
from heron.server.analyze.fingerprint import display_sql, http_fingerprint, url_template

__all__ = [
    "DEFAULT_MIN_COUNT",
    "DEFAULT_MIN_TOTAL_MS",
    "MAX_TOTAL_NS",
    "RepeatGroup",
    "db_groups",
    "entry_keys",
    "http_groups",
    "http_target",
    "with_endpoints",
]

DEFAULT_MIN_COUNT = 5
DEFAULT_MIN_TOTAL_MS = 50.0


@dataclass(frozen=True, slots=True)
class RepeatGroup:
    """``count`` spans with one fingerprint under one parent span of one trace."""

    project_id: int
    start_ns: int
    trace_id: bytes
    parent_id: int
    service: str
    environment: str
    endpoint: str
    kind: str  # "db" or "http"
    fingerprint: int
    db_system: str | None
    display: str
    count: int
    total_ns: int
    max_ns: int
    example_span_id: int


# total_ns saturates: a few (valid) spans lasting centuries must not fail the analysis.
MAX_TOTAL_NS = 2**63 - 1


def http_target(
    name: str,
    url_full: str | None,
    http_url: str | None,
    address: str | None,
    port: str | None,
    path: str | None,
    target: str | None,
) -> str:
    """The templated URL of an outgoing call from whichever attributes the SDK set."""
    url = url_full or http_url
    if url:
        return url_template(url)
    if address:
        where = f"{address}:{port}" if port else address
        return url_template(f"//{where}{path or target or ''}")
    return url_template(path or target or name)


def db_groups(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Repeat groups of database queries from the store's grouped rows (``project_id,
    start_ns, trace_id, parent_id, service, environment, fingerprint, db_system,
    statement, count, total_ns, max_ns, example_span_id``), each with a readable form."""
    displays: dict[int, str] = {}
    out = []
    for (
        project_id,
        start,
        trace_id,
        parent,
        service,
        env,
        fp,
        system,
        statement,
        n,
        total,
        mx,
        example,
    ) in rows:
        if fp not in displays:
            displays[fp] = display_sql(statement or "", system)
        out.append(
            {
                "project_id": project_id,
                "start_ns": start,
                "trace_id": trace_id,
                "parent_id": parent,
                "service": service,
                "environment": env,
                "kind": "db",
                "fingerprint": fp,
                "db_system": system,
                "display": displays[fp],
                "count": n,
                "total_ns": total,
                "max_ns": mx,
                "example_span_id": example,
            }
        )
    return out


def http_groups(rows: Iterable[Sequence[Any]], lo_ns: int, min_count: int) -> list[dict[str, Any]]:
    """Repeat groups of outgoing calls (same ``METHOD url-template`` under one parent) of
    at least ``min_count`` spans starting at or after ``lo_ns``, from client spans
    (``project_id, trace_id, parent_id, span_id, start_ns, duration_ns, service,
    environment, method, name`` and the URL attributes :func:`http_target` reads)."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        project_id, trace_id, parent, span_id, start, dur, service, env, method, name = row[:10]
        display = f"{method} {http_target(name, *row[10:])}"
        key = (project_id, trace_id, parent, display)
        g = groups.get(key)
        if g is None:
            groups[key] = {
                "project_id": project_id,
                "start_ns": start,
                "trace_id": trace_id,
                "parent_id": parent,
                "service": service,
                "environment": env,
                "kind": "http",
                "fingerprint": http_fingerprint(method, display.partition(" ")[2]),
                "db_system": None,
                "display": display,
                "count": 1,
                "total_ns": dur,
                "max_ns": dur,
                "example_span_id": span_id,
            }
            continue
        g["count"] += 1
        g["total_ns"] = min(g["total_ns"] + dur, MAX_TOTAL_NS)
        g["max_ns"] = max(g["max_ns"], dur)
        if start < g["start_ns"]:
            g["start_ns"], g["example_span_id"] = start, span_id
    return [g for g in groups.values() if g["count"] >= min_count and g["start_ns"] >= lo_ns]


def entry_keys(found: Sequence[dict[str, Any]]) -> list[tuple[int, bytes, str, int]]:
    """``(project_id, trace_id, service, start_ns)`` of each group, to find its endpoint."""
    return [(g["project_id"], g["trace_id"], g["service"], g["start_ns"]) for g in found]


def with_endpoints(
    found: Sequence[dict[str, Any]], entries: Iterable[tuple[int, bytes, str, int, str]]
) -> list[RepeatGroup]:
    """The groups, each with the endpoint it ran under (from its trace's entry spans:
    ``(project_id, trace_id, service, start_ns, endpoint)``)."""
    endpoints = entry_endpoints(entries, entry_keys(found))
    return [RepeatGroup(endpoint=e, **g) for g, e in zip(found, endpoints, strict=True)]
