"""Logs: OTLP log records to ``<endpoint>/v1/logs``, and the ``logging`` handler feeding them.

Error events travel the same way (contract: a record whose ``heron.event`` attribute holds
the event's JSON), so this pipeline exists whenever the agent runs; ``logs=False`` only
stops plain log lines from being sent.

The pipeline mirrors the span one (``otel.py``): heron's own ``LoggerProvider`` (never
the global one, so a FastAPI app's native log export or the app's own provider are not
doubled), the SDK's batch processor, and an exporter wrapper that counts, never raises
and rebuilds its HTTP connection pool after ``fork()``.

The handler must never recurse: records emitted while heron is exporting (urllib3, the
OTLP exporter, heron's own warnings) or from inside the handler itself are ignored.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
)

from heron.agent.config import AgentConfig
from heron.agent.errors._breadcrumbs import crumb, current_trace_id
from heron.agent.errors._client import ErrorClient
from heron.agent.errors._event import (
    LEVELNO,
    build_event,
    exception_attributes,
    level_of,
    to_json,
)
from heron.agent.exporter import OutageLogGate
from heron.agent.fork import after_fork_in_child
from heron.agent.guard import capture_internal_exceptions
from heron.agent.otel import build_resource, run_with_timeout

logger = logging.getLogger("heron.agent")

EVENT = "heron.event"
EVENT_REF = "heron.event_ref"
# The app chose not to report this error (before_send returned None, ignore_exceptions):
# the record is still a log line, but the server must not make an event of it.
EVENT_DROPPED = "heron.event_dropped"
_LOG_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http._log_exporter"
# Threads that export telemetry: what they log is about exporting, never the app's.
_EXPORT_THREADS = ("OtelBatch", "OtelPeriodic", "heron-flush", "heron-shutdown")
_IGNORED_LOGGERS = ("heron.agent", "opentelemetry")
_busy = threading.local()  # set while this thread is inside the handler or an export


def _severity(levelno: int) -> SeverityNumber:
    """DEBUG, INFO, WARN, ERROR, FATAL: the base number of each range (as the OTel SDK)."""
    for floor, number in ((50, 21), (40, 17), (30, 13), (20, 9), (10, 5)):
        if levelno >= floor:
            return SeverityNumber(number)
    return SeverityNumber.UNSPECIFIED


_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}


class CountingLogExporter(LogRecordExporter):
    """Wraps a ``LogRecordExporter``: counts sent/dropped, never raises, fork-aware."""

    def __init__(self, factory: Callable[[], LogRecordExporter], destination: str) -> None:
        self._factory = factory
        self._destination = destination
        self._inner: LogRecordExporter | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        self._failing = False
        self.received = self.sent = self.dropped = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        _busy.active = True
        try:
            ok = not self._closed and self._export(batch)
        finally:
            _busy.active = False
        with self._lock:
            self.received += len(batch)
            if ok:
                self.sent += len(batch)
            else:
                self.dropped += len(batch)
            first, self._failing = (not ok and not self._failing), not ok
        if first and not self._closed:
            logger.warning(
                "heron: could not export %d log records to %s; dropping and counting them "
                "until it is reachable again (logged once per outage)",
                len(batch),
                self._destination,
            )
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def _export(self, batch: Sequence[ReadableLogRecord]) -> bool:
        try:
            if self._inner is None or self._pid != os.getpid():
                self._inner, self._pid = self._factory(), os.getpid()
            return self._inner.export(batch) is LogRecordExportResult.SUCCESS
        except Exception:  # an exporter bug must not kill the export thread
            return False

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self.received = self.sent = self.dropped = 0
        self._failing = False

    def shutdown(self) -> None:
        self._closed = True
        inner = self._inner
        if inner is not None and self._pid == os.getpid():
            with capture_internal_exceptions:
                inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class CountingLogProcessor(BatchLogRecordProcessor):
    """``BatchLogRecordProcessor`` that knows how many records it was given."""

    def __init__(self, exporter: CountingLogExporter, config: AgentConfig) -> None:
        super().__init__(
            exporter,
            schedule_delay_millis=config.schedule_delay_ms,
            max_export_batch_size=config.max_export_batch_size,
            max_queue_size=config.max_queue_size,
        )
        self.exporter = exporter
        self._emitted = itertools.count()
        queue = getattr(self._batch_processor, "_queue", None)
        self._queue = queue if hasattr(queue, "__len__") else None

    def on_emit(self, log_record: Any) -> None:
        next(self._emitted)
        super().on_emit(log_record)

    def queued(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    def dropped(self) -> int:
        """Records lost: failed exports plus those the full queue discarded."""
        emitted = int(repr(self._emitted)[6:-1])
        lost_in_queue = emitted - self.exporter.received - self.queued()
        return self.exporter.dropped + max(0, lost_in_queue if self._queue is not None else 0)

    def after_fork(self) -> None:
        self._emitted = itertools.count()


def otlp_log_exporter_factory(config: AgentConfig) -> Callable[[], LogRecordExporter]:
    def build() -> LogRecordExporter:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=config.logs_endpoint, headers=dict(config.headers))

    return build


class LogPipeline:
    """heron's ``LoggerProvider`` → batch processor → OTLP/HTTP, plus event emission."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        exporter_factory: Callable[[], LogRecordExporter] | None = None,
        gate: OutageLogGate | None = None,
    ) -> None:
        self.config = config
        self.provider = LoggerProvider(resource=build_resource(config), shutdown_on_exit=False)
        self.processor: CountingLogProcessor | None = None
        if config.exporter != "none":
            factory = exporter_factory or (
                ConsoleLogRecordExporter
                if config.exporter == "console"
                else otlp_log_exporter_factory(config)
            )
            exporter = CountingLogExporter(factory, config.logs_endpoint)
            self.processor = CountingLogProcessor(exporter, config)
            self.provider.add_log_record_processor(self.processor)
        logging.getLogger(_LOG_EXPORTER_LOGGER).addFilter(gate or OutageLogGate())
        self._closed = False
        after_fork_in_child(self._after_fork)

    def _after_fork(self) -> None:
        from heron.agent.otel import PID

        self.provider._update_resource(_pid_resource(PID))
        if self.processor is not None:
            self.processor.after_fork()
            self.processor.exporter.after_fork()

    def emit(
        self,
        *,
        scope: str,
        levelno: int,
        body: str,
        attributes: dict[str, Any],
        timestamp_ns: int | None = None,
    ) -> None:
        """One OTLP log record, in the current trace context."""
        if self._closed:
            return
        level_name = logging.getLevelName(levelno)
        record = LogRecord(
            timestamp=timestamp_ns or time.time_ns(),
            observed_timestamp=time.time_ns(),
            context=otel_context.get_current(),
            severity_text=_SEVERITY_TEXT.get(level_name, level_name),
            severity_number=_severity(levelno),
            body=body,
            attributes=attributes,
        )
        self.provider.get_logger(scope or "root").emit(record)

    def send_event(self, event: dict[str, Any], exc: BaseException | None) -> None:
        """An event captured outside ``logging``: a record of its own, scope ``heron``."""
        attributes: dict[str, Any] = {EVENT: to_json(event)}
        if exc is not None:
            attributes.update(exception_attributes(exc, event))
        levelno = LEVELNO.get(str(event.get("level")), logging.ERROR)
        self.emit(
            scope=str(event.get("logger") or "heron"),
            levelno=levelno,
            body=str(event.get("message", "")),
            attributes=attributes,
            timestamp_ns=int(float(event["timestamp"]) * 1e9),
        )

    def flush(self, timeout: float) -> bool:
        processor = self.processor
        if processor is None or self._closed:
            return not self._closed
        return run_with_timeout(processor.force_flush, timeout, "heron-flush")

    def shutdown(self, timeout: float) -> bool:
        if self._closed:
            return True
        self._closed = True
        processor = self.processor
        if processor is None:
            return True
        finished = run_with_timeout(lambda: processor.shutdown() or True, timeout, "heron-shutdown")
        if not finished:
            processor.exporter.shutdown()
        return finished

    def stats(self) -> tuple[int, int]:
        """Log records (events included) delivered, and lost."""
        if self.processor is None:
            return 0, 0
        return self.processor.exporter.sent, self.processor.dropped()

    def queued(self) -> int:
        return self.processor.queued() if self.processor is not None else 0


def _pid_resource(key: str) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource({key: os.getpid()})


class HeronHandler(logging.Handler):
    """Sends each record as an OTLP log record; error records also carry an event.

    A record with ``exc_info`` (``logger.exception``) or at ERROR and above carries
    ``heron.event`` (a full event, with frames and breadcrumbs), or ``heron.event_ref``
    when its exception was already captured (a framework integration got there first).
    Every record at INFO and above also becomes a breadcrumb.
    """

    def __init__(
        self, pipeline: LogPipeline, client: ErrorClient, *, level: int, send_logs: bool
    ) -> None:
        super().__init__(level=min(level, logging.INFO))
        self.pipeline = pipeline
        self.client = client
        self.send_level = level
        self.send_logs = send_logs

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(_busy, "active", False) or _ignored(record):
            return
        _busy.active = True
        try:
            with capture_internal_exceptions:
                self._emit(record)
        finally:
            _busy.active = False

    def _emit(self, record: logging.LogRecord) -> None:
        body = self.client.scrubber.text(record.getMessage())
        attributes: dict[str, Any] = {
            "code.file.path": record.pathname,
            "code.function.name": record.funcName,
            "code.line.number": record.lineno,
        }
        is_error = record.levelno >= logging.ERROR or _exception(record) is not None
        if is_error:
            attributes.update(self._event_attributes(record, body))
        trace_id = current_trace_id()
        if record.levelno >= logging.INFO:  # after the event: a record is not its own crumb
            level = level_of(record.levelno)
            self.client.crumbs.add(crumb("default", record.name, body, level), trace_id)
        if (self.send_logs and record.levelno >= self.send_level) or EVENT in attributes:
            self.pipeline.emit(
                scope=record.name,
                levelno=record.levelno,
                body=body,
                attributes=attributes,
                timestamp_ns=int(record.created * 1e9),
            )

    def _event_attributes(self, record: logging.LogRecord, body: str) -> dict[str, Any]:
        client = self.client
        exc = _exception(record)
        out: dict[str, Any] = {}
        if exc is not None:
            if client.ignored(exc):
                out[EVENT_DROPPED] = True
                return out
            known = client.captured_id(exc)
            if known is not None:
                out[EVENT_REF] = known
                out.update(exception_attributes(exc, None))
                return out
            event = client.exception_event(
                exc,
                mechanism="logging",
                level=level_of(record.levelno),
                message=record.getMessage(),
                logger_name=record.name,
            )
        else:
            event = _message_event(client, record)
        final = client.process(event, {"log_record": record}, exc)
        if final is not None:
            out[EVENT] = to_json(final)
            client.count_sent()
        else:
            out[EVENT_DROPPED] = True
        if exc is not None:  # process() scrubbed the event in place, even when dropping it
            out.update(exception_attributes(exc, final or event))
        return out


def _message_event(client: ErrorClient, record: logging.LogRecord) -> dict[str, Any]:
    return build_event(
        client.context(),
        message=record.getMessage(),
        level=level_of(record.levelno),
        logger=record.name,
    )


def _exception(record: logging.LogRecord) -> BaseException | None:
    info = record.exc_info
    if info and isinstance(info, tuple) and isinstance(info[1], BaseException):
        return info[1]
    return None


def _ignored(record: logging.LogRecord) -> bool:
    if record.name.startswith(_IGNORED_LOGGERS):
        return True
    return record.threadName is not None and record.threadName.startswith(_EXPORT_THREADS)


def install_handler(handler: HeronHandler) -> None:
    """Give ``handler`` every record any logger handles, without adding it to a logger.

    Adding a handler to the root logger would make a later ``logging.basicConfig()`` in
    the app do nothing (it only configures a root logger without handlers), silently
    changing the app's own logging. Instead ``Logger.callHandlers``, which every logger
    calls for each record it lets through, also calls heron's handler (as sentry-sdk
    does). Records still pass the loggers' levels: below a logger's effective level
    (the root's default is WARNING), a record reaches no handler, heron's included.
    """
    global _original_call_handlers
    if _original_call_handlers is not None:
        return
    original = _original_call_handlers = logging.Logger.callHandlers

    def callHandlers(self: logging.Logger, record: logging.LogRecord) -> None:
        try:
            original(self, record)
        finally:
            if record.levelno >= handler.level:
                handler.emit(record)

    logging.Logger.callHandlers = callHandlers  # type: ignore[method-assign]


def uninstall_handler() -> None:
    """Undo :func:`install_handler` (for tests)."""
    global _original_call_handlers
    if _original_call_handlers is not None:
        logging.Logger.callHandlers = _original_call_handlers  # type: ignore[method-assign, assignment]
        _original_call_handlers = None


_original_call_handlers: Callable[[logging.Logger, logging.LogRecord], None] | None = None
