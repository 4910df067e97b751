"""The OpenTelemetry SDK pipeline heron installs: resource → provider → batching → OTLP/HTTP.

This is the only module that knows which SDK is underneath. Integrations and the span
helpers use the OpenTelemetry API alone, so a faster SDK can replace this one later.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import threading
from collections.abc import Callable
from dataclasses import replace

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from heron._version import __version__
from heron.agent.config import AgentConfig
from heron.agent.exporter import GATED_LOGGERS, CountingSpanExporter, ExportStats, OutageLogGate
from heron.agent.fork import after_fork_in_child
from heron.agent.guard import capture_internal_exceptions
from heron.agent.processor import CountingBatchSpanProcessor
from heron.agent.slow import SlowRequestProcessor

logger = logging.getLogger("heron.agent")

PID = "process.pid"


def build_resource(config: AgentConfig) -> Resource:
    """Resource attributes: ``OTEL_RESOURCE_ATTRIBUTES``, overridden by heron's options."""
    attributes: dict[str, str | int] = {
        PID: os.getpid(),
        "host.name": socket.gethostname(),
        "process.runtime.name": platform.python_implementation().lower(),
        "process.runtime.version": platform.python_version(),
        "telemetry.distro.name": "heron",
        "telemetry.distro.version": __version__,
    }
    if config.service:
        attributes["service.name"] = config.service
    if config.environment:
        attributes["deployment.environment.name"] = config.environment
    if config.release:
        attributes["service.version"] = config.release
    return Resource.create(attributes)


def refresh_pid(provider: TracerProvider) -> None:
    """Point the provider's ``process.pid`` at this (forked) process.

    SDK >= 1.4x refreshes only its process-dependent detectors after a fork (such as
    ``service.instance.id``), through ``_update_resource``, which also updates every
    tracer already handed out. Older SDKs share one resource object with all tracers
    and never replace it, so it is changed in place.
    """
    update = getattr(provider, "_update_resource", None)
    if callable(update):
        update(Resource({PID: os.getpid()}))
        return
    attributes = dict(provider.resource.attributes)
    attributes[PID] = os.getpid()
    provider.resource._attributes = BoundedAttributes(attributes=attributes, immutable=True)


def otlp_exporter_factory(config: AgentConfig) -> Callable[[], SpanExporter]:
    """The official OTLP/HTTP exporter; timeout, TLS and compression still come from OTEL_*."""

    def build() -> SpanExporter:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=config.traces_endpoint, headers=dict(config.headers))

    return build


def run_with_timeout(func: Callable[[], object], timeout: float, name: str) -> bool:
    """Call ``func`` in a daemon thread; True if it returned truthy within ``timeout`` s.

    The SDK's ``force_flush`` ignores its timeout and ``shutdown`` waits up to 30 s, so
    heron bounds them here; a call that overruns keeps going in the background.
    """
    outcome: list[object] = []
    done = threading.Event()

    def target() -> None:
        with capture_internal_exceptions:
            outcome.append(func())
        done.set()

    try:
        threading.Thread(target=target, name=name, daemon=True).start()
    except RuntimeError:  # no new threads while the interpreter shuts down
        target()
    return done.wait(max(timeout, 0.0)) and bool(outcome and outcome[0])


class Agent:
    """One configured pipeline. Build it with collaborators; ``install()`` makes it global."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        exporter_factory: Callable[[], SpanExporter] | None = None,
    ) -> None:
        self.config = config
        self.provider = TracerProvider(resource=build_resource(config), shutdown_on_exit=False)
        self.gate = OutageLogGate()
        self.exporter = CountingSpanExporter(
            exporter_factory or self._default_exporter_factory(),
            destination=config.traces_endpoint,
            gate=self.gate,
        )
        self.processor: CountingBatchSpanProcessor | None = None
        self.slow: SlowRequestProcessor | None = None
        if config.slow_request_ms > 0:
            # Before the batch processor: it flags the span while it is still ours.
            self.slow = SlowRequestProcessor(config.slow_request_ms)
            self.provider.add_span_processor(self.slow)
        if config.exporter != "none":
            self.processor = CountingBatchSpanProcessor(
                self.exporter,
                max_queue_size=config.max_queue_size,
                max_export_batch_size=config.max_export_batch_size,
                schedule_delay_millis=config.schedule_delay_ms,
            )
            self.provider.add_span_processor(self.processor)
        self._closed = False
        after_fork_in_child(self._after_fork)

    def _default_exporter_factory(self) -> Callable[[], SpanExporter]:
        if self.config.exporter == "console":
            return ConsoleSpanExporter
        return otlp_exporter_factory(self.config)

    def install(self) -> None:
        """Become the global tracer provider (or join an SDK provider the app already set)."""
        for name in GATED_LOGGERS:
            logging.getLogger(name).addFilter(self.gate)
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider) and self.processor is not None:
            logger.info("heron: adding its exporter to the app's own TracerProvider")
            if self.slow is not None:
                current.add_span_processor(self.slow)
            current.add_span_processor(self.processor)
            self.provider = current
        else:
            trace.set_tracer_provider(self.provider)

    def _after_fork(self) -> None:
        refresh_pid(self.provider)
        self.exporter.after_fork()
        if self.processor is not None:
            self.processor.after_fork()
        if self.slow is not None:
            self.slow.after_fork()

    def flush(self, timeout: float) -> bool:
        """Export everything queued; False if it did not finish within ``timeout`` s."""
        processor = self.processor
        if processor is None or self._closed:
            return not self._closed
        return run_with_timeout(processor.force_flush, timeout, "heron-flush")

    def shutdown(self, timeout: float) -> bool:
        """Flush and stop exporting, within ``timeout`` s; later spans are not exported."""
        if self._closed:
            return True
        self._closed = True
        if self.processor is None:
            return True
        processor = self.processor
        finished = run_with_timeout(lambda: processor.shutdown() or True, timeout, "heron-shutdown")
        if not finished:
            self.exporter.shutdown()  # aborts export retries; what is left is dropped
        return finished

    def export_stats(self) -> ExportStats:
        """The exporter's counts, with the spans the full queue dropped added to ``dropped``."""
        stats = self.exporter.stats
        if self.processor is None:
            return stats
        queue_dropped = self.processor.queue_dropped(stats.received)
        return replace(stats, dropped=stats.dropped + queue_dropped)

    def queued(self) -> int:
        return self.processor.queued() if self.processor else 0
