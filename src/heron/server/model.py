"""Internal records that ingest produces and stores consume.

Decoders build these from wire formats; nothing here knows about SQL or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPAN_KIND_UNSPECIFIED = 0
SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
SPAN_KIND_PRODUCER = 4
SPAN_KIND_CONSUMER = 5

STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2

KIND_NAMES = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}
STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}


@dataclass(slots=True)
class Span:
    """One span, flattened: well-known attributes are lifted into fields.

    ``trace_id`` is 16 raw bytes, ``span_id``/``parent_id`` are unsigned 64-bit ints
    (0 means "no parent"). Times are Unix nanoseconds.
    """

    trace_id: bytes
    span_id: int
    parent_id: int
    start_ns: int
    duration_ns: int
    name: str
    kind: int
    status: int
    status_message: str
    service: str
    environment: str
    release: str
    http_method: str | None = None
    http_route: str | None = None
    http_status: int | None = None
    db_system: str | None = None
    db_statement: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    scope: str = ""

    @property
    def is_error(self) -> bool:
        """Error for RED metrics: ERROR status, or a 5xx on a server span."""
        if self.status == STATUS_ERROR:
            return True
        return self.http_status is not None and self.http_status >= 500

    @property
    def is_entry(self) -> bool:
        """An entry span starts work in a service: a server/consumer span or a root."""
        return self.kind in (SPAN_KIND_SERVER, SPAN_KIND_CONSUMER) or self.parent_id == 0

    @property
    def endpoint(self) -> str:
        """Low-cardinality endpoint name: ``METHOD route``, else the span name."""
        if self.http_route:
            return f"{self.http_method} {self.http_route}" if self.http_method else self.http_route
        return self.name


@dataclass(slots=True)
class DecodeResult:
    """Spans accepted from one request and how many were rejected (and why)."""

    spans: list[Span]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
