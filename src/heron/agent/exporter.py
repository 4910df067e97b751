"""The exporter wrapper: count what is delivered and dropped, log each outage once.

:class:`CountingSpanExporter` wraps any OpenTelemetry ``SpanExporter`` (by default the
official OTLP/HTTP one). It never raises: a failed or raising export drops the batch and
counts its spans. The first failure of an outage is logged (with the OTLP exporter's own
reason, once); the rest are only counted until an export succeeds again.

The inner exporter is built from a factory by the first export, in the exporting
thread, and an exporter that fails to build is one more failed export. (Its modules are
imported by ``heron.init()`` itself, see ``runtime._preload_exporters``: export threads
importing them concurrently, or a fork in the middle of such an import, break them.) That is also what makes it fork-safe: the
inner exporter owns an HTTP connection pool, and a pool inherited from the parent
process shares its sockets with the parent, so the first export in a new process
builds a fresh one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger("heron.agent")

# Loggers that repeat themselves during an outage: the official OTLP/HTTP exporter logs
# every failed attempt, the SDK's batch processor every full queue (once per 20 s).
GATED_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.sdk._shared_internal",
)


@dataclass(frozen=True)
class ExportStats:
    """Spans given to one exporter, delivered and dropped, and failed export calls."""

    received: int = 0
    exported: int = 0
    dropped: int = 0
    failed_exports: int = 0


class OutageLogGate(logging.Filter):
    """Lets one warning-or-worse record through per outage, then silences the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.silenced = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if self.silenced:
            return False
        self.silenced = True
        return True


class CountingSpanExporter(SpanExporter):
    """Wraps a ``SpanExporter``: counts, never raises, rebuilds itself after ``fork()``."""

    def __init__(
        self,
        factory: Callable[[], SpanExporter],
        *,
        destination: str = "",
        gate: OutageLogGate | None = None,
    ) -> None:
        self._factory = factory
        self._destination = destination
        self._gate = gate or OutageLogGate()
        self._lock = threading.Lock()
        self._inner: SpanExporter | None = None
        self._pid = os.getpid()
        self._closed = False
        self._failing = False
        self._received = self._exported = self._dropped = self._failed = 0
        self._orphans: list[SpanExporter] = []

    @property
    def stats(self) -> ExportStats:
        return ExportStats(self._received, self._exported, self._dropped, self._failed)

    def count_dropped(self, spans: int) -> None:
        """Count spans lost before they reached the exporter (queue full, timed out)."""
        if spans > 0:
            with self._lock:
                self._dropped += spans

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._received += len(spans)
        if self._closed:
            self.count_dropped(len(spans))
            return SpanExportResult.FAILURE
        try:
            result = self._current().export(spans)
            error: BaseException | None = None
        except Exception as e:  # an exporter bug must not kill the export thread
            result, error = SpanExportResult.FAILURE, e
        if result is SpanExportResult.SUCCESS:
            self._succeeded(len(spans))
        else:
            self._failed_export(len(spans), error)
        return result

    def _current(self) -> SpanExporter:
        inner = self._inner
        if inner is None or self._pid != os.getpid():
            if inner is not None:
                # Keep the parent's exporter referenced: collecting it would close
                # sockets the parent process is still using.
                self._orphans.append(inner)
            inner = self._inner = self._factory()
            self._pid = os.getpid()
        return inner

    def after_fork(self) -> None:
        """In a child process, before any other thread runs: a fresh lock and zero counts.

        The inner exporter (and its connection pool) is rebuilt lazily by the first export,
        so short-lived children that never export pay nothing.
        """
        self._lock = threading.Lock()
        self._received = self._exported = self._dropped = self._failed = 0
        self._failing = False
        self._gate.silenced = False

    def _succeeded(self, n: int) -> None:
        with self._lock:
            self._exported += n
            recovered, self._failing = self._failing, False
        self._gate.silenced = False  # a transient warning that was retried away is over
        if recovered:
            logger.warning("heron: exporting to %s works again", self._destination)

    def _failed_export(self, n: int, error: BaseException | None) -> None:
        with self._lock:
            self._dropped += n
            self._failed += 1
            first, self._failing = not self._failing, True
        if first:
            self._gate.silenced = True
            logger.warning(
                "heron: could not export %d spans to %s%s; dropping and counting spans "
                "until it is reachable again (this is logged once per outage)",
                n,
                self._destination,
                f": {error!r}" if error is not None else "",
            )

    def shutdown(self) -> None:
        """Close the inner exporter; later exports drop and count. Aborts export retries."""
        if self._closed:
            return
        self._closed = True
        if self._inner is None or self._pid != os.getpid():
            return  # nothing of this process's to close
        try:
            self._inner.shutdown()
        except Exception as e:
            logger.debug("heron: exporter shutdown failed: %r", e)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
