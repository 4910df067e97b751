"""OTLP-JSON ``/v1/metrics`` bodies for the metrics pages: the runtime and host metrics
the agent sends (names from ``query/runtime.py``), a business counter with a hostile
label value, and a request-duration histogram whose exemplars point at a seeded trace.

Two processes of ``frontend`` on host ``web-1``, one point per minute for ``minutes``
minutes up to ``now_ns``; values are simple functions of the minute so tests can check
them.
"""

from __future__ import annotations

from typing import Any

from heron.server.query import runtime

XSS = "<img src=x onerror=alert(1)>"
SERVICE = "frontend"
HOST = "web-1"
PIDS = (101, 202)
MIN_NS = 60 * 10**9


def _attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for k, v in d.items():
        value = {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}
        out.append({"key": k, "value": value})
    return out


def _gauge(name: str, unit: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "unit": unit, "gauge": {"dataPoints": points}}


def _sum(name: str, unit: str, points: list[dict[str, Any]], monotonic: bool) -> dict[str, Any]:
    # Delta temporality (1): each point is the interval's increase (or value).
    return {
        "name": name,
        "unit": unit,
        "sum": {"dataPoints": points, "aggregationTemporality": 1, "isMonotonic": monotonic},
    }


def _point(t: int, value: float, **attrs: str) -> dict[str, Any]:
    return {
        "timeUnixNano": str(t),
        "startTimeUnixNano": str(t - MIN_NS),
        "asDouble": value,
        "attributes": _attrs(attrs),
    }


def bodies(now_ns: int, exemplar_trace: str, minutes: int = 30) -> list[dict[str, Any]]:
    times = [now_ns - (minutes - i) * MIN_NS for i in range(minutes)]
    out = []
    for n, pid in enumerate(PIDS):
        resource = {
            "attributes": _attrs({"service.name": SERVICE, "host.name": HOST, "process.pid": pid})
        }
        metrics = [
            _gauge(runtime.PROCESS_CPU, "1", [_point(t, 0.1 * (n + 1)) for t in times]),
            _gauge(
                runtime.PROCESS_MEMORY, "By", [_point(t, (100 + 50 * n) * 2**20) for t in times]
            ),
            _gauge(runtime.PROCESS_THREADS, "{thread}", [_point(t, 4 + n) for t in times]),
            _sum(
                runtime.GC_COLLECTIONS,
                "{collection}",
                [_point(t, 60, **{"cpython.gc.generation": "0"}) for t in times],
                True,
            ),
            _gauge(runtime.EVENT_LOOP_LAG, "s", [_point(t, 0.002 * (n + 1)) for t in times]),
            _sum(
                "orders.placed",
                "{order}",
                [
                    p
                    for t in times
                    for p in (
                        _point(t, 6, region="eu"),
                        _point(t, 3, region="us"),
                        _point(t, 1, region=XSS),
                    )
                ],
                True,
            ),
            {
                "name": "http.server.request.duration",
                "unit": "s",
                "histogram": {
                    "aggregationTemporality": 1,
                    "dataPoints": [
                        {
                            "timeUnixNano": str(t),
                            "startTimeUnixNano": str(t - MIN_NS),
                            "count": "10",
                            "sum": 1.0,
                            "bucketCounts": ["5", "4", "1"],
                            "explicitBounds": [0.05, 0.25],
                            "attributes": _attrs({"http.route": "/checkout"}),
                            "exemplars": [
                                {
                                    "timeUnixNano": str(t - MIN_NS // 2),
                                    "asDouble": 0.2,
                                    "traceId": exemplar_trace,
                                    "spanId": f"{i + 1:016x}",
                                }
                            ]
                            if i % 10 == 0 and n == 0
                            else [],
                        }
                        for i, t in enumerate(times)
                    ],
                },
            },
        ]
        if n == 0:  # host metrics, once per host
            metrics += [
                _gauge(
                    runtime.SYSTEM_CPU,
                    "1",
                    [
                        p
                        for t in times
                        for p in (
                            _point(t, 0.3, **{runtime.CPU_MODE: "user"}),
                            _point(t, 0.6, **{runtime.CPU_MODE: "idle"}),
                        )
                    ],
                ),
                _gauge(
                    runtime.SYSTEM_MEMORY,
                    "1",
                    [_point(t, 0.42, **{runtime.MEMORY_STATE: "used"}) for t in times],
                ),
                _gauge(runtime.SYSTEM_LOAD_1M, "{thread}", [_point(t, 1.5) for t in times]),
                _gauge(
                    runtime.SYSTEM_FILESYSTEM,
                    "1",
                    [
                        p
                        for t in times
                        for p in (
                            _point(
                                t,
                                0.5,
                                **{runtime.MOUNTPOINT: "/", runtime.FILESYSTEM_STATE: "used"},
                            ),
                            _point(
                                t,
                                0.25,
                                **{runtime.MOUNTPOINT: XSS, runtime.FILESYSTEM_STATE: "used"},
                            ),
                        )
                    ],
                ),
            ]
        out.append(
            {
                "resourceMetrics": [
                    {
                        "resource": resource,
                        "scopeMetrics": [{"scope": {"name": "test"}, "metrics": metrics}],
                    }
                ]
            }
        )
    return out
