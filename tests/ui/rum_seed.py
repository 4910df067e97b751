"""RUM test data: browser sessions as the beacon endpoint stores them (``RumEvent`` rows
put in through ``store.submit_rum`` with their rollups), a page load joined to a backend
trace (browser spans as OTLP, the way ``ingest/rum`` turns a view into spans), and
XSS payloads in every telemetry string a RUM page shows.

Times are relative to ``now_ns``, all within the 30 minutes before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from heron.server.model.rum import RumEvent, RumWrite, rate, rollup_rum

MS = 1_000_000
MIN = 60_000 * MS

XSS_PAGE = "/x/<script>alert('page')</script>"
XSS_URL = "https://shop.example/x/\"><img src=x onerror=alert('url')>"
XSS_TARGET = "div\"><img src=x onerror=alert('target')>"
XSS_ERROR = "<img src=x onerror=alert('jserr')>"
XSS_USER = "<script>alert('user')</script>"
XSS_RESOURCE = "https://cdn.example/\"><svg onload=alert('res')>.js"
RUM_XSS = (XSS_PAGE, XSS_URL, XSS_TARGET, XSS_ERROR, XSS_USER, XSS_RESOURCE)

SESSION_DESKTOP = "sessDesktop0001"
SESSION_MOBILE = "sessMobile00002"
SESSION_XSS = "sessXss00000003"
PAGE_TRACE = "4a" * 16  # the backend trace the desktop page load joined
DOC_SPAN = 0x9F3AC2B7E41D5A06  # the backend span that served the document
FETCH_TRACE = "5b" * 16

# Desktop LCP samples on /products/:id, mobile ones on /checkout, one on the XSS page.
DESKTOP_LCP = [1000.0, 1200.0, 1500.0, 1800.0, 2000.0, 2200.0, 2400.0, 3000.0]
MOBILE_LCP = [5200.0, 6000.0]
XSS_LCP = 900.0


@dataclass
class RumSeed:
    now_ns: int
    events: list[RumEvent]

    def write(self, project_id: int) -> RumWrite:
        rollups: dict[tuple[Any, ...], int] = {}
        rollup_rum(project_id, self.events, rollups)
        return RumWrite(project_id, self.events, rollups)


def _ev(now: int, minutes_ago: float, kind: str, name: str, value: float, **kw: Any) -> RumEvent:
    base: dict[str, Any] = {
        "time_ns": now - int(minutes_ago * MIN),
        "kind": kind,
        "session_id": SESSION_DESKTOP,
        "view_id": "v1",
        "page": "/products/:id",
        "url": "https://shop.example/products/42",
        "name": name,
        "value": value,
        "rating": rate(name, value) if kind == "vital" else "",
        "target": "",
        "browser": "Chrome",
        "browser_version": "120",
        "os": "Linux",
        "device": "desktop",
        "app": "shop-web",
        "release": "1.4.2",
        "environment": "production",
        "user_id": "u-42",
    }
    base.update(kw)
    return RumEvent(**base)


def build(now_ns: int) -> RumSeed:
    n = now_ns
    ev: list[RumEvent] = []
    # Desktop session: one hard navigation joined to a backend trace, eight LCPs (one per
    # soft view), the other vitals, a slow image, a slow click, a long frame, an error, a
    # traced fetch.
    ev.append(
        _ev(n, 20, "view", "navigate", 1500.0, trace_id=bytes.fromhex(PAGE_TRACE), span_id=DOC_SPAN)
    )
    for i, v in enumerate(DESKTOP_LCP):
        ev.append(_ev(n, 19.9 - i * 0.1, "vital", "LCP", v, target="img.hero"))
    for name, v in (("INP", 150.0), ("CLS", 0.05), ("FCP", 900.0), ("TTFB", 300.0)):
        ev.append(_ev(n, 19.5, "vital", name, v))
    ev.append(
        _ev(
            n,
            19.4,
            "resource",
            "https://shop.example/static/hero.jpg",
            2300.0,
            target="img",
            attributes={"transfer_size": 900000},
        )
    )
    ev.append(_ev(n, 19.3, "interaction", "pointer", 350.0, target="button#add-to-cart"))
    ev.append(_ev(n, 19.2, "longtask", "long-animation-frame", 180.0, target="app.js"))
    ev.append(
        _ev(
            n,
            19.1,
            "error",
            "TypeError",
            0.0,
            target="cart is undefined",
            attributes={"stack": "TypeError: cart is undefined\n    at add (app.js:10:5)"},
        )
    )
    ev.append(
        _ev(
            n,
            19.0,
            "fetch",
            "POST https://shop.example/api/cart",
            120.0,
            trace_id=bytes.fromhex(FETCH_TRACE),
            span_id=0xF00,
            attributes={"status": 200},
        )
    )
    ev.append(_ev(n, 18.0, "view", "soft-navigation", 0.0, view_id="v2", page="/cart"))
    # Mobile session on /checkout: poor vitals.
    mobile = {
        "session_id": SESSION_MOBILE,
        "page": "/checkout",
        "url": "https://shop.example/checkout",
        "browser": "Mobile Safari",
        "browser_version": "17",
        "os": "iOS",
        "device": "mobile",
        "user_id": "",
    }
    ev.append(_ev(n, 10, "view", "navigate", 4200.0, **mobile))
    for i, v in enumerate(MOBILE_LCP):
        ev.append(_ev(n, 9.9 - i * 0.1, "vital", "LCP", v, **mobile))
    ev.append(_ev(n, 9.5, "vital", "INP", 600.0, target="form#pay button", **mobile))
    ev.append(_ev(n, 9.5, "vital", "CLS", 0.3, **mobile))
    # XSS session: payloads in the page, URL, targets, error message, resource, user.
    xss = {
        "session_id": SESSION_XSS,
        "page": XSS_PAGE,
        "url": XSS_URL,
        "browser": "Firefox",
        "browser_version": "121",
        "os": "Windows",
        "user_id": XSS_USER,
    }
    ev.append(_ev(n, 5, "view", "navigate", 800.0, **xss))
    ev.append(_ev(n, 4.9, "vital", "LCP", XSS_LCP, target=XSS_TARGET, **xss))
    ev.append(_ev(n, 4.8, "interaction", "pointer", 250.0, target=XSS_TARGET, **xss))
    ev.append(_ev(n, 4.7, "resource", XSS_RESOURCE, 1500.0, target="script", **xss))
    ev.append(_ev(n, 4.6, "error", "Error", 0.0, target=XSS_ERROR, **xss))
    return RumSeed(now_ns, ev)


def _any(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return {"kvlistValue": {"values": _kv(v)}}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_any(x) for x in v]}}
    return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}


def _kv(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any(v)} for k, v in d.items()]


def _span(
    sid: int, parent: int, name: str, start: int, dur_ms: float, **attrs: Any
) -> dict[str, Any]:
    return {
        "traceId": PAGE_TRACE,
        "spanId": f"{sid:016x}",
        **({"parentSpanId": f"{parent:016x}"} if parent else {}),
        "name": name,
        "kind": 3 if "heron.rum.kind" in attrs else 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + int(dur_ms * MS)),
        "attributes": _kv(attrs),
    }


def pageload_trace(now_ns: int) -> list[dict[str, Any]]:
    """OTLP-JSON bodies: the backend's document request (root of its service's trace)
    and the browser's page load holding its phases, as ``ingest/rum`` writes them."""
    t0 = now_ns - 20 * MIN
    backend = [
        _span(
            DOC_SPAN, 0, "GET /products/{id}", t0 + 40 * MS, 200, **{"http.request.method": "GET"}
        ),
        _span(0xD0D, DOC_SPAN, "SELECT products", t0 + 60 * MS, 50),
    ]
    kind = "heron.rum.kind"
    browser = [
        _span(
            0xB00,
            0,
            "pageload /products/:id",
            t0,
            1500,
            **{
                kind: "pageload",
                "heron.rum.view": "v1",
                "heron.rum.session": SESSION_DESKTOP,
                "heron.rum.document_span": f"{DOC_SPAN:016x}",
                "url.full": "https://shop.example/products/42",
                # its phases: {name: [start offset, duration]}, ns (the trace view
                # makes them its child spans)
                "heron.rum.phases": {
                    "dns": [1 * MS, 10 * MS],
                    "request": [30 * MS, 230 * MS],
                    "load": [1200 * MS, 300 * MS],
                },
            },
        ),
    ]

    def body(service: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
        resource = {
            "attributes": _kv(
                {"service.name": service, "deployment.environment.name": "production"}
            )
        }
        return {
            "resourceSpans": [
                {"resource": resource, "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}
            ]
        }

    return [body("shop", backend), body("shop-web", browser)]


def js_error_event(now_ns: int) -> dict[str, Any]:
    """The desktop session's TypeError as the beacon endpoint records it: a Sentry-shaped
    error event with platform ``javascript`` and a frame with a column."""
    frame = {
        "function": "addToCart",
        "filename": "https://shop.example/static/app.js",
        "lineno": 10,
        "colno": 5,
        "in_app": True,
    }
    return {
        "event_id": "ef" * 16,
        "timestamp": now_ns / 1e9 - 19.1 * 60,
        "platform": "javascript",
        "tags": {"service": "shop-web", "rum.session": SESSION_DESKTOP},
        "request": {"url": "https://shop.example/products/42"},
        "exception": {
            "values": [
                {
                    "type": "TypeError",
                    "value": "cart is undefined",
                    "stacktrace": {"frames": [frame]},
                }
            ]
        },
    }
