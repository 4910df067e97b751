"""The OpenTelemetry SDK metrics pipeline: resource → MeterProvider → periodic reader → OTLP/HTTP.

Like :mod:`heron.agent.otel` for traces, this is the only metrics module that knows the SDK.

**Temporality: cumulative** (the OTel default) for every instrument. A lost export (Heron
down, a network blip) then costs nothing: the next point carries the total again, and the
server turns cumulative points into per-interval increases with reset detection. The price
is that every attribute set stays in memory and is exported every interval, which the
cardinality cap bounds. ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta`` (or
``lowmemory``) switches, as in the OTel SDK.

**Cardinality.** The SDK (>= 1.3x) caps the attribute sets of each instrument; past the cap
measurements go to one series with ``otel.metric.overflow=true``. Heron sets the cap
(``metric_cardinality_limit``, default 2000) and counts the instruments that overflowed
(``heron.stats().metrics_overflowed``), logging each one once.

**Fork safety.** The SDK restarts the reader's thread in a child and gives the provider a
new ``service.instance.id``; heron then (in an at-fork hook registered after the SDK's)
gives the meter provider the trace provider's ``process.pid`` and ``service.instance.id``,
empties the inherited aggregations (a child must not report its parent's counts as its
own), renews the reader's export lock, and rebuilds the exporter's connection pool.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from heron.agent.config import AgentConfig
from heron.agent.exporter import OutageLogGate
from heron.agent.guard import capture_internal_exceptions
from heron.agent.otel import run_with_timeout

try:  # the synchronous Gauge arrived in SDK 1.23
    from opentelemetry.sdk.metrics import _Gauge as _SyncGauge
except ImportError:  # pragma: no cover - older SDKs
    _SyncGauge = None  # type: ignore[assignment,misc]

logger = logging.getLogger("heron.agent")

OVERFLOW = "otel.metric.overflow"
# The official metric exporter logs each failed export (every interval during an outage).
GATED_METRIC_LOGGER = "opentelemetry.exporter.otlp.proto.http.metric_exporter"
TEMPORALITY_VARIABLE = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"

_INSTRUMENTS: tuple[type, ...] = (
    Counter,
    UpDownCounter,
    Histogram,
    ObservableCounter,
    ObservableUpDownCounter,
    ObservableGauge,
) + ((_SyncGauge,) if _SyncGauge is not None else ())


def temporality(environ: dict[str, str] | None = None) -> dict[type, AggregationTemporality]:
    """Cumulative everywhere, unless the OTel variable asks for ``delta`` or ``lowmemory``."""
    wanted = (environ if environ is not None else os.environ).get(TEMPORALITY_VARIABLE, "")
    wanted = wanted.strip().lower()
    out = {cls: AggregationTemporality.CUMULATIVE for cls in _INSTRUMENTS}
    if wanted == "delta":
        for cls in (Counter, ObservableCounter, Histogram):
            out[cls] = AggregationTemporality.DELTA
    elif wanted == "lowmemory":
        for cls in (Counter, Histogram):
            out[cls] = AggregationTemporality.DELTA
    return out


@dataclass(frozen=True)
class MetricExportStats:
    exports: int = 0
    failed_exports: int = 0
    points: int = 0
    overflowed: int = 0  # instruments whose attribute sets went over the cap


class CountingMetricExporter(MetricExporter):
    """Wraps the OTLP metric exporter: counts, never raises, rebuilds itself after ``fork()``."""

    def __init__(
        self,
        factory: Callable[[], MetricExporter],
        *,
        destination: str = "",
        gate: OutageLogGate | None = None,
        preferred_temporality: dict[type, AggregationTemporality] | None = None,
    ) -> None:
        super().__init__(preferred_temporality=preferred_temporality or temporality())
        self._factory = factory
        self._destination = destination
        self._gate = gate or OutageLogGate()
        self._lock = threading.Lock()
        self._inner: MetricExporter | None = None
        self._pid = os.getpid()
        self._orphans: list[MetricExporter] = []
        self._closed = False
        self._failing = False
        self._exports = self._failed = self._points = 0
        self._overflowed: set[str] = set()

    @property
    def stats(self) -> MetricExportStats:
        return MetricExportStats(self._exports, self._failed, self._points, len(self._overflowed))

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        points = self._inspect(metrics_data)
        if self._closed:
            return MetricExportResult.FAILURE
        try:
            result = self._current().export(metrics_data, timeout_millis=timeout_millis)
            error: BaseException | None = None
        except Exception as e:  # an exporter bug must not kill the reader's thread
            result, error = MetricExportResult.FAILURE, e
        with self._lock:
            if result is MetricExportResult.SUCCESS:
                self._exports += 1
                self._points += points
                recovered, self._failing = self._failing, False
                first = False
            else:
                self._failed += 1
                recovered, first, self._failing = False, not self._failing, True
        # One line of the exporter's own per outage (its reason), then silence until it works.
        self._gate.silenced = result is not MetricExportResult.SUCCESS
        if recovered:
            logger.warning("heron: exporting metrics to %s works again", self._destination)
        if first:
            logger.warning(
                "heron: could not export metrics to %s%s; retrying every interval "
                "(this is logged once per outage)",
                self._destination,
                f": {error!r}" if error is not None else "",
            )
        return result

    def _inspect(self, data: MetricsData) -> int:
        """Count the data points; note (and log once) each instrument that overflowed."""
        points = 0
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    data_points = getattr(metric.data, "data_points", ())
                    points += len(data_points)
                    if metric.name in self._overflowed or len(data_points) < 2:
                        continue
                    if any(p.attributes and OVERFLOW in p.attributes for p in data_points):
                        self._overflowed.add(metric.name)
                        logger.warning(
                            "heron: metric %r has more attribute sets than "
                            "metric_cardinality_limit; the rest are counted in one series "
                            "with %s=true (logged once per metric)",
                            metric.name,
                            OVERFLOW,
                        )
        return points

    def _current(self) -> MetricExporter:
        inner = self._inner
        if inner is None or self._pid != os.getpid():
            if inner is not None:
                self._orphans.append(inner)  # the parent's sockets: never close them here
            inner = self._inner = self._factory()
            self._pid = os.getpid()
        return inner

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._exports = self._failed = self._points = 0
        self._overflowed = set()
        self._failing = False

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if self._closed:
            return
        self._closed = True
        if self._inner is not None and self._pid == os.getpid():
            with capture_internal_exceptions:
                self._inner.shutdown()


def otlp_metric_exporter_factory(config: AgentConfig) -> Callable[[], MetricExporter]:
    def build() -> MetricExporter:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(
            endpoint=config.metrics_endpoint,
            headers=dict(config.headers),
            preferred_temporality=temporality(),
        )

    return build


def cardinality_limits(limit: int) -> dict[type, int]:
    return dict.fromkeys(_INSTRUMENTS, limit)


class ForkSafeReader(PeriodicExportingMetricReader):
    """The SDK's periodic reader, with fresh locks for the thread it restarts in a child.

    After ``fork()`` the SDK starts a new ticker thread that waits on the reader's
    ``_shutdown_event`` and exports under its ``_export_lock``. The parent's ticker holds
    the event's lock whenever it enters or leaves that wait (every interval) and the export
    lock through each export; a fork at such a moment leaves them held by a thread the
    child does not have, and the child's ticker would block on them forever (a worker that
    never exports). The SDK runs this method in the child before the new thread starts.
    """

    def _at_fork_reinit(self) -> None:
        stopped = self._shutdown_event.is_set()  # reads a flag, takes no lock
        self._shutdown_event = threading.Event()
        if stopped:
            self._shutdown_event.set()
        self._export_lock = threading.Lock()
        super()._at_fork_reinit()


def periodic_reader(
    exporter: MetricExporter, interval_ms: float, limit: int
) -> PeriodicExportingMetricReader:
    """A periodic reader with heron's cardinality cap (SDKs before the cap: their own)."""
    try:
        return ForkSafeReader(
            exporter,
            export_interval_millis=interval_ms,
            cardinality_limits=cardinality_limits(limit),  # type: ignore[call-arg,unused-ignore]
        )
    except TypeError:  # an SDK without configurable cardinality limits
        logger.info("heron: this OpenTelemetry SDK has no cardinality_limits; using its own")
        return ForkSafeReader(exporter, export_interval_millis=interval_ms)


class MetricsPipeline:
    """The meter provider and its OTLP reader; ``install()`` makes it the global one."""

    def __init__(
        self,
        config: AgentConfig,
        resource: Resource,
        *,
        exporter_factory: Callable[[], MetricExporter] | None = None,
        trace_resource: Callable[[], Resource] | None = None,
    ) -> None:
        self.config = config
        self.gate = OutageLogGate()
        logging.getLogger(GATED_METRIC_LOGGER).addFilter(self.gate)
        self.exporter = CountingMetricExporter(
            exporter_factory or otlp_metric_exporter_factory(config),
            destination=config.metrics_endpoint,
            gate=self.gate,
        )
        # OTEL_METRICS_EXPORTER=none: no OTLP export (a Prometheus reader may still come).
        self.reader: MetricReader | None = None
        if config.metrics_exporter != "none":
            self.reader = periodic_reader(
                self.exporter, config.metric_export_interval_ms, config.metric_cardinality_limit
            )
        self.readers: list[MetricReader] = [self.reader] if self.reader is not None else []
        self._resource = resource
        self.provider: MeterProvider | None = None
        self._trace_resource = trace_resource
        self._closed = False

    def install(self) -> None:
        """Become the global meter provider (or add heron's reader to the app's own)."""
        current = metrics.get_meter_provider()
        if isinstance(current, MeterProvider):
            logger.info("heron: adding its metric reader to the app's own MeterProvider")
            for reader in self.readers:
                current.add_metric_reader(reader)
            self.provider = current
        else:
            self.provider = MeterProvider(
                resource=self._resource,
                metric_readers=list(self.readers),
                shutdown_on_exit=False,
            )
            metrics.set_meter_provider(self.provider)
        if hasattr(os, "register_at_fork"):
            # Registered after the SDK's own hooks (made by the constructors), so it runs
            # after them and has the last word on the resource.
            ref = weakref.WeakMethod(self._after_fork)

            def hook() -> None:
                method = ref()
                if method is not None:
                    with capture_internal_exceptions:
                        method()

            os.register_at_fork(after_in_child=hook)

    def add_reader(self, reader: MetricReader) -> None:
        if self.provider is not None:
            self.provider.add_metric_reader(reader)
        self.readers.append(reader)

    def _after_fork(self) -> None:
        self.exporter.after_fork()
        provider: Any = self.provider
        if provider is None:
            return
        update: dict[str, Any] = {"process.pid": os.getpid()}
        if self._trace_resource is not None:
            instance = self._trace_resource().attributes.get("service.instance.id")
            if instance is not None:
                update["service.instance.id"] = instance
        with capture_internal_exceptions:
            if hasattr(provider, "_update_resource"):
                provider._update_resource(Resource(update))
            else:  # older SDKs: one shared resource object, changed in place
                resource = provider._sdk_config.resource
                attributes = {**resource.attributes, **update}
                resource._attributes = BoundedAttributes(attributes=attributes, immutable=True)
        with capture_internal_exceptions:
            self._fresh_storage(provider)

    @staticmethod
    def _fresh_storage(provider: Any) -> None:
        """A fresh storage per reader: the parent's counts (and locks) stay behind.

        The consumer's lock is held for a whole collection: a parent's reader thread may
        have held it at the fork, and so may the reader's export lock.
        """
        from opentelemetry.sdk.metrics._internal.metric_reader_storage import (
            MetricReaderStorage,
        )

        consumer = provider._measurement_consumer
        consumer._lock = threading.Lock()
        for meter in list(getattr(provider, "_meters", {}).values()):
            if hasattr(meter, "_instrument_registration_lock"):
                meter._instrument_registration_lock = threading.Lock()
        sdk_config = provider._sdk_config
        consumer._reader_storages = {
            reader: MetricReaderStorage(
                sdk_config,
                reader._instrument_class_temporality,
                reader._instrument_class_aggregation,
                reader._instrument_class_cardinality_limit,
            )
            for reader in consumer._reader_storages
        }
        for reader in consumer._reader_storages:
            if hasattr(reader, "_export_lock"):
                reader._export_lock = threading.Lock()

    def flush(self, timeout: float) -> bool:
        """Collect and export now (every reader); False if not done within ``timeout`` s."""
        if self._closed:
            return False
        reader = self.reader
        if reader is None:
            return True
        return run_with_timeout(
            lambda: reader.force_flush(timeout_millis=max(timeout, 0.0) * 1000),
            timeout,
            "heron-flush-metrics",
        )

    def shutdown(self, timeout: float) -> bool:
        """Export one last time and stop the reader's thread."""
        if self._closed:
            return True
        self._closed = True
        readers = list(self.readers)

        def stop() -> bool:
            for reader in readers:
                with capture_internal_exceptions:
                    reader.shutdown(timeout_millis=max(timeout, 0.0) * 1000)
            return True

        return run_with_timeout(stop, timeout, "heron-shutdown-metrics")
