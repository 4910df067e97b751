"""The span record: its stored columns (declared once, here), the columnar batch that
ingest produces and writers persist, and the rules every reader shares (entry span,
endpoint, error), in Python and in SQL.

Nothing here knows about HTTP or a storage engine; the SQL constants are plain
expressions over the span columns, for readers that must apply a rule in a query.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, overload

import orjson

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


# ------------------------------------------------------------------------ the rules

# Kinds of span that start work in a service (besides a root span).
ENTRY_KINDS = (SPAN_KIND_SERVER, SPAN_KIND_CONSUMER)


def is_entry(kind: int, parent_id: int) -> bool:
    """An entry span starts work in a service: a server/consumer span or a root."""
    return kind in ENTRY_KINDS or parent_id == 0


def endpoint_of(name: str, http_method: str | None, http_route: str | None) -> str:
    """Low-cardinality endpoint name: ``METHOD route``, else the route, else the span name."""
    if http_route:
        return f"{http_method} {http_route}" if http_method else http_route
    return name


def is_error(status: int, http_status: int | None) -> bool:
    """Error for RED metrics: ERROR status, or an HTTP 5xx."""
    return status == STATUS_ERROR or (http_status is not None and http_status >= 500)


# The same rules as SQL expressions over the span columns (for readers that filter or
# group in the database). tests/server/test_span_model.py checks both forms agree.
ENTRY_KIND_SQL = f"kind IN ({', '.join(map(str, ENTRY_KINDS))})"
ENTRY_SQL = f"({ENTRY_KIND_SQL} OR parent_id = 0)"
ENDPOINT_SQL = (
    "CASE WHEN coalesce(http_route, '') = '' THEN name "
    "WHEN coalesce(http_method, '') = '' THEN http_route "
    "ELSE http_method || ' ' || http_route END"
)
ERROR_SQL = f"(status = {STATUS_ERROR} OR coalesce(http_status, 0) >= 500)"


# ---------------------------------------------------------------------- the record


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
        """See :func:`is_error`."""
        return is_error(self.status, self.http_status)

    @property
    def is_entry(self) -> bool:
        """See :func:`is_entry`."""
        return is_entry(self.kind, self.parent_id)

    @property
    def endpoint(self) -> str:
        """See :func:`endpoint_of`."""
        return endpoint_of(self.name, self.http_method, self.http_route)


class SpanRow(NamedTuple):
    """One span as stored: the span columns, in order, with their stored types (maps
    and lists are JSON text or None; empty strings are None where nullable).

    This class is the one declaration of the span's row layout: :data:`SPAN_COLUMNS`,
    :data:`SPAN_COLUMN_TYPES` and storage schemas derive from it.
    """

    start_ns: int
    trace_id: bytes
    span_id: int
    parent_id: int
    service: str
    environment: str
    release: str
    name: str
    kind: int
    duration_ns: int
    status: int
    status_message: str | None
    http_method: str | None
    http_route: str | None
    http_status: int | None
    db_system: str | None
    db_statement: str | None
    attributes: str | None
    resource: str | None
    events: str | None
    links: str | None
    scope: str | None


SPAN_COLUMNS: tuple[str, ...] = SpanRow._fields
# Each column's value type, for storage schemas: int64, uint64, uint16, uint8, bytes,
# str (nullable columns are the ones whose SpanRow annotation allows None).
SPAN_COLUMN_TYPES: dict[str, str] = {
    "start_ns": "int64",
    "trace_id": "bytes",
    "span_id": "uint64",
    "parent_id": "uint64",
    "service": "str",
    "environment": "str",
    "release": "str",
    "name": "str",
    "kind": "uint8",
    "duration_ns": "int64",
    "status": "uint8",
    "status_message": "str",
    "http_method": "str",
    "http_route": "str",
    "http_status": "uint16",
    "db_system": "str",
    "db_statement": "str",
    "attributes": "str",
    "resource": "str",
    "events": "str",
    "links": "str",
    "scope": "str",
}
assert tuple(SPAN_COLUMN_TYPES) == SPAN_COLUMNS
# Positions for code that must index plain row tuples in a hot loop (the wire decoder
# builds tuples; a NamedTuple per row would cost several times more).
COL = {name: i for i, name in enumerate(SPAN_COLUMNS)}


def json_text(v: Any) -> str | None:
    """A map or list as stored: JSON text, or None when empty."""
    return orjson.dumps(v).decode() if v else None


def span_row(s: Span, resource_json: str | None) -> tuple[Any, ...]:
    """A :class:`Span` as a stored row (``resource_json``: its resource as stored)."""
    return (
        s.start_ns,
        s.trace_id,
        s.span_id,
        s.parent_id,
        s.service,
        s.environment,
        s.release,
        s.name,
        s.kind,
        s.duration_ns,
        s.status,
        s.status_message or None,
        s.http_method,
        s.http_route,
        s.http_status,
        s.db_system,
        s.db_statement,
        json_text(s.attributes),
        resource_json,
        json_text(s.events),
        json_text(s.links),
        s.scope or None,
    )


class EntryRow(NamedTuple):
    """An entry span of a batch with its endpoint and error flag (see the rules)."""

    span: SpanRow
    endpoint: str
    error: bool


_KIND, _PARENT = COL["kind"], COL["parent_id"]


class SpanBatch(Sequence[Span]):
    """Decoded spans as rows of stored values (:class:`SpanRow` layout, as plain tuples).
    Writers insert them as columns; indexing builds a :class:`Span`.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: list[tuple[Any, ...]] | None = None) -> None:
        self.rows: list[tuple[Any, ...]] = rows if rows is not None else []

    @classmethod
    def from_spans(cls, spans: Iterable[Span]) -> SpanBatch:
        resource_json: dict[int, str | None] = {}
        rows = []
        for s in spans:
            rid = id(s.resource)
            if rid not in resource_json:
                resource_json[rid] = json_text(s.resource)
            rows.append(span_row(s, resource_json[rid]))
        return cls(rows)

    def columns(self) -> dict[str, Sequence[Any]]:
        """One sequence per column, in :data:`SPAN_COLUMNS` order."""
        cols = list(zip(*self.rows, strict=True)) or [() for _ in SPAN_COLUMNS]
        return dict(zip(SPAN_COLUMNS, cols, strict=True))

    def entries(self) -> Iterator[EntryRow]:
        """The entry spans of the batch (:func:`is_entry`), with endpoint and error."""
        for row in self.rows:
            if is_entry(row[_KIND], row[_PARENT]):
                r = SpanRow._make(row)
                yield EntryRow(
                    r,
                    endpoint_of(r.name, r.http_method, r.http_route),
                    is_error(r.status, r.http_status),
                )

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> Span: ...
    @overload
    def __getitem__(self, i: slice) -> list[Span]: ...
    def __getitem__(self, i: int | slice) -> Span | list[Span]:
        if isinstance(i, slice):
            return [self._span(row) for row in self.rows[i]]
        return self._span(self.rows[i])

    @staticmethod
    def _span(values: tuple[Any, ...]) -> Span:
        row = dict(zip(SPAN_COLUMNS, values, strict=True))
        for name in ("attributes", "resource"):
            row[name] = orjson.loads(row[name]) if row[name] else {}
        for name in ("events", "links"):
            row[name] = orjson.loads(row[name]) if row[name] else []
        row["status_message"] = row["status_message"] or ""
        row["scope"] = row["scope"] or ""
        return Span(**row)


@dataclass(slots=True)
class DecodeResult:
    """Spans accepted from one request and how many were rejected (and why)."""

    spans: list[Span]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BatchDecodeResult:
    """Like :class:`DecodeResult`, with the accepted spans as a :class:`SpanBatch`."""

    spans: SpanBatch
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, err: ValueError) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(str(err))
