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

import pyarrow as pa

from heron.server.analyze._entry import TRACE_KEY_SQL, entry_endpoints
from heron.server.analyze.fingerprint import display_sql, http_fingerprint, url_template
from heron.server.store.base import Store

__all__ = [
    "DEFAULT_MIN_COUNT",
    "DEFAULT_MIN_TOTAL_MS",
    "RepeatGroup",
    "detect_repeats",
    "http_target",
    "replace_repeats",
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


_COLUMNS = [
    ("project_id", pa.int32()),
    ("start_ns", pa.int64()),
    ("trace_id", pa.binary()),
    ("parent_id", pa.uint64()),
    ("service", pa.string()),
    ("environment", pa.string()),
    ("endpoint", pa.string()),
    ("kind", pa.string()),
    ("fingerprint", pa.uint64()),
    ("db_system", pa.string()),
    ("display", pa.string()),
    ("count", pa.uint32()),
    ("total_ns", pa.int64()),
    ("max_ns", pa.int64()),
    ("example_span_id", pa.uint64()),
]
_SCHEMA = pa.schema(_COLUMNS)
# total_ns saturates: a few (valid) spans lasting centuries must not fail the analysis.
MAX_TOTAL_NS = 2**63 - 1

# Grouped by the trace id's 64-bit hash (with the parent's id): cheaper than the BLOB.
# Two passes: the groups of min_count or more are found from four integers per span;
# only their spans are then read in full. One pass carrying every span's strings held
# about 500 bytes per database span of the window (240 MiB for 460k spans), 6x more.
_DB_GROUPS_SQL = f"""
WITH big AS (
    SELECT project_id, {TRACE_KEY_SQL} AS trace_key, parent_id, db_fingerprint
    FROM spans
    WHERE start_ns >= ? AND db_fingerprint IS NOT NULL AND parent_id <> 0
    GROUP BY ALL
    HAVING count(*) >= ?
)
SELECT s.project_id, min(s.start_ns) AS start_ns, any_value(s.trace_id), s.parent_id,
       any_value(s.service), any_value(s.environment), s.db_fingerprint,
       any_value(s.db_system), any_value(s.db_statement), count(*)::BIGINT,
       least(sum(s.duration_ns), {MAX_TOTAL_NS})::BIGINT, max(s.duration_ns),
       arg_min(s.span_id, s.start_ns)
FROM (SELECT *, {TRACE_KEY_SQL} AS trace_key FROM spans WHERE start_ns >= ?) s
SEMI JOIN big b
  ON s.project_id = b.project_id AND s.trace_key = b.trace_key
 AND s.parent_id = b.parent_id AND s.db_fingerprint = b.db_fingerprint
GROUP BY s.project_id, s.trace_key, s.parent_id, s.db_fingerprint
HAVING min(s.start_ns) >= ?
"""  # noqa: S608 - constants only

# Outgoing HTTP calls: client spans with a method and no statement, under parents that
# have at least min_count of them; their URLs are templated in Python.
_HTTP_ATTRS = ("url.full", "http.url", "server.address", "server.port", "url.path", "http.target")
_HTTP_SPANS_SQL = (
    "SELECT project_id, trace_id, parent_id, span_id, start_ns, duration_ns, service, "  # noqa: S608 - constants only
    "environment, http_method, name, "
    + ", ".join(f"json_extract_string(attributes, '$.\"{k}\"')" for k in _HTTP_ATTRS)
    + """
FROM (
    SELECT *, count(*) OVER (PARTITION BY project_id, hash(trace_id), parent_id) AS siblings
    FROM spans
    WHERE start_ns >= ? AND kind = 3 AND http_method IS NOT NULL
      AND db_statement IS NULL AND parent_id <> 0
)
WHERE siblings >= ?
"""
)


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


def _db_groups(store: Store, since_ns: int, lo_ns: int, min_count: int) -> list[dict[str, Any]]:
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
    ) in store.read(_DB_GROUPS_SQL, [since_ns, min_count, since_ns, lo_ns]):
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


def _http_groups(store: Store, since_ns: int, lo_ns: int, min_count: int) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in store.read(_HTTP_SPANS_SQL, [since_ns, min_count]):
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


def detect_repeats(
    store: Store, lo_ns: int, *, margin_ns: int, min_count: int = DEFAULT_MIN_COUNT
) -> list[RepeatGroup]:
    """Every repeat group starting at or after ``lo_ns`` (reads only; no writes)."""
    since = lo_ns - margin_ns
    found = _db_groups(store, since, lo_ns, min_count) + _http_groups(
        store, since, lo_ns, min_count
    )
    keys = [(g["project_id"], g["trace_id"], g["service"], g["start_ns"]) for g in found]
    endpoints = entry_endpoints(store, since - margin_ns, keys)
    return [RepeatGroup(endpoint=e, **g) for g, e in zip(found, endpoints, strict=True)]


def replace_repeats(con: Any, lo_ns: int, groups: Sequence[RepeatGroup]) -> None:
    """On the writer: the groups starting at or after ``lo_ns`` become exactly ``groups``."""
    con.execute("DELETE FROM n_plus_one WHERE start_ns >= ?", [lo_ns])
    if groups:
        con.register("n_plus_one_new", _to_arrow(groups))
        try:
            con.execute("INSERT INTO n_plus_one SELECT * FROM n_plus_one_new")
        finally:
            con.unregister("n_plus_one_new")


def _to_arrow(groups: Iterable[RepeatGroup]) -> pa.Table:
    rows = list(groups)
    return pa.table(
        {name: [getattr(g, name) for g in rows] for name, _ in _COLUMNS}, schema=_SCHEMA
    )
