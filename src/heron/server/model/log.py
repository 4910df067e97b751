"""The log record (an OTLP ``LogRecord``, flattened)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
