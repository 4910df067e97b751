"""Which endpoint a span ran under: the entry span (server/consumer span or root) above it.

A database or outgoing-HTTP span does not know its endpoint when it arrives; this module
finds it afterwards. The rule, the same in SQL (an ASOF join, for rollups over many
spans) and in Python (for a few groups): among the entry spans of the span's trace and
service that started no later than the span, the latest. That is the innermost request
of the service that issued the call, since a service's spans nest in time inside the
request that caused them (and come from one clock). A span whose service has no entry
span in the trace (not arrived yet, or not sampled) has the endpoint ''.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from heron.server.model.span import ENDPOINT_SQL, ENTRY_SQL
from heron.server.store.base import Store

# The trace id hashed to 64 bits for joins: an ASOF join on it is several times faster
# than on the 16-byte BLOB, and a collision needs the same service too.
TRACE_KEY_SQL = "hash(trace_id)"


def asof_endpoint_sql(child: str, entries: str) -> str:
    """A FROM clause giving relation ``child`` (alias ``c``) an endpoint: select
    ``coalesce(e.endpoint, '')``.

    ``child`` needs ``project_id``, ``trace_key`` (:data:`TRACE_KEY_SQL`), ``service``
    and ``start_ns``; ``entries`` is :data:`ENTRIES_SQL`. Both are constants.
    """
    return (
        f"{child} c ASOF LEFT JOIN {entries} e ON c.project_id = e.project_id "
        "AND c.trace_key = e.trace_key AND c.service = e.service AND c.start_ns >= e.e_start"
    )


ENTRIES_SQL = (
    f"SELECT project_id, {TRACE_KEY_SQL} AS trace_key, trace_id, service, "  # noqa: S608 - constants only
    f"start_ns AS e_start, {ENDPOINT_SQL} AS endpoint FROM spans WHERE start_ns >= ? AND {ENTRY_SQL}"
)

_CHUNK = 1000


def entry_endpoints(
    store: Store, since_ns: int, spans: Sequence[tuple[int, bytes, str, int]]
) -> list[str]:
    """The endpoint of each ``(project_id, trace_id, service, start_ns)``; '' if none.

    Reads the entry spans of those traces that started at or after ``since_ns``.
    """
    by_trace: dict[tuple[int, bytes], list[tuple[int, str, str]]] = defaultdict(list)
    traces = sorted({t for _, t, _, _ in spans})
    for i in range(0, len(traces), _CHUNK):
        chunk = traces[i : i + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        for project_id, _, trace_id, service, start, endpoint in store.read(
            f"{ENTRIES_SQL} AND trace_id IN ({marks})",
            [since_ns, *chunk],
        ):
            by_trace[(project_id, trace_id)].append((start, service, endpoint))
    return [_pick(by_trace.get((p, t), ()), service, start) for p, t, service, start in spans]


def _pick(entries: Iterable[tuple[int, str, str]], service: str, start_ns: int) -> str:
    best: tuple[int, str] | None = None
    for e_start, e_service, endpoint in entries:
        if e_service == service and e_start <= start_ns and (best is None or e_start > best[0]):
            best = (e_start, endpoint)
    return best[1] if best else ""
