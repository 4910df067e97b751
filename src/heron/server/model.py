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


# ------------------------------------------------------------------- errors and logs

LEVELS = ("debug", "info", "warning", "error", "fatal")
ISSUE_STATUSES = ("open", "resolved", "ignored")


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


@dataclass(slots=True)
class ErrorEvent:
    """One error occurrence, from a Sentry event, an OTLP log record or a span's exception
    event, normalized to the Sentry event model (see shared/reference/protocols.md §4).

    ``exceptions`` is the chain oldest → newest (the last one was raised); each is
    ``{"type", "value", "module", "mechanism": {"type", "handled"}, "frames": [...]}``
    with frames caller → callee, each ``{"filename", "abs_path", "module", "function",
    "lineno", "context_line", "pre_context", "post_context", "in_app", "vars"}`` (keys
    may be missing). ``breadcrumbs`` oldest first, each ``{"timestamp" (Unix s), "type",
    "category", "level", "message", "data"}``. ``issue_fingerprint`` is the 64-bit group
    key computed by grouping; ``issue_id`` is assigned by the store.
    """

    event_id: str  # 32 lowercase hex
    time_ns: int
    received_ns: int
    service: str
    environment: str
    release: str
    level: str  # one of LEVELS
    platform: str
    source: str  # "sentry" | "otlp.log" | "otlp.span"
    exc_type: str | None  # type of the raised (last) exception; None for a message
    message: str  # the raised exception's value, or the message
    culprit: str  # where: "module in function" of the top in-app frame, or the transaction
    transaction: str | None = None  # the endpoint ("GET /orders") when known
    trace_id: bytes | None = None
    span_id: int = 0
    user: dict[str, Any] = field(default_factory=dict)  # id / username / email / ip_address
    handled: bool | None = None
    logger: str | None = None
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    breadcrumbs: list[dict[str, Any]] = field(default_factory=list)
    request: dict[str, Any] = field(
        default_factory=dict
    )  # method, url, headers, query_string, data
    tags: dict[str, str] = field(default_factory=dict)
    contexts: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    sdk: str = ""  # "sentry.python/2.x", "heron/0.x", "opentelemetry"
    explicit_fingerprint: list[str] | None = None
    issue_fingerprint: int = 0
    issue_id: int = 0

    @property
    def user_key(self) -> str | None:
        """Who was affected, for "users affected" counts: id, else username, email, IP."""
        for k in ("id", "username", "email", "ip_address"):
            v = self.user.get(k)
            if v not in (None, ""):
                return f"{k}:{v}"
        return None
