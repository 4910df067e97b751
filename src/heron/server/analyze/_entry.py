"""Which endpoint a span ran under: the entry span (server/consumer span or root) above it.

A database or outgoing-HTTP span does not know its endpoint when it arrives; this module
finds it afterwards. The rule, the same in SQL (an ASOF join, for rollups over many
spans, in the store) and in Python (for a few groups, here): among the entry spans of
the span's trace and service that started no later than the span, the latest. That is
the innermost request of the service that issued the call, since a service's spans nest
in time inside the request that caused them (and come from one clock). A span whose
service has no entry span in the trace (not arrived yet, or not sampled) has the
endpoint ''.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence


def entry_endpoints(
    entries: Iterable[tuple[int, bytes, str, int, str]],
    spans: Sequence[tuple[int, bytes, str, int]],
) -> list[str]:
    """The endpoint of each ``(project_id, trace_id, service, start_ns)``; '' if none.

    ``entries`` are ``(project_id, trace_id, service, start_ns, endpoint)`` of the entry
    spans of those traces.
    """
    by_trace: dict[tuple[int, bytes], list[tuple[int, str, str]]] = defaultdict(list)
    for project_id, trace_id, service, start, endpoint in entries:
        by_trace[(project_id, trace_id)].append((start, service, endpoint))
    return [_pick(by_trace.get((p, t), ()), service, start) for p, t, service, start in spans]


def _pick(entries: Iterable[tuple[int, str, str]], service: str, start_ns: int) -> str:
    best: tuple[int, str] | None = None
    for e_start, e_service, endpoint in entries:
        if e_service == service and e_start <= start_ns and (best is None or e_start > best[0]):
            best = (e_start, endpoint)
    return best[1] if best else ""
