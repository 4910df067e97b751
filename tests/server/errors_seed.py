"""Seed data for the error-tracking and logs read side: events, issues, logs, spans.

``build(now_ns)`` makes model records (ErrorEvent, LogRecord, Span) relative to a clock;
``insert(store, seed)`` stores them through the store's writer (``submit_events``, which
groups events into issues: here by explicit fingerprint) and sets statuses with the read
side's ``set_issue_status``.

Issues (all in project 1):
- ``ZeroDivisionError`` in shop ``GET /orders``: 5 events in the last 10 minutes, prod,
  releases 1.0 ×3 / 2.0 ×2, users u1 u2 u3 (u1 twice) + one anonymous; a chained
  KeyError → ZeroDivisionError with in-app and library frames, locals, breadcrumbs,
  request, tags; each event in its own trace, the newest one with spans and logs.
- ``ValueError`` in inventory, staging: 2 events, resolved in 1.0.
- ``Payment provider slow`` (a message, level warning): 1 event three hours ago, ignored.
- ``TimeoutError`` in shop: 3 events, resolved in 1.0, reopened by a 2.0 event (regressed).
- XSS: markup in the type, message, culprit, frames, breadcrumbs, tags and request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from heron.server.analyze.grouping import assign
from heron.server.ingest.pipeline import Pipeline
from heron.server.model import SPAN_KIND_SERVER, ErrorEvent, LogRecord, Span
from heron.server.model.write import EventWrite
from heron.server.query import set_issue_status
from heron.server.store.base import Store

NS = 1_000_000_000
MS = 1_000_000
PROJECT = 1
XSS_TYPE = "<script>alert('type')</script>"
XSS_MESSAGE = "<img src=x onerror=alert('message')>"
XSS_FRAME = "<svg onload=alert('frame')>"
XSS_CRUMB = "<iframe src=javascript:alert('crumb')>"
XSS_LOG = "<script>alert('log')</script>"
XSS_TAG = "\"><script>alert('tag')</script>"
LITERAL_LOG = "progress 100% done_ok"


@dataclass
class Seed:
    now_ns: int
    events: list[ErrorEvent] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    trace_with_logs: str = ""
    latest_zero_event: str = ""

    def titles(self) -> dict[str, str]:
        """Issue titles by short name (as the grouping names them: ``Type: message``)."""
        return {
            "zero": "ZeroDivisionError: division by zero",
            "value": "ValueError: bad sku 42",
            "slow": "Payment provider slow",
            "timeout": "TimeoutError: upstream timed out",
            "xss": f"{XSS_TYPE}: {XSS_MESSAGE}",
        }


def _frame(module: str, function: str, lineno: int, in_app: bool, **kw: Any) -> dict[str, Any]:
    return {
        "filename": module.replace(".", "/") + ".py",
        "abs_path": "/srv/app/" + module.replace(".", "/") + ".py",
        "module": module,
        "function": function,
        "lineno": lineno,
        "context_line": kw.pop("context_line", f"    return {function}(x)"),
        "pre_context": kw.pop("pre_context", ["def handler(x):", "    y = x + 1"]),
        "post_context": kw.pop("post_context", ["", "# end"]),
        "in_app": in_app,
        **kw,
    }


def _zero_exceptions() -> list[dict[str, Any]]:
    return [
        {
            "type": "KeyError",
            "value": "'price'",
            "module": "builtins",
            "mechanism": {"type": "chained", "handled": True},
            "frames": [_frame("shop.pricing", "price_of", 12, True)],
        },
        {
            "type": "ZeroDivisionError",
            "value": "division by zero",
            "module": "builtins",
            "mechanism": {"type": "flask", "handled": False},
            "frames": [
                _frame("flask.app", "dispatch_request", 880, False),
                _frame(
                    "shop.views",
                    "list_orders",
                    42,
                    True,
                    context_line="    avg = total / count",
                    vars={"total": "10", "count": "0", "password": "[Filtered]"},
                ),
            ],
        },
    ]


def _event(seed: Seed, n: int, t_ns: int, **kw: Any) -> ErrorEvent:
    event_id = f"{n:032x}"
    trace = kw.pop("trace", n)
    ev = ErrorEvent(
        event_id=event_id,
        time_ns=t_ns,
        received_ns=t_ns + 5 * MS,
        service=kw.pop("service", "shop"),
        environment=kw.pop("environment", "prod"),
        release=kw.pop("release", "1.0"),
        level=kw.pop("level", "error"),
        platform="python",
        source=kw.pop("source", "sentry"),
        exc_type=kw.pop("exc_type", "ZeroDivisionError"),
        message=kw.pop("message", "division by zero"),
        culprit=kw.pop("culprit", "shop.views in list_orders"),
        transaction=kw.pop("transaction", "GET /orders"),
        trace_id=trace.to_bytes(16, "big") if trace else None,
        span_id=kw.pop("span_id", 1 if trace else 0),
        sdk="sentry.python/2.75.0",
        **kw,
    )
    seed.events.append(ev)
    return ev


def build(now_ns: int) -> Seed:
    seed = Seed(now_ns)
    minute = 60 * NS
    users = [{"id": "u1"}, {"id": "u2"}, {"id": "u1"}, {"id": "u3"}, {}]
    for i, user in enumerate(users):  # ZeroDivisionError: newest last
        _event(
            seed,
            0x100 + i,
            now_ns - (9 - 2 * i) * minute,
            release="1.0" if i < 3 else "2.0",
            user=user,
            exceptions=_zero_exceptions(),
            breadcrumbs=[
                {
                    "timestamp": (now_ns - 10 * minute) / NS,
                    "type": "http",
                    "category": "httpx",
                    "level": "info",
                    "message": "GET http://inventory/stock",
                    "data": {"status_code": 200},
                },
                {
                    "timestamp": (now_ns - 10 * minute) / NS + 0.5,
                    "type": "default",
                    "category": "shop.views",
                    "level": "warning",
                    "message": "empty basket",
                    "data": {},
                },
            ],
            request={
                "method": "GET",
                "url": "http://shop.test/orders?page=2",
                "query_string": "page=2",
                "headers": {"User-Agent": "Firefox/126", "Authorization": "[Filtered]"},
            },
            tags={"browser": "Firefox" if i % 2 == 0 else "Chrome", "region": "eu"},
            contexts={"runtime": {"name": "CPython", "version": "3.12.3"}},
            extra={"order_count": 0},
            handled=False,
            logger="shop.views",
            explicit_fingerprint=["zero"],
        )
    latest = seed.events[-1]
    seed.latest_zero_event = latest.event_id
    assert latest.trace_id is not None
    seed.trace_with_logs = latest.trace_id.hex()
    seed.spans.append(
        Span(
            trace_id=latest.trace_id,
            span_id=1,
            parent_id=0,
            start_ns=latest.time_ns - 50 * MS,
            duration_ns=80 * MS,
            name="GET /orders",
            kind=SPAN_KIND_SERVER,
            status=2,
            status_message="",
            service="shop",
            environment="prod",
            release="2.0",
            http_method="GET",
            http_route="/orders",
            http_status=500,
            resource={"service.name": "shop"},
        )
    )
    for i in range(2):  # ValueError in inventory, staging
        _event(
            seed,
            0x200 + i,
            now_ns - (20 + i) * minute,
            service="inventory",
            environment="staging",
            exc_type="ValueError",
            message="bad sku 42",
            culprit="inventory.stock in reserve",
            transaction="POST /reserve",
            user={"id": "u9"},
            exceptions=[
                {
                    "type": "ValueError",
                    "value": "bad sku 42",
                    "frames": [_frame("inventory.stock", "reserve", 7, True)],
                }
            ],
            explicit_fingerprint=["value"],
        )
    _event(  # a message, three hours ago
        seed,
        0x300,
        now_ns - 180 * minute,
        level="warning",
        exc_type=None,
        message="Payment provider slow",
        culprit="GET /checkout",
        transaction="GET /checkout",
        trace=0,
        explicit_fingerprint=["slow"],
    )
    for i in range(3):  # TimeoutError: 1.0, 1.0, then 2.0 after it was resolved in 1.0
        _event(
            seed,
            0x400 + i,
            now_ns - (30 - i) * minute,
            release="1.0" if i < 2 else "2.0",
            exc_type="TimeoutError",
            message="upstream timed out",
            culprit="shop.client in fetch",
            exceptions=[{"type": "TimeoutError", "value": "upstream timed out", "frames": []}],
            explicit_fingerprint=["timeout"],
        )
    _event(  # markup everywhere
        seed,
        0x500,
        now_ns - 5 * minute,
        exc_type=XSS_TYPE,
        message=XSS_MESSAGE,
        culprit=f"shop.views in {XSS_FRAME}",
        transaction=f"GET /{XSS_FRAME}",
        exceptions=[
            {
                "type": XSS_TYPE,
                "value": XSS_MESSAGE,
                "frames": [
                    _frame(
                        "shop.views",
                        XSS_FRAME,
                        3,
                        True,
                        context_line=f"    raise Evil('{XSS_FRAME}')",
                        vars={XSS_FRAME: XSS_MESSAGE},
                    )
                ],
            }
        ],
        breadcrumbs=[
            {
                "timestamp": now_ns / NS - 400,
                "category": XSS_CRUMB,
                "message": XSS_CRUMB,
                "level": "error",
                "type": "default",
                "data": {XSS_CRUMB: XSS_CRUMB},
            }
        ],
        request={
            "method": "POST",
            "url": f"http://shop.test/{XSS_FRAME}",
            "headers": {XSS_TAG: XSS_TAG},
        },
        user={"id": XSS_TAG, "email": XSS_CRUMB},
        tags={XSS_TAG: XSS_TAG},
        explicit_fingerprint=["xss"],
    )
    _logs(seed)
    return seed


def _log(seed: Seed, t_ns: int, sev: int, text: str, body: str, **kw: Any) -> None:
    seed.logs.append(
        LogRecord(
            time_ns=t_ns,
            observed_ns=t_ns + MS,
            trace_id=kw.pop("trace_id", None),
            span_id=kw.pop("span_id", 0),
            severity_number=sev,
            severity_text=text,
            body=body,
            service=kw.pop("service", "shop"),
            environment=kw.pop("environment", "prod"),
            release=kw.pop("release", "2.0"),
            logger=kw.pop("logger", "shop.views"),
            attributes=kw.pop("attributes", {"code.function.name": "list_orders"}),
            resource={"service.name": "shop"},
            **kw,
        )
    )


def _logs(seed: Seed) -> None:
    latest = next(e for e in seed.events if e.event_id == seed.latest_zero_event)
    trace = latest.trace_id
    t = latest.time_ns
    _log(seed, t - 40 * MS, 9, "INFO", "listing orders for u3", trace_id=trace, span_id=1)
    _log(seed, t - 20 * MS, 13, "WARNING", "empty basket", trace_id=trace, span_id=1)
    _log(
        seed,
        t,
        17,
        "ERROR",
        "division by zero while listing orders",
        trace_id=trace,
        span_id=1,
        event_id=latest.event_id,
        attributes={"exception.type": "ZeroDivisionError"},
    )
    minute = 60 * NS
    _log(seed, seed.now_ns - 3 * minute, 9, "INFO", LITERAL_LOG)
    _log(seed, seed.now_ns - 3 * minute - MS, 9, "INFO", "progress 100 percent doneXok")
    _log(seed, seed.now_ns - 4 * minute, 5, "DEBUG", "cache warm", service="inventory")
    _log(seed, seed.now_ns - 4 * minute, 21, "FATAL", "out of memory", service="inventory")
    _log(seed, seed.now_ns - 2 * minute, 17, "ERROR", XSS_LOG, logger=XSS_FRAME)
    for i in range(12):  # same-nanosecond records: pages must neither skip nor repeat
        _log(seed, seed.now_ns - 6 * minute, 9, "INFO", f"batch line {i:02d}", service="batch")
    _log(seed, seed.now_ns - 200 * minute, 9, "INFO", "long ago")


# ------------------------------------------------------------------------- storing


def insert(store: Store, seed: Seed) -> dict[str, int]:
    """Store the seed through the writer; returns issue ids by short name.

    The last TimeoutError (release 2.0) arrives after its issue was resolved in 1.0, so
    the writer reopens it as a regression; then ValueError is resolved in 1.0 and the
    slow-payment message ignored.
    """
    if seed.spans:
        Pipeline(store).submit_spans(PROJECT, seed.spans).result(30)
    events = [assign(e) for e in seed.events]
    late = max(
        (e for e in events if e.explicit_fingerprint == ["timeout"]), key=lambda e: e.time_ns
    )
    store.submit_events(
        EventWrite(PROJECT, [e for e in events if e is not late], seed.logs)
    ).result(30)
    ids = _issue_ids(store, seed)
    now = time.time_ns()
    assert set_issue_status(store, PROJECT, ids["timeout"], "resolved", "1.0", now_ns=now)
    store.submit_events(EventWrite(PROJECT, [late], [])).result(30)
    assert set_issue_status(store, PROJECT, ids["value"], "resolved", "1.0", now_ns=now)
    assert set_issue_status(store, PROJECT, ids["slow"], "ignored", now_ns=now)
    return ids


def _issue_ids(store: Store, seed: Seed) -> dict[str, int]:
    rows = store.issues.list_issues(
        PROJECT, 0, 2**62, {}, status=None, sort="last_seen", limit=1000
    )
    by_title = {row[1]: row[0] for row in rows}
    return {name: by_title[t] for name, t in seed.titles().items()}
