"""The critical path of a trace: the chain of work that decided its duration.

Walking back from the root's end, the path goes into the child that finished last, then,
from that child's start, into the child that finished last before it, and so on; time in
between belongs to the parent itself (its self time). Children that overrun their parent
(clock skew, fire-and-forget work) are clipped to it. Iterative, so a 5,000-level chain
cannot exhaust the recursion limit.
"""

from __future__ import annotations

from heron.server.query._trace_detail import SpanDetail, TraceDetail

Segment = tuple[int, int]


def critical_path(trace: TraceDetail) -> dict[str, list[Segment]]:
    """Span id → the ``(start_ns, end_ns)`` pieces of it on the critical path.

    The path starts at the trace's first root (orphan roots of a partial trace are not
    on it). Pieces of one span are listed latest first.
    """
    if not trace.roots:
        return {}
    by_id = {s.span_id: s for s in trace.spans}
    root = by_id[trace.roots[0]]
    path: dict[str, list[Segment]] = {}
    stack: list[tuple[SpanDetail, int, int]] = [(root, root.start_ns, _end(root))]
    while stack:
        span, lo, hi = stack.pop()
        cursor = hi
        children = sorted(
            (by_id[c] for c in span.children),
            key=lambda s: (_end(s), s.start_ns),
            reverse=True,
        )
        for child in children:
            child_lo, child_hi = max(child.start_ns, lo), min(_end(child), cursor)
            if child_hi <= child_lo or child_lo >= cursor:
                continue  # entirely after the path's cursor, or outside the parent
            if child_hi < cursor:
                path.setdefault(span.span_id, []).append((child_hi, cursor))
            stack.append((child, child_lo, child_hi))
            cursor = child_lo
        if cursor > lo:
            path.setdefault(span.span_id, []).append((lo, cursor))
        elif span.span_id not in path:
            path[span.span_id] = []
    return path


def _end(span: SpanDetail) -> int:
    return span.start_ns + span.duration_ns
