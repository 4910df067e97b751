"""One trace by id: every span, with lifted attributes merged back and tree structure.

The store answers the lookup by id (``TraceReader.trace_spans``; on DuckDB from the ART
index on ``spans.trace_id``).
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from typing import Any

import orjson

from heron.server.model.span import KIND_NAMES, STATUS_NAMES, SpanRow, is_error
from heron.server.query._common import InvalidQuery, ms
from heron.server.semconv import CANONICAL
from heron.server.store.base import Store

_HEX = frozenset(string.hexdigits)
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


@dataclass(slots=True)
class SpanDetail:
    span_id: str
    parent_id: str | None
    service: str
    name: str
    kind: str
    start_ns: int
    duration_ns: int
    duration_ms: float
    status: str
    status_message: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    environment: str
    release: str
    scope: str | None
    depth: int = 0
    children: list[str] = field(default_factory=list)
    browser: bool = False
    """A browser span (``heron.rum.kind`` set: a page load, its phases, a page's fetch)."""


@dataclass(slots=True)
class TraceDetail:
    trace_id: str
    start_ns: int
    duration_ms: float
    span_count: int
    error: bool
    services: list[str]
    spans: list[SpanDetail]
    """Ordered by start time."""
    roots: list[str]
    """Spans without a parent in this trace (the root, or orphans of a partial trace)."""
    rum_session: str | None = None
    """The browser session whose page load is this trace's root (docs/rum.md); ``""``
    when the trace has a page load whose session attribute is unreadable; None without
    a page load."""


def parse_trace_id(text: str) -> bytes:
    """The 16 bytes of a 32-hex-digit trace id; InvalidQuery otherwise."""
    if len(text) != 32 or not _HEX.issuperset(text):
        raise InvalidQuery(f"trace id must be 32 hexadecimal digits (got {text[:64]!r})")
    return bytes.fromhex(text)


def _json(text: str | None, empty: Any) -> Any:
    return orjson.loads(text) if text else empty


RUM_KIND = "heron.rum.kind"
RUM_DOCUMENT_SPAN = "heron.rum.document_span"
RUM_SESSION = "heron.rum.session"
RUM_PHASES = "heron.rum.phases"


def phase_spans(spans: list[SpanDetail]) -> list[SpanDetail]:
    """The navigation phases of each page load as its child spans (docs/rum.md): ingest
    keeps them in the page load's ``heron.rum.phases`` (``{name: [start offset, duration]}``,
    ns) instead of rows of their own. Each gets ``heron.rum.kind = "phase"`` and a span
    id derived from the page load's and its name, the same on every read. Page loads
    stored with phase rows (before) keep them and get none made up."""
    made: list[SpanDetail] = []
    has_phase_rows = {s.parent_id for s in spans if s.attributes.get(RUM_KIND) == "phase"}
    for load in spans:
        phases = load.attributes.pop(RUM_PHASES, None)
        if load.attributes.get(RUM_KIND) != "pageload" or not isinstance(phases, dict):
            continue
        if load.span_id in has_phase_rows:
            continue
        for name, times in phases.items():
            if not (
                isinstance(times, list)
                and len(times) == 2
                and all(type(t) is int and t >= 0 for t in times)
            ):
                continue  # not what ingest wrote
            offset, duration = times
            made.append(
                SpanDetail(
                    span_id=_phase_id(load.span_id, name),
                    parent_id=load.span_id,
                    service=load.service,
                    name=name,
                    kind="internal",
                    start_ns=load.start_ns + offset,
                    duration_ns=duration,
                    duration_ms=ms(duration) or 0.0,
                    status="unset",
                    status_message=None,
                    attributes={RUM_KIND: "phase"},
                    resource=dict(load.resource),
                    events=[],
                    links=[],
                    environment=load.environment,
                    release=load.release,
                    scope=load.scope,
                    browser=True,
                )
            )
    return made


def _phase_id(load_id: str, name: str) -> str:
    digest = hashlib.blake2b(f"{load_id}\x1f{name}".encode(), digest_size=8).digest()
    return f"{int.from_bytes(digest, 'big') or 1:016x}"


def reroot_pageload(spans: list[SpanDetail]) -> str | None:
    """Make a page load the root of its trace (docs/rum.md): the backend span that served
    the document (``heron.rum.document_span``), when it is a root of this trace, is nested
    under the page load's ``request`` phase (the page load itself when that phase is
    missing). Returns the page load's browser session (``""`` when its attribute holds no
    valid session id), or None without a page load."""
    by_id = {s.span_id: s for s in spans}
    session: str | None = None
    for load in spans:
        if load.attributes.get(RUM_KIND) != "pageload":
            continue
        sid = load.attributes.get(RUM_SESSION)
        if not session:
            # "" when the id is not readable (ingest's key scrubber filters keys holding
            # "session"): the caller can look the session up by trace id instead.
            session = sid if isinstance(sid, str) and _SESSION_ID.fullmatch(sid) else ""
        served = _document_span(load, spans, by_id)
        if served is None or served is load or served.browser:
            continue
        if served.parent_id is not None and served.parent_id in by_id:
            continue  # already under another span of this trace: not the document's root
        phase = next(
            (
                c
                for c in spans
                if c.parent_id == load.span_id
                and c.name == "request"
                and c.attributes.get(RUM_KIND) == "phase"
            ),
            None,
        )
        served.parent_id = (phase or load).span_id
    return session


def _document_span(
    load: SpanDetail, spans: list[SpanDetail], by_id: dict[str, SpanDetail]
) -> SpanDetail | None:
    """The span a page load's ``heron.rum.document_span`` names. Ingest scrubs attribute
    values as text, so an id with a long run of digits can come back partly
    ``[Filtered]`` (it looks like a card number): then the trace's only backend root is
    the document's span, if it has exactly one."""
    doc = load.attributes.get(RUM_DOCUMENT_SPAN)
    if not isinstance(doc, str):
        return None
    if len(doc) == 16 and _HEX.issuperset(doc):
        return by_id.get(doc.lower())
    roots = [
        s for s in spans if not s.browser and (s.parent_id is None or s.parent_id not in by_id)
    ]
    return roots[0] if len(roots) == 1 else None


def _span(r: SpanRow) -> SpanDetail:
    attrs: dict[str, Any] = _json(r.attributes, {})
    for column, key in CANONICAL.items():
        value = getattr(r, column)
        if value is not None:
            attrs[key] = value
    return SpanDetail(
        span_id=f"{r.span_id:016x}",
        parent_id=f"{r.parent_id:016x}" if r.parent_id else None,
        service=r.service,
        name=r.name,
        kind=KIND_NAMES.get(r.kind, "unspecified"),
        start_ns=r.start_ns,
        duration_ns=r.duration_ns,
        duration_ms=ms(r.duration_ns) or 0.0,
        status=STATUS_NAMES.get(r.status, "unset"),
        status_message=r.status_message,
        attributes=attrs,
        resource=_json(r.resource, {}),
        events=_json(r.events, []),
        links=_json(r.links, []),
        environment=r.environment,
        release=r.release,
        scope=r.scope,
        browser=RUM_KIND in attrs,
    )


def _link_tree(spans: list[SpanDetail]) -> list[str]:
    """Fill children and depth; return the roots. Tolerates orphans and parent cycles."""
    by_id = {s.span_id: s for s in spans}
    for s in spans:
        parent = by_id.get(s.parent_id) if s.parent_id else None
        if parent is not None and parent is not s:
            parent.children.append(s.span_id)
    roots: list[str] = []
    seen: set[str] = set()
    # A span is a root when its parent is absent; if a cycle hides every root of some
    # spans, the earliest unvisited one stands in, so each span appears exactly once.
    for candidate in sorted(spans, key=lambda s: s.parent_id in by_id):
        if candidate.span_id in seen:
            continue
        roots.append(candidate.span_id)
        stack = [(candidate.span_id, 0)]
        while stack:
            span_id, depth = stack.pop()
            if span_id in seen:
                continue
            seen.add(span_id)
            node = by_id[span_id]
            node.depth = depth
            stack.extend((c, depth + 1) for c in reversed(node.children))
    return roots


def get_trace(store: Store, project_id: int, trace_id: bytes) -> TraceDetail | None:
    """All spans of a trace, or None when no span of it is stored."""
    rows = store.traces.trace_spans(project_id, trace_id)
    if not rows:
        return None
    spans: list[SpanDetail] = []
    ids: set[str] = set()
    for row in rows:
        span = _span(row)
        if span.span_id not in ids:  # a retried export may have stored a span twice
            ids.add(span.span_id)
            spans.append(span)
    spans += [p for p in phase_spans(spans) if p.span_id not in ids]
    spans.sort(key=lambda s: (s.start_ns, s.span_id))  # as the store orders rows
    session = reroot_pageload(spans)
    roots = _link_tree(spans)
    start = min(s.start_ns for s in spans)
    end = max(s.start_ns + s.duration_ns for s in spans)
    return TraceDetail(
        trace_id=trace_id.hex(),
        start_ns=start,
        duration_ms=ms(end - start) or 0.0,
        span_count=len(spans),
        error=any(is_error(r.status, r.http_status) for r in rows),
        services=sorted({s.service for s in spans}),
        spans=spans,
        roots=roots,
        rum_session=session,
    )
