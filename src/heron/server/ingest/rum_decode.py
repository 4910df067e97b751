"""A parsed RUM beacon → scrubbed RumEvents, browser spans and JavaScript error events.

The beacon format is docs/rum.md's "Beacon format". A malformed envelope (``session``,
``views``, ``events``, an event's ``view``) raises :class:`BeaconError` naming the field:
the whole beacon is refused. An event whose own fields are invalid is dropped and
counted (``invalid``), one of an unknown ``t`` too (``unknown``). Everything a page
wrote is treated as hostile text: bounded in length, scrubbed of secrets, stored
verbatim otherwise (escaping is the UI's job).

Nothing here touches the store: :func:`decode_beacon` is pure given its scrubber.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from heron.server.ingest.rum_context import Context, TextScrubber, View
from heron.server.ingest.rum_spans import PHASES, fetch_span, ms_to_ns, pageload_spans
from heron.server.ingest.rum_stack import parse_stack
from heron.server.ingest.useragent import UserAgentInfo
from heron.server.model import ErrorEvent, Span
from heron.server.model.rum import (
    KIND_ERROR,
    KIND_FETCH,
    KIND_INTERACTION,
    KIND_LONG_TASK,
    KIND_RENDER,
    KIND_RESOURCE,
    KIND_VIEW,
    KIND_VITAL,
    VITAL_THRESHOLDS,
    RumEvent,
    rate,
)

ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
VIEW_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
NAVS = frozenset(
    {
        "navigate",
        "reload",
        "back-forward",
        "back-forward-cache",
        "prerender",
        "restore",
        "soft-navigation",
    }
)
SOFT = "soft-navigation"
MAX_URL = 2048
MAX_TEXT = 1024
MAX_SHORT = 256
# Larger durations, timings, sizes (ms, bytes) are not measurements: numbers above it are
# left out, so browser spans' nanoseconds always fit 64 bits.
MAX_VALUE = 1e12
# Beacon times outside [2000-01-01, 2262) are not times.
MIN_MS, MAX_MS = 946_684_800_000.0, 9_223_372_036_854.0
TIMING_FIELDS = frozenset(f for _, a, b in PHASES for f in (a, b)) | {"transfer_size"}
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,})$"
)


class BeaconError(ValueError):
    """The envelope is malformed; the message names the field."""


class InvalidEvent(ValueError):
    """One event's fields are invalid: it is dropped and counted."""


@dataclass(slots=True)
class Beacon:
    """What one beacon becomes."""

    events: list[RumEvent] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    errors: list[ErrorEvent] = field(default_factory=list)
    unknown: int = 0  # events of an unknown ``t``
    invalid: int = 0  # events with invalid fields


# ------------------------------------------------------------------ envelope


def decode_beacon(
    doc: Any, ua: UserAgentInfo, user_agent: str, scrubber: TextScrubber, received_ns: int
) -> Beacon:
    """The beacon ``doc`` (parsed JSON) decoded; BeaconError when the envelope is bad."""
    ctx = envelope(doc, ua, user_agent, scrubber, received_ns)
    events = doc["events"]
    out = Beacon()
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise BeaconError(f"events[{i}] must be an object")
        view = ctx.views.get(ev.get("view"))  # type: ignore[arg-type]
        if view is None:
            raise BeaconError(f"events[{i}].view must name a key of views")
        decoder = DECODERS.get(ev.get("t"))  # type: ignore[arg-type]
        if decoder is None:
            out.unknown += 1
            continue
        try:
            decoder(ev, view, ctx, scrubber, out)
        except (InvalidEvent, TypeError, ValueError, OverflowError):
            out.invalid += 1
    return out


def envelope(
    doc: Any, ua: UserAgentInfo, user_agent: str, scrubber: TextScrubber, received_ns: int
) -> Context:
    if not isinstance(doc, dict):
        raise BeaconError("the beacon must be a JSON object")
    if doc.get("v", 1) != 1:
        raise BeaconError("v must be 1")
    session = doc.get("session")
    if not isinstance(session, str) or not ID.match(session):
        raise BeaconError("session must be 8 to 64 characters of A-Z, a-z, 0-9, _ and -")
    views = doc.get("views")
    if not isinstance(views, dict):
        raise BeaconError("views must be an object")
    if not isinstance(doc.get("events"), list):
        raise BeaconError("events must be an array")
    return Context(
        session=session,
        user=_opt_str(doc, "user", MAX_SHORT),
        app=_opt_str(doc, "app", MAX_SHORT),
        release=_opt_str(doc, "release", MAX_SHORT),
        environment=_opt_str(doc, "environment", MAX_SHORT),
        sdk=_opt_str(doc, "sdk", MAX_SHORT),
        ua=ua,
        user_agent=user_agent,
        views={k: _view(k, v, scrubber) for k, v in views.items()},
        received_ns=received_ns,
    )


def _opt_str(doc: dict[str, Any], key: str, limit: int, where: str = "") -> str:
    v = doc.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise BeaconError(f"{where}{key} must be a string")
    return v[:limit]


def _view(key: str, v: Any, scrubber: TextScrubber) -> View:
    where = f"views.{key[:64]}"
    if not VIEW_ID.match(key):
        raise BeaconError(f"{where}: view ids must be 1 to 64 characters of A-Z, a-z, 0-9, _, -")
    if not isinstance(v, dict):
        raise BeaconError(f"{where} must be an object")
    url = v.get("url")
    if not isinstance(url, str) or not url:
        raise BeaconError(f"{where}.url must be a non-empty string")
    nav = v.get("nav", "navigate")
    if nav not in NAVS:
        raise BeaconError(f"{where}.nav must be one of {', '.join(sorted(NAVS))}")
    start = v.get("start")
    if not _is_num(start) or not MIN_MS <= start <= MAX_MS:
        raise BeaconError(f"{where}.start must be epoch milliseconds")
    trace_id, span = None, 0
    tp = v.get("trace")
    if tp is not None:
        m = TRACEPARENT.match(tp) if isinstance(tp, str) else None
        if m is None:
            raise BeaconError(f"{where}.trace must be a traceparent (00-<32 hex>-<16 hex>-01)")
        trace_id, span = bytes.fromhex(m.group(1)), int(m.group(2), 16)
        if span == 0 or not any(trace_id):
            raise BeaconError(f"{where}.trace must not have an all-zero trace or span id")
    url = url[:MAX_URL]
    route = _opt_str(v, "route", MAX_SHORT, where + ".")
    return View(
        id=key,
        url=scrubber.url(url),
        page=route or page_of(url),
        origin=_origin(url),
        referrer=scrubber.url(_opt_str(v, "referrer", MAX_URL, where + ".")),
        nav=nav,
        start_ms=float(start),
        trace_id=trace_id,
        document_span=span,
    )


def page_of(url: str) -> str:
    """The URL's path with numeric, UUID and long hex segments replaced by ``:id``."""
    try:
        path = urlsplit(url).path if "://" in url else url.split("?")[0].split("#")[0]
    except ValueError:
        return "/"
    if not path:
        return "/"
    return "/".join(":id" if _ID_SEGMENT.match(s) else s for s in path.split("/"))


def _origin(url: str) -> str:
    try:
        p = urlsplit(url)
    except ValueError:
        return ""
    return f"{p.scheme}://{p.netloc}".lower() if p.scheme and p.netloc else ""


# ------------------------------------------------------------------ fields


def _is_num(v: Any) -> TypeGuard[float]:
    return type(v) in (int, float) and math.isfinite(v)


def _num(ev: dict[str, Any], key: str) -> float:
    v = ev.get(key)
    if not _is_num(v) or not 0 <= v <= MAX_VALUE:
        raise InvalidEvent(f"{key} must be a number from 0 to {MAX_VALUE:.0f}")
    return float(v)


def _text(ev: dict[str, Any], key: str, limit: int = MAX_TEXT) -> str:
    v = ev.get(key)
    return v[:limit] if isinstance(v, str) else ""


def _time_ns(ev: dict[str, Any]) -> int:
    ts = ev.get("ts")
    if not _is_num(ts) or not MIN_MS <= ts <= MAX_MS:
        raise InvalidEvent("ts must be epoch milliseconds")
    return ms_to_ns(ts)


def _numbers(d: Any, keys: frozenset[str] | tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(d, dict):
        return {}
    return {k: float(v) for k, v in d.items() if k in keys and _is_num(v) and abs(v) <= MAX_VALUE}


def _event(
    ctx: Context, view: View, ev: dict[str, Any], kind: str, name: str, value: float
) -> RumEvent:
    ua = ctx.ua
    return RumEvent(
        time_ns=_time_ns(ev),
        kind=kind,
        session_id=ctx.session,
        view_id=view.id,
        page=view.page,
        url=view.url,
        name=name,
        value=value,
        rating="",
        target="",
        browser=ua.browser,
        browser_version=ua.browser_version,
        os=ua.os,
        device=ua.device,
        app=ctx.app,
        release=ctx.release,
        environment=ctx.environment,
        user_id=ctx.user,
    )


# ------------------------------------------------------------------ kinds


def _view_event(
    ev: dict[str, Any], view: View, ctx: Context, scrubber: TextScrubber, out: Beacon
) -> None:
    timing = _numbers(ev.get("timing"), TIMING_FIELDS)
    hard = view.nav != SOFT
    load = timing.get("load_end", 0.0) if hard else 0.0
    e = _event(ctx, view, ev, KIND_VIEW, view.nav, load)
    e.trace_id, e.span_id = view.trace_id, view.document_span
    e.attributes = {"timing": timing} if timing else {}
    if view.referrer:
        e.attributes["referrer"] = view.referrer
    out.events.append(e)
    if hard and view.trace_id is not None and load > 0:
        out.spans.extend(pageload_spans(view, ctx, timing))


_VITAL_TARGETS = {"LCP", "INP", "CLS"}


def _vital(
    ev: dict[str, Any], view: View, ctx: Context, scrubber: TextScrubber, out: Beacon
) -> None:
    name = ev.get("name")
    if name not in VITAL_THRESHOLDS:
        raise InvalidEvent("name must be a web vital")
    value = _num(ev, "value")
    e = _event(ctx, view, ev, KIND_VITAL, name, value)
    e.rating = rate(name, value)
    attribution = ev.get("attribution")
    if isinstance(attribution, dict):
        attribution = _scrub_attribution(attribution, scrubber)
        if name in _VITAL_TARGETS:
            target = attribution.get("target")
            e.target = target[:MAX_TEXT] if isinstance(target, str) else ""
        e.attributes["attribution"] = attribution
    metric_id = _text(ev, "id", MAX_SHORT)
    if metric_id:
        e.attributes["id"] = metric_id
    out.events.append(e)


def _scrub_attribution(a: dict[str, Any], scrubber: TextScrubber) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in list(a.items())[:32]:
        if _is_num(v) or isinstance(v, bool):
            out[k] = v
        elif isinstance(v, str):
            v = v[:MAX_TEXT]
            out[k] = scrubber.url(v) if k == "url" else scrubber.text(v)
    return out


def _resource(
    ev: dict[str, Any], view: View, ctx: Context, scrubber: TextScrubber, out: Beacon
) -> None:
    url = _text(ev, "name", MAX_URL)
    if not url:
        raise InvalidEvent("name must be the resource's URL")
    e = _event(ctx, view, ev, KIND_RESOURCE, scrubber.url(url), _num(ev, "duration"))
    e.target = _text(ev, "initiator", MAX_SHORT)
    e.attributes = _numbers(ev, ("transfer_size", "decoded_size", "status"))
    out.events.append(e)


def _interaction(
    ev: dict[str, Any], view: View, ctx: Context, scrubber: TextScrubber, out: Beacon
) -> None:
    kind = _text(ev, "type", MAX_SHORT) or "pointer"
    e = _event(ctx, view, ev, KIND_INTERACTION, kind, _num(ev, "duration"))
    e.target = _text(ev, "target")
    e.attributes = _numbers(ev, ("input_delay", "processing", "presentation"))
    event_name = _text(ev, "event", MAX_SHORT)
    if event_name:
        e.attributes["event"] = event_name
    out.events.append(e)


def _long_task(
    ev: dict[str, Any], view: View, ctx: Context, scrubber: TextScrubber, out: Beacon
) -> None:
    scripts: list[dict[str, Any]] = []
    for s in ev.get("scripts") or []:
        if isinstance(s, dict) and len(scripts) < 3:
            src = scrubber.url(_text(s, "src", MAX_URL))
            scripts.append(
                {"src": src, "fn": _text(s, "fn", MAX_SHORT), **_numbers(s, ("duration",))}
            )
    first: dict[str, Any] = scripts[0] if scripts else {"src": "", "fn": ""}
    e = _event(ctx, view, ev, KIND_LONG_TASK, first["src"], _num(ev, "duration"))
    e.target = first["fn"]
    e.attributes = _numbers(ev, ("blocking",))
    if scripts:
        e.attributes["scripts"] = scripts
    out.events.append(e)


def _error(
    ev: dict[str, Any], view: View, ctx: Context, scrubber: TextScrubber, out: Beacon
) -> None:
    exc_type = _text(ev, "type", MAX_SHORT) or "Error"
    message = scrubber.text(_text(ev, "message", 8192))
    e = _event(ctx, view, ev, KIND_ERROR, exc_type, 0.0)
    e.target = message[:MAX_TEXT]
    e.trace_id = view.trace_id
    handled = ev.get("handled") if isinstance(ev.get("handled"), bool) else None
    mechanism = _text(ev, "mechanism", MAX_SHORT) or "onerror"
    frames = parse_stack(_text(ev, "stack", 16 * 1024), view.origin)
    event_id = secrets.token_hex(16)
    e.attributes = {"event_id": event_id, "mechanism": mechanism, "handled": handled}
    filename = _text(ev, "filename", MAX_URL)
    if filename:
        e.attributes["filename"] = scrubber.url(filename)
    e.attributes.update(_numbers(ev, ("lineno", "colno")))
    out.events.append(e)
    out.errors.append(_error_event(e, ctx, view, event_id, mechanism, handled, frames))


def _error_event(
    e: RumEvent,
    ctx: Context,
    view: View,
    event_id: str,
    mechanism: str,
    handled: bool | None,
    frames: list[dict[str, Any]],
) -> ErrorEvent:
    ua = ctx.ua
    exc = {
        "type": e.name,
        "value": e.target,
        "mechanism": {"type": mechanism, "handled": handled},
        "frames": frames,
    }
    return ErrorEvent(
        event_id=event_id,
        time_ns=e.time_ns,
        received_ns=ctx.received_ns,
        service=ctx.app or "browser",
        environment=ctx.environment,
        release=ctx.release,
        level="error",
        platform="javascript",
        source="rum",
        exc_type=e.name,
        message=e.target,
        culprit="",
        transaction=view.page,
        trace_id=view.trace_id,
        user={"id": ctx.user} if ctx.user else {},
        handled=handled,
        exceptions=[exc],
        request={"url": view.url, "headers": {"User-Agent": ctx.user_agent[:MAX_TEXT]}},
        tags={"browser": ua.browser, "os": ua.os, "device": ua.device, "page": view.page},
        contexts={
            "browser": {"name": ua.browser, "version": ua.browser_version},
            "os": {"name": ua.os},
            "device": {"class": ua.device},
            # The tab session is not a secret, but EventScrubber filters keys named
            # "session": the error's RUM event (attributes.event_id) links the two.
            "rum": {"view": view.id},
        },
        sdk=ctx.sdk,
    )


def _fetch(
    ev: dict[str, Any], view: View, ctx: Context, scrubber: TextScrubber, out: Beacon
) -> None:
    method = (_text(ev, "method", 16) or "GET").upper()
    url = scrubber.url(_text(ev, "url", MAX_URL))
    status = ev.get("status")
    status = int(status) if _is_num(status) and 0 <= status < 1000 else None
    duration = _num(ev, "duration")
    e = _event(ctx, view, ev, KIND_FETCH, f"{method} {_strip_query(url)}", duration)
    e.attributes = {"url": url}
    if status is not None:
        e.attributes["status"] = status
    tp = ev.get("trace")
    m = TRACEPARENT.match(tp) if isinstance(tp, str) else None
    if m is not None and int(m.group(2), 16) and int(m.group(1), 16):
        e.trace_id, e.span_id = bytes.fromhex(m.group(1)), int(m.group(2), 16)
        out.spans.append(fetch_span(e, ctx, view, method, url, status))
    out.events.append(e)


def _render(
    ev: dict[str, Any], view: View, ctx: Context, scrubber: TextScrubber, out: Beacon
) -> None:
    component = _text(ev, "component", MAX_SHORT)
    if not component:
        raise InvalidEvent("component must be a name")
    e = _event(ctx, view, ev, KIND_RENDER, component, _num(ev, "duration"))
    e.target = _text(ev, "phase", MAX_SHORT)
    e.attributes = _numbers(ev, ("base",))
    out.events.append(e)


DECODERS = {
    KIND_VIEW: _view_event,
    KIND_VITAL: _vital,
    KIND_RESOURCE: _resource,
    KIND_INTERACTION: _interaction,
    KIND_LONG_TASK: _long_task,
    KIND_ERROR: _error,
    KIND_FETCH: _fetch,
    KIND_RENDER: _render,
}


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]
