"""The log record (an OTLP ``LogRecord``, flattened)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heron.server.model.event import stored_json


@dataclass(slots=True)
class LogRecord:
    """One log record (OTLP ``LogRecord``), flattened like :class:`Span`.

    ``trace_id`` is 16 raw bytes or None, ``span_id`` an unsigned 64-bit int (0: none).
    ``severity_number`` follows OTLP (1-4 TRACE ... 17-20 ERROR, 21-24 FATAL; 0 unset).
    ``event_id`` is set when the record also became an :class:`ErrorEvent`.
    """

    time_ns: int
    observed_ns: int
    trace_id: bytes | None
    span_id: int
    severity_number: int
    severity_text: str
    body: str
    service: str
    environment: str
    release: str
    logger: str = ""  # the instrumentation scope's name (Python: the logger's name)
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None


# The stored columns of a log record after ``project_id`` (and, where a backend keeps one,
# its write position): one declaration for every backend; ``log_values`` gives them.
LOG_FIELDS = (
    "time_ns",
    "observed_ns",
    "trace_id",
    "span_id",
    "service",
    "environment",
    "release",
    "severity_number",
    "severity_text",
    "logger",
    "body",
    "attributes",
    "resource",
    "event_id",
)


def log_values(r: LogRecord) -> tuple[Any, ...]:
    """The values of ``LOG_FIELDS`` for one record (severity clamped to 0–255, JSON as
    text)."""
    return (
        r.time_ns,
        r.observed_ns,
        r.trace_id,
        r.span_id,
        r.service,
        r.environment,
        r.release,
        max(0, min(r.severity_number, 255)),
        r.severity_text,
        r.logger,
        r.body,
        stored_json(r.attributes),
        stored_json(r.resource),
        r.event_id,
    )
