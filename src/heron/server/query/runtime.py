"""The runtime and host metrics the UI charts, by name, in one place.

The agent sends them with OpenTelemetry semantic-convention names where those exist
(``process.*``, ``system.*``, ``cpython.*``) and under ``heron.`` otherwise; if a name
changes, it changes here only. The Runtime tab, the Host view and the default dashboard
of a service are built from these panels (``model/dashboard.Panel``), so they all draw
the same way as a user's dashboard.
"""

from __future__ import annotations

from heron.server.model.dashboard import DashboardSpec, MetricQuery, Panel, RedQuery

# Process (one series per instance).
PROCESS_CPU = "process.cpu.utilization"
PROCESS_MEMORY = "process.memory.usage"
PROCESS_THREADS = "process.thread.count"
GC_COLLECTIONS = "cpython.gc.collections"
GC_PAUSE = "cpython.gc.pause.duration"
EVENT_LOOP_LAG = "heron.asyncio.event_loop.lag"
# Host (one series per host.name, and per mode/state/mount where they apply).
SYSTEM_CPU = "system.cpu.utilization"
SYSTEM_MEMORY = "system.memory.utilization"
SYSTEM_LOAD_1M = "system.cpu.load_average.1m"
SYSTEM_FILESYSTEM = "system.filesystem.utilization"

HOST = "host.name"
CPU_MODE = "cpu.mode"
MEMORY_STATE = "system.memory.state"
FILESYSTEM_STATE = "system.filesystem.state"
MOUNTPOINT = "system.filesystem.mountpoint"
# What tells one process of a service from another (a gunicorn worker, a pod).
INSTANCE_LABELS: tuple[str, ...] = (HOST, "process.pid")
IDLE_MODES = ("idle",)


def runtime_panels(service: str) -> list[Panel]:
    """The Runtime tab's charts of ``service``: one line per instance."""
    only = {"service": service}
    by = list(INSTANCE_LABELS)

    def panel(title: str, metric: str, agg: str) -> Panel:
        query = MetricQuery.model_validate({"metric": metric, "agg": agg, "by": by, "filter": only})
        return Panel(title=title, type="line", query=query, width=6)

    return [
        panel("CPU utilisation", PROCESS_CPU, "avg"),
        panel("Memory (RSS)", PROCESS_MEMORY, "avg"),
        panel("GC collections per second", GC_COLLECTIONS, "rate"),
        panel("Threads", PROCESS_THREADS, "avg"),
        panel("Event-loop lag (max)", EVENT_LOOP_LAG, "max"),
    ]


def host_panels(host: str) -> list[Panel]:
    """The Host view's charts of one host."""

    def panel(title: str, metric: str, agg: str, by: list[str], match: dict[str, str]) -> Panel:
        query = MetricQuery.model_validate(
            {"metric": metric, "agg": agg, "by": by, "filter": {HOST: host, **match}}
        )
        return Panel(title=title, type="line", query=query, width=6)

    return [
        panel("CPU utilisation by mode", SYSTEM_CPU, "avg", [CPU_MODE], {}),
        panel("Memory used", SYSTEM_MEMORY, "avg", [], {MEMORY_STATE: "used"}),
        panel("Load average (1 min)", SYSTEM_LOAD_1M, "avg", [], {}),
        panel(
            "Disk used by mount", SYSTEM_FILESYSTEM, "max", [MOUNTPOINT], {FILESYSTEM_STATE: "used"}
        ),
    ]


def red_panels(service: str) -> list[Panel]:
    """The RED figures of a service, as panels."""

    def panel(title: str, figure: str, kind: str, width: int) -> Panel:
        query = RedQuery.model_validate({"service": service, "figure": figure})
        return Panel.model_validate({"title": title, "type": kind, "query": query, "width": width})

    return [
        panel("Requests", "requests", "stat", 3),
        panel("Error rate", "error_rate", "stat", 3),
        panel("p95 latency", "p95", "stat", 3),
        panel("Apdex", "apdex", "stat", 3),
        panel("Throughput (req/min)", "rpm", "area", 6),
        panel("Latency p95", "p95", "line", 6),
    ]


def default_dashboard(service: str) -> DashboardSpec:
    """A service's dashboard before anyone saved one: its RED figures, then its runtime."""
    return DashboardSpec(
        title=f"{service} overview",
        description=f"RED figures and runtime of {service} (generated; save a copy to edit).",
        panels=[*red_panels(service), *runtime_panels(service)],
    )
