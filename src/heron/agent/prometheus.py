"""Prometheus exposition of the agent's metrics: ``heron.metrics_app()`` and ``prometheus=<port>``.

A second metric reader (cumulative, as Prometheus expects) on heron's meter provider is
collected at each scrape and rendered in the Prometheus text format (0.0.4): dots in names
become underscores, units become suffixes (``_seconds``, ``_bytes``, ``_ratio``), monotonic
sums are counters (``_total``), histograms have ``_bucket``/``_sum``/``_count``. Every
series carries the resource's ``service_name``, ``service_version``,
``deployment_environment_name`` and ``process_pid`` as labels.

**Several worker processes** (gunicorn, uvicorn ``--workers``): each worker has its own
metrics, and a scrape reaches one of them. Set ``HERON_PROMETHEUS_DIR`` to a directory
the workers share: each worker writes a snapshot there every export interval (and the
serving worker right before answering), and ``/metrics`` answers with every live
worker's series, told apart by ``process_pid``. Files of dead workers are removed.
``sum(rate(x_total[5m]))`` then counts all workers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron.agent.guard import capture_internal_exceptions

if TYPE_CHECKING:
    from heron.agent.config import AgentConfig
    from heron.agent.otel_metrics import MetricsPipeline

logger = logging.getLogger("heron.agent")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RESOURCE_LABELS = {
    "service.name": "service_name",
    "service.version": "service_version",
    "deployment.environment.name": "deployment_environment_name",
    "process.pid": "process_pid",
}
_UNITS = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "ratio"}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")

# One family: name, type, help, samples (suffix, labels, value).
Family = dict[str, Any]


def metric_name(name: str, unit: str, kind: str) -> str:
    """``process.cpu.time`` (s, counter) → ``process_cpu_time_seconds_total``.

    A ``_count`` ending is kept for histograms only (promtool's rule): a counter or gauge
    named ``*.count`` loses it for a plural, ``process.thread.count`` → ``process_threads``.
    """
    base = _INVALID.sub("_", name)
    if base[:1].isdigit():
        base = "_" + base
    if base.endswith("_count") and len(base) > 6:
        base = base[: -len("_count")] + "s"
    suffix = _UNITS.get(unit or "")
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    if kind == "counter" and not base.endswith("_total"):
        base += "_total"
    return base


def label_name(key: str) -> str:
    name = _INVALID.sub("_", key).replace(":", "_")
    return "_" + name if name[:1].isdigit() else name


def _escape(value: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = json.dumps(list(value))
    else:
        text = str(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def families(metrics_data: Any) -> list[Family]:
    """The Prometheus families of one SDK ``MetricsData`` (cumulative)."""
    from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum

    out: dict[str, Family] = {}
    for rm in metrics_data.resource_metrics if metrics_data is not None else ():
        resource = {
            label: rm.resource.attributes[key]
            for key, label in RESOURCE_LABELS.items()
            if key in rm.resource.attributes
        }
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                data = metric.data
                if isinstance(data, Sum):
                    kind = "counter" if data.is_monotonic else "gauge"
                elif isinstance(data, Gauge):
                    kind = "gauge"
                elif isinstance(data, Histogram):
                    kind = "histogram"
                else:  # exponential histograms: not in the text format
                    continue
                name = metric_name(metric.name, metric.unit, kind)
                help_text = metric.description or (
                    f"{metric.name} ({metric.unit})" if metric.unit else metric.name
                )
                family = out.setdefault(
                    name, {"name": name, "type": kind, "help": help_text, "samples": []}
                )
                for point in data.data_points:
                    labels = {label_name(k): v for k, v in (point.attributes or {}).items()}
                    labels.update(resource)
                    if kind != "histogram":
                        family["samples"].append(["", labels, point.value])
                        continue
                    running = 0
                    for bound, count in zip(
                        point.explicit_bounds, point.bucket_counts, strict=False
                    ):
                        running += count
                        family["samples"].append(["_bucket", {**labels, "le": bound}, running])
                    family["samples"].append(["_bucket", {**labels, "le": "+Inf"}, point.count])
                    family["samples"].append(["_sum", labels, point.sum])
                    family["samples"].append(["_count", labels, point.count])
    return list(out.values())


def render(groups: Iterable[list[Family]]) -> str:
    """Prometheus text from the families of one or more processes (merged by name)."""
    merged: dict[str, Family] = {}
    for group in groups:
        for family in group:
            into = merged.setdefault(family["name"], {**family, "samples": []})
            if into["type"] == family["type"]:
                into["samples"].extend(family["samples"])
    lines: list[str] = []
    for name in sorted(merged):
        family = merged[name]
        if family["help"]:
            help_text = family["help"].replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {family['type']}")
        for suffix, labels, value in family["samples"]:
            sample = name + suffix
            if family["type"] == "histogram" and "le" in labels:
                labels = {
                    **labels,
                    "le": _number(labels["le"]) if labels["le"] != "+Inf" else "+Inf",
                }
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(
                f"{sample}{{{text}}} {_number(value)}" if text else f"{sample} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


class SnapshotExporter:
    """Keeps the latest cumulative collection; in a shared directory too, when configured."""

    def __init__(self, directory: str | None) -> None:
        self.directory = Path(directory) if directory else None
        self.latest: list[Family] = []
        self._lock = threading.Lock()

    def store(self, metrics_data: Any) -> None:
        fams = families(metrics_data)
        with self._lock:
            self.latest = fams
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "w") as f:
                json.dump(fams, f)
            os.replace(tmp, self.directory / f"heron-{os.getpid()}.json")

    def groups(self) -> Iterator[list[Family]]:
        if self.directory is None:
            yield self.latest
            return
        for path in sorted(self.directory.glob("heron-*.json")):
            pid = int(path.stem.split("-", 1)[1]) if path.stem.split("-", 1)[1].isdigit() else 0
            if pid != os.getpid() and not _alive(pid):
                with capture_internal_exceptions:
                    path.unlink(missing_ok=True)
                continue
            try:
                yield json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced, or gone


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _make_reader(exporter: SnapshotExporter, config: AgentConfig) -> Any:
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        MetricExporter,
        MetricExportResult,
    )

    from heron.agent.otel_metrics import _INSTRUMENTS, periodic_reader

    class _Export(MetricExporter):
        def __init__(self) -> None:
            super().__init__(
                preferred_temporality=dict.fromkeys(_INSTRUMENTS, AggregationTemporality.CUMULATIVE)
            )

        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kw: Any) -> Any:
            with capture_internal_exceptions:
                exporter.store(metrics_data)
                serve_if_free()
                return MetricExportResult.SUCCESS
            return MetricExportResult.FAILURE

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kw: Any) -> None:
            if exporter.directory is not None:
                with capture_internal_exceptions:
                    (exporter.directory / f"heron-{os.getpid()}.json").unlink(missing_ok=True)

    # Without a shared directory there is nothing to write between scrapes: no thread.
    interval = config.metric_export_interval_ms if config.prometheus_dir else math.inf
    return periodic_reader(_Export(), interval, config.metric_cardinality_limit)


class _State:
    reader: Any = None
    exporter: SnapshotExporter | None = None
    port: int | None = None
    server: ThreadingHTTPServer | None = None
    server_pid: int = 0
    warned = False
    lock = threading.Lock()


def _after_fork() -> None:
    _State.lock = threading.Lock()
    if _State.exporter is not None:
        _State.exporter._lock = threading.Lock()


def install(pipeline: MetricsPipeline, config: AgentConfig) -> None:
    """Add the Prometheus reader to heron's meter provider; serve ``config.prometheus_port``."""
    from heron.agent.fork import after_fork_in_child

    after_fork_in_child(_after_fork)
    exporter = SnapshotExporter(config.prometheus_dir)
    reader = _make_reader(exporter, config)
    pipeline.add_reader(reader)
    _State.reader, _State.exporter, _State.port = reader, exporter, config.prometheus_port
    serve_if_free()


def scrape() -> str | None:
    """The exposition text, freshly collected; None when heron's Prometheus view is off."""
    reader, exporter = _State.reader, _State.exporter
    if reader is None or exporter is None:
        return None
    reader.force_flush(timeout_millis=5000)
    return render(exporter.groups())


def serve_if_free() -> None:
    """Serve the port if configured and not served by this process yet (retried each export)."""
    port = _State.port
    if port is None or (_State.server is not None and _State.server_pid == os.getpid()):
        return
    with _State.lock:
        if _State.server is not None and _State.server_pid == os.getpid():
            return
        try:
            server = ThreadingHTTPServer(("0.0.0.0", port), _Handler)
        except OSError as e:
            # With several workers sharing HERON_PROMETHEUS_DIR, one of them serves it.
            shared = _State.exporter is not None and _State.exporter.directory is not None
            level = logging.DEBUG if shared or _State.warned else logging.WARNING
            _State.warned = True
            logger.log(level, "heron: cannot serve Prometheus metrics on port %d: %r", port, e)
            return
        server.daemon_threads = True
        _State.server, _State.server_pid = server, os.getpid()
        threading.Thread(target=server.serve_forever, name="heron-prometheus", daemon=True).start()
        logger.info("heron: Prometheus metrics at http://0.0.0.0:%d/metrics", port)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self.send_error(404)
            return
        body = (scrape() or "").encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class MetricsApp:
    """A WSGI *and* ASGI app answering any GET with the Prometheus text (mount it at /metrics)."""

    def __call__(self, *args: Any) -> Any:
        if len(args) == 3:
            return self._asgi(*args)
        environ, start_response = args
        status, body = self._answer()
        start_response(status, [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
        return [body]

    def _answer(self) -> tuple[str, bytes]:
        text: str | None = None
        with capture_internal_exceptions:
            text = scrape()
        if text is None:
            return (
                "503 Service Unavailable",
                b"heron: Prometheus metrics are off (init(prometheus=True))\n",
            )
        return "200 OK", text.encode()

    async def _asgi(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        status, body = self._answer()
        await send(
            {
                "type": "http.response.start",
                "status": int(status.split()[0]),
                "headers": [
                    (b"content-type", CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
