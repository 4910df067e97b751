"""Seed data for the UI tests, as OTLP-JSON export requests (what any SDK sends).

A small shop (frontend → checkout → payments, frontend → catalog) with two releases and
two environments, errors with exception stack traces, a 5,000-span batch trace, and a
trace whose service name, span names, attribute keys and values, and exception message
are XSS payloads. Times are relative to ``now_ns`` so the same data serves in-process
tests (fixed clock) and a real ``heron serve`` (wall clock).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

MS = 1_000_000
MIN = 60_000 * MS
SERVER, CLIENT, INTERNAL = 2, 3, 1

XSS_SERVICE = "<script>alert('svc')</script>"
XSS_SPAN = "<img src=x onerror=alert('span')>"
XSS_KEY = '"><svg onload=alert("key")>'
XSS_VALUE = "</script><script>alert('value')</script>"
XSS_MESSAGE = "<img src=x onerror=alert('exc')>"
XSS_ROUTE = "/x/<img src=x onerror=alert('route')>"
XSS_STRINGS = (XSS_SERVICE, XSS_SPAN, XSS_KEY, XSS_VALUE, XSS_MESSAGE, XSS_ROUTE)

BIG_TRACE_SPANS = 5000


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in d.items()]


@dataclass
class Sp:
    trace: int
    span: int
    parent: int
    name: str
    kind: int
    start: int
    dur_ns: int
    attrs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # exception message: ERROR status + exception event
    exc_type: str = "ValueError"

    def otlp(self) -> dict[str, Any]:
        s: dict[str, Any] = {
            "traceId": f"{self.trace:032x}",
            "spanId": f"{self.span:016x}",
            "name": self.name,
            "kind": self.kind,
            "startTimeUnixNano": str(self.start),
            "endTimeUnixNano": str(self.start + self.dur_ns),
            "attributes": _attrs(self.attrs),
        }
        if self.parent:
            s["parentSpanId"] = f"{self.parent:016x}"
        if self.error is not None:
            s["status"] = {"code": 2, "message": self.error}
            stack = (
                "Traceback (most recent call last):\n"
                '  File "/app/views.py", line 42, in handler\n'
                "    charge(card)\n"
                # As Python prints it: no module for the main script's types.
                f"{self.exc_type.removeprefix('__main__.')}: {self.error}"
            )
            s["events"] = [
                {
                    "timeUnixNano": str(self.start + self.dur_ns - MS),
                    "name": "exception",
                    "attributes": _attrs(
                        {
                            "exception.type": self.exc_type,
                            "exception.message": self.error,
                            "exception.stacktrace": stack,
                        }
                    ),
                }
            ]
        return s


@dataclass
class Seed:
    now_ns: int
    by_resource: dict[tuple[str, str, str], list[Sp]] = field(default_factory=dict)
    big_trace: str = ""
    xss_trace: str = ""
    error_trace: str = ""
    cross_trace: str = ""
    _next_id: int = 1

    def sid(self) -> int:
        self._next_id += 1
        return self._next_id

    def add(self, service: str, env: str, release: str, sp: Sp) -> Sp:
        self.by_resource.setdefault((service, env, release), []).append(sp)
        return sp

    def requests(self, max_spans: int = 2000) -> list[dict[str, Any]]:
        """OTLP-JSON bodies of at most ``max_spans`` spans each."""
        out: list[dict[str, Any]] = []
        for (service, env, release), spans in self.by_resource.items():
            resource = {
                "attributes": _attrs(
                    {
                        "service.name": service,
                        "service.version": release,
                        "deployment.environment.name": env,
                        "host.name": "web-1",
                        "telemetry.sdk.language": "python",
                    }
                )
            }
            for i in range(0, len(spans), max_spans):
                chunk = spans[i : i + max_spans]
                out.append(
                    {
                        "resourceSpans": [
                            {
                                "resource": resource,
                                "scopeSpans": [
                                    {"scope": {"name": "tests"}, "spans": [s.otlp() for s in chunk]}
                                ],
                            }
                        ]
                    }
                )
        return out


def _http(method: str, route: str, status: int) -> dict[str, Any]:
    return {
        "http.request.method": method,
        "http.route": route,
        "http.response.status_code": status,
    }


def shop_trace(seed: Seed, rng: random.Random, start: int, env: str, n: int) -> int:
    """frontend GET/POST → checkout → payments (+ DB), or frontend → catalog."""
    trace = 0x5EED0000 + n
    release = "1.4.0" if n % 3 else "1.5.0"
    fail = n % 17 == 0
    checkout = n % 2 == 0
    route = "POST /checkout" if checkout else "GET /products/{id}"
    method, path = route.split(" ")
    dur = int(rng.lognormvariate(3.2, 0.5) * MS) + (40 * MS if checkout else 0)
    root = seed.add(
        "frontend",
        env,
        release,
        Sp(
            trace,
            seed.sid(),
            0,
            route,
            SERVER,
            start,
            dur,
            _http(method, path, 500 if fail else 200),
        ),
    )
    if fail:
        root.error = "card declined by issuer"
        root.exc_type = "PaymentError"
    callee = "checkout" if checkout else "catalog"
    croute = "POST /api/checkout" if checkout else "GET /api/products/{id}"
    cm, cp = croute.split(" ")
    client = seed.add(
        "frontend",
        env,
        release,
        Sp(
            trace,
            seed.sid(),
            root.span,
            cm,
            CLIENT,
            start + 2 * MS,
            dur - 4 * MS,
            _http(cm, "", 200),
        ),
    )
    server = seed.add(
        callee,
        env,
        "2.0.1",
        Sp(
            trace,
            seed.sid(),
            client.span,
            croute,
            SERVER,
            start + 3 * MS,
            dur - 6 * MS,
            _http(cm, cp, 500 if fail else 200),
        ),
    )
    t = start + 4 * MS
    for q in range(3):
        seed.add(
            callee,
            env,
            "2.0.1",
            Sp(
                trace,
                seed.sid(),
                server.span,
                "SELECT shop.orders",
                CLIENT,
                t,
                2 * MS,
                {
                    "db.system.name": "postgresql",
                    "db.query.text": "SELECT * FROM orders WHERE id = ?",
                    "db.call": q,
                },
            ),
        )
        t += 3 * MS
    if checkout:
        pc = seed.add(
            "checkout",
            env,
            "2.0.1",
            Sp(trace, seed.sid(), server.span, "POST", CLIENT, t, 20 * MS, _http("POST", "", 200)),
        )
        ps = seed.add(
            "payments",
            env,
            "0.9.0",
            Sp(
                trace,
                seed.sid(),
                pc.span,
                "POST /v1/charges",
                SERVER,
                t + MS,
                18 * MS,
                _http("POST", "/v1/charges", 502 if fail else 201),
            ),
        )
        if fail:
            ps.error = "card declined by issuer"
            ps.exc_type = "__main__.PaymentError"  # raised in a script: shown bare
    return trace


def big_trace(seed: Seed, start: int) -> int:
    """A batch job of exactly BIG_TRACE_SPANS spans, 3 levels deep, calling catalog."""
    trace = 0xB16B16
    root = seed.add(
        "worker",
        "production",
        "3.1.0",
        Sp(trace, seed.sid(), 0, "nightly-import", SERVER, start, 0),
    )
    made, t, chunk = 1, start + MS, 0
    while made < BIG_TRACE_SPANS:
        c = seed.add(
            "worker",
            "production",
            "3.1.0",
            Sp(
                trace,
                seed.sid(),
                root.span,
                f"import chunk {chunk}",
                INTERNAL,
                t,
                0,
                {"chunk": chunk},
            ),
        )
        made += 1
        ct = t
        for i in range(99):
            if made >= BIG_TRACE_SPANS:
                break
            seed.add(
                "worker",
                "production",
                "3.1.0",
                Sp(
                    trace,
                    seed.sid(),
                    c.span,
                    "INSERT catalog.items",
                    CLIENT,
                    ct,
                    300_000 + (i % 7) * 50_000,
                    {
                        "db.system.name": "postgresql",
                        "db.query.text": "INSERT INTO items VALUES (?, ?)",
                        "row": i,
                    },
                ),
            )
            ct += 400_000
            made += 1
        c.dur_ns = ct - t
        t = ct + 100_000
        chunk += 1
    root.dur_ns = t - start
    return trace


def xss_trace(seed: Seed, start: int) -> int:
    trace = 0x5C217
    root = seed.add(
        XSS_SERVICE,
        "production",
        "6.6.6",
        Sp(
            trace,
            seed.sid(),
            0,
            XSS_SPAN,
            SERVER,
            start,
            30 * MS,
            {**_http("GET", XSS_ROUTE, 500), XSS_KEY: XSS_VALUE, "user.note": XSS_VALUE},
        ),
    )
    root.error = XSS_MESSAGE
    root.exc_type = "XSSError"
    seed.add(
        "frontend",
        "production",
        "1.5.0",
        Sp(
            trace,
            seed.sid(),
            root.span,
            XSS_SPAN,
            SERVER,
            start + 5 * MS,
            10 * MS,
            {**_http("GET", XSS_ROUTE, 200), XSS_KEY: XSS_VALUE},
        ),
    )
    return trace


def build(now_ns: int, traces: int = 240, seed_value: int = 7) -> Seed:
    """All test data, spread over the 50 minutes before ``now_ns``."""
    rng = random.Random(seed_value)
    seed = Seed(now_ns)
    for n in range(traces):
        start = now_ns - 50 * MIN + n * (50 * MIN // traces)
        env = "staging" if n % 5 == 4 else "production"
        tid = shop_trace(seed, rng, start, env, n)
        if n == 34:
            seed.error_trace = f"{tid:032x}"
        if n == 40:
            seed.cross_trace = f"{tid:032x}"
    seed.big_trace = f"{big_trace(seed, now_ns - 20 * MIN):032x}"
    seed.xss_trace = f"{xss_trace(seed, now_ns - 10 * MIN):032x}"
    return seed
