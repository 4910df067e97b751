"""The service map page: a layered left-to-right drawing rendered as SVG on the server.

Layout: a service's column is the length of the longest call chain reaching it (edges
that would close a cycle are drawn as arcs instead), and services in a column are ordered
by the mean row of their callers, which keeps most edges short and uncrossed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from heron.server import query
from heron.server.query import MapEdge, ServiceMap, ServiceStats
from heron.server.ui._kit import KitDep, UiRoute
from heron.server.ui._render import color_index, fmt_ms, fmt_num, fmt_pct

NODE_W, NODE_H = 168, 46
COL_GAP, ROW_GAP, MARGIN = 190, 34, 24


@dataclass
class Node:
    name: str
    x: float = 0.0
    y: float = 0.0
    color: int = 0
    stats: ServiceStats | None = None
    label: str = ""


@dataclass
class Edge:
    edge: MapEdge
    path: str
    label_x: float
    label_y: float
    width: float
    hot: bool
    back: bool


@dataclass
class Drawing:
    width: float
    height: float
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def _columns(smap: ServiceMap) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """Longest-path column of each service, ignoring edges that close a cycle."""
    out: dict[str, list[str]] = {s: [] for s in smap.services}
    for e in smap.edges:
        out[e.caller].append(e.callee)
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    order: list[str] = []
    for start in smap.services:
        if start in state:
            continue
        stack = [(start, iter(out[start]))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(out[nxt])))
    column = dict.fromkeys(smap.services, 0)
    for node in reversed(order):  # topological order of the acyclic part
        for nxt in out[node]:
            if (node, nxt) not in back:
                column[nxt] = max(column[nxt], column[node] + 1)
    return column, back


def layout(smap: ServiceMap, stats: dict[str, ServiceStats]) -> Drawing:
    column, back = _columns(smap)
    cols: dict[int, list[str]] = {}
    for name in smap.services:
        cols.setdefault(column[name], []).append(name)
    callers: dict[str, list[str]] = {}
    for e in smap.edges:
        callers.setdefault(e.callee, []).append(e.caller)
    row: dict[str, float] = {}
    for c in sorted(cols):
        names = cols[c]
        names.sort(key=lambda n: (_mean(row, callers.get(n, [])), n))
        for i, name in enumerate(names):
            row[name] = i
    nodes = {}
    for name in smap.services:
        s = stats.get(name)
        label = f"{fmt_num(s.rpm)}/min · {fmt_pct(s.error_rate)}" if s else "no entry spans"
        nodes[name] = Node(
            name,
            MARGIN + column[name] * (NODE_W + COL_GAP),
            MARGIN + row[name] * (NODE_H + ROW_GAP),
            color_index(name),
            s,
            label,
        )
    top = max((e.rpm for e in smap.edges), default=1.0) or 1.0
    edges = [_edge(e, nodes, (e.caller, e.callee) in back, top) for e in smap.edges]
    width = MARGIN * 2 + (max(column.values(), default=0) + 1) * (NODE_W + COL_GAP) - COL_GAP
    rows = max((len(v) for v in cols.values()), default=1)
    height = MARGIN * 2 + rows * (NODE_H + ROW_GAP) - ROW_GAP + (40 if back else 0)
    return Drawing(width, height, list(nodes.values()), edges)


def _mean(row: dict[str, float], names: list[str]) -> float:
    placed = [row[n] for n in names if n in row]
    return sum(placed) / len(placed) if placed else math.inf


def _edge(e: MapEdge, nodes: dict[str, Node], back: bool, top_rpm: float) -> Edge:
    a, b = nodes[e.caller], nodes[e.callee]
    width = 1.0 + 3.0 * math.log1p(e.rpm) / math.log1p(top_rpm)
    if back or b.x <= a.x:
        # Bottom to bottom, bulging downwards, so it never hides a forward edge.
        x1, y1 = a.x + NODE_W / 2, a.y + NODE_H
        x2, y2 = b.x + NODE_W / 2, b.y + NODE_H
        dip = max(y1, y2) + 40
        path = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{dip:.0f} {x2:.0f},{dip:.0f} {x2:.0f},{y2:.0f}"
        lx, ly = (x1 + x2) / 2, dip - 6
    else:
        x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
        x2, y2 = b.x, b.y + NODE_H / 2
        mid = (x1 + x2) / 2
        path = f"M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
        lx, ly = mid, (y1 + y2) / 2 - 5
    return Edge(e, path, lx, ly, round(width, 2), e.error_rate >= 0.05, back)


def edge_label(e: MapEdge) -> str:
    return f"{fmt_num(e.rpm)}/min · {fmt_pct(e.error_rate)} · p95 {fmt_ms(e.p95_ms)}"


router = APIRouter(route_class=UiRoute)


@router.get("/map")
def service_map_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    smap = query.service_map(store, project, tr, environment=state.environment)
    stats = query.service_table(
        store, project, tr, environment=state.environment, apdex_t_ms=kit.ctx.config.apdex_t_ms
    )
    drawing = layout(smap, {s.service: s for s in stats})
    return kit.render(
        request,
        "map.html",
        state,
        nav="map",
        smap=smap,
        drawing=drawing,
        node_w=NODE_W,
        node_h=NODE_H,
        edge_label=edge_label,
    )
