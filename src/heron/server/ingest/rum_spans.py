"""Browser spans of a RUM beacon (docs/rum.md, "What the server makes of a beacon").

A hard page load with the backend's traceparent becomes a root ``pageload <page>`` span
(kind client) in the backend's trace holding its navigation phases (the trace view shows
them as its children); a traced fetch
becomes a client span carrying the span id the SDK sent, so the backend's server span is
its child. Span ids of page loads derive from session and view
(:func:`span_id_of`), so a beacon sent twice does not make a second page load.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from heron.server.ingest.rum_context import Context, View
from heron.server.model import Span
from heron.server.model.span import SPAN_KIND_CLIENT, STATUS_ERROR, STATUS_UNSET

if TYPE_CHECKING:
    from heron.server.model.rum import RumEvent

# Navigation phases: (span name, start field, end field), in the order a load goes.
PHASES = (
    ("dns", "dns_start", "dns_end"),
    ("connect", "connect_start", "connect_end"),
    ("tls", "tls_start", "connect_end"),
    ("request", "request_start", "response_start"),
    ("response", "response_start", "response_end"),
    ("dom processing", "response_end", "dom_interactive"),
    ("DOMContentLoaded", "dom_interactive", "dcl_end"),
    ("load", "dcl_end", "load_end"),
)


def ms_to_ns(ms: float) -> int:
    """Epoch milliseconds as nanoseconds, to the microsecond (a float's ms carry no
    more, and rounding keeps ``…123.4`` from becoming ``…123399936``)."""
    return round(ms * 1000) * 1000


def span_id_of(*parts: str) -> int:
    """A stable nonzero 64-bit span id for a browser span: a beacon sent twice (a
    retry, a duplicate sendBeacon) yields the same ids, not a second page load."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1


def _span(
    ctx: Context, trace_id: bytes, span_id: int, parent: int, start_ms: float, dur_ms: float
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent,
        start_ns=ms_to_ns(start_ms),
        duration_ns=max(0, ms_to_ns(dur_ms)),
        name="",
        kind=SPAN_KIND_CLIENT,
        status=STATUS_UNSET,
        status_message="",
        service=ctx.app or "browser",
        environment=ctx.environment,
        release=ctx.release,
        resource={"service.name": ctx.app or "browser", "telemetry.sdk.language": "webjs"},
        scope="heron-rum",
    )


def pageload_spans(view: View, ctx: Context, timing: dict[str, float]) -> list[Span]:
    """The page load's root span. Its navigation phases longer than 0 are not rows of
    their own: the root keeps them in ``heron.rum.phases`` (``{name: [start offset from
    the root's start, duration]}``, nanoseconds, in load order) and the trace view makes
    them its child spans (``query/_trace_detail.py``), so a beacon costs one span row,
    not up to nine."""
    assert view.trace_id is not None
    root_id = span_id_of(ctx.session, view.id, "pageload")
    root = _span(ctx, view.trace_id, root_id, 0, view.start_ms, timing["load_end"])
    root.name = f"pageload {view.page}"
    phases: dict[str, list[int]] = {}
    for name, a, b in PHASES:
        start, end = timing.get(a), timing.get(b)
        if start is None or end is None or end <= start:
            continue
        # The times a phase span of its own had: its start to the microsecond of the
        # epoch, its duration to the microsecond of the difference.
        offset = ms_to_ns(view.start_ms + start) - root.start_ns
        phases[name] = [offset, max(0, ms_to_ns(end - start))]
    root.attributes = {
        "heron.rum.kind": "pageload",
        "heron.rum.view": view.id,
        "heron.rum.session": ctx.session,
        "url.full": view.url,
        "heron.rum.document_span": f"{view.document_span:016x}",
    }
    if phases:
        root.attributes["heron.rum.phases"] = phases
    return [root]


def fetch_span(
    e: RumEvent, ctx: Context, view: View, method: str, url: str, status: int | None
) -> Span:
    """The client span of a traced fetch: the span id the SDK sent, so the backend's
    server span (its child) hangs under it; under the page load when in its trace."""
    assert e.trace_id is not None
    parent = span_id_of(ctx.session, view.id, "pageload") if e.trace_id == view.trace_id else 0
    s = _span(ctx, e.trace_id, e.span_id, parent, e.time_ns / 1_000_000, e.value)
    s.name = f"{method} {_url_path(url)}"
    s.http_method = method
    s.attributes = {
        "heron.rum.kind": "fetch",
        "heron.rum.view": view.id,
        "heron.rum.session": ctx.session,
        "http.request.method": method,
        "url.full": url,
    }
    if status is not None:
        s.http_status = status
        s.attributes["http.response.status_code"] = status
        if status == 0 or status >= 500:
            s.status = STATUS_ERROR
            s.status_message = "network error" if status == 0 else f"HTTP {status}"
    return s


def _url_path(url: str) -> str:
    """The path of a URL (``/`` when it has none): a fetch span's name is
    ``<METHOD> <url path>`` like a backend client span's, the full URL in ``url.full``."""
    try:
        return urlsplit(url).path or "/"
    except ValueError:  # e.g. an invalid IPv6 host
        return "/"
