"""The error event (Sentry's event model) and the issue vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

LEVELS = ("debug", "info", "warning", "error", "fatal")
ISSUE_STATUSES = ("open", "resolved", "ignored")


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


def stored_json(v: Any) -> str | None:
    """A JSON column's text (None when empty), as every backend stores it."""
    return orjson.dumps(v, default=str, option=orjson.OPT_NON_STR_KEYS).decode() if v else None


# The stored columns of an event, after ``project_id`` and ``issue_id`` (which the writer
# adds): one declaration for every backend; ``event_values`` gives them in this order.
EVENT_FIELDS = (
    "event_id",
    "time_ns",
    "received_ns",
    "service",
    "environment",
    "release",
    "level",
    "platform",
    "source",
    "exc_type",
    "message",
    "culprit",
    "transaction",
    "trace_id",
    "span_id",
    "user_key",
    "handled",
    "logger",
    "exceptions",
    "breadcrumbs",
    "request",
    "user_data",
    "tags",
    "contexts",
    "extra",
    "sdk",
)


def event_values(e: ErrorEvent) -> tuple[Any, ...]:
    """The values of ``EVENT_FIELDS`` for one event (JSON columns as text)."""
    return (
        e.event_id,
        e.time_ns,
        e.received_ns,
        e.service,
        e.environment,
        e.release,
        e.level,
        e.platform,
        e.source,
        e.exc_type,
        e.message,
        e.culprit,
        e.transaction,
        e.trace_id,
        e.span_id,
        e.user_key,
        e.handled,
        e.logger,
        stored_json(e.exceptions),
        stored_json(e.breadcrumbs),
        stored_json(e.request),
        stored_json(e.user),
        stored_json(e.tags),
        stored_json(e.contexts),
        stored_json(e.extra),
        e.sdk,
    )
