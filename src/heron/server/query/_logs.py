"""Logs' read side: search (newest first, a page at a time) and one trace's records.

Text search is ``body ILIKE ?`` with the caller's text bound as a parameter and its
``%``, ``_`` and ``\\`` escaped, so the text matches literally. A record that became an
error event carries its event id; the issue it was grouped into is looked up for the
page's records, so a log line can link to its issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from heron.server.query._common import InvalidQuery, TimeRange
from heron.server.query._errors import span_hex, trace_hex
from heron.server.store.base import Store

MAX_LOG_LIMIT = 1000
MAX_TRACE_LOGS = 5000
MAX_TEXT = 500
# OTLP severity ranges: the lowest number of each named level.
SEVERITIES = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log record; ``issue_id`` is set when it became an event grouped into an issue."""

    time_ns: int
    observed_ns: int
    trace_id: str | None
    span_id: str | None
    service: str
    environment: str
    release: str
    severity_number: int
    severity_text: str
    severity: str
    """The level named from severity_number (trace/debug/info/warn/error/fatal), or ''."""
    logger: str
    body: str
    attributes: dict[str, Any]
    event_id: str | None
    issue_id: int | None


@dataclass(frozen=True, slots=True)
class LogPage:
    logs: list[LogLine]
    next_cursor: str | None
    """Pass as ``cursor`` for the next (older) page; None on the last page."""


@dataclass(frozen=True, slots=True)
class LogQuery:
    service: str | None = None
    min_severity: int | None = None
    text: str | None = None
    trace_id: bytes | None = None
    environment: str | None = None
    limit: int = 100
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LOG_LIMIT:
            raise InvalidQuery(f"limit must be between 1 and {MAX_LOG_LIMIT} (got {self.limit})")
        if self.text is not None and len(self.text) > MAX_TEXT:
            raise InvalidQuery(f"text is limited to {MAX_TEXT} characters")
        if self.min_severity is not None and not 0 <= self.min_severity <= 24:
            raise InvalidQuery("min_severity must be between 0 and 24 (OTLP severity numbers)")


def parse_severity(text: str) -> int:
    """A minimum severity from a level name (``warn``, ``error``, ...) or an OTLP number."""
    name = text.strip().lower()
    name = {"warning": "warn", "critical": "fatal"}.get(name, name)
    if name in SEVERITIES:
        return SEVERITIES[name]
    if name.isdigit() and 0 <= int(name) <= 24:
        return int(name)
    raise InvalidQuery(
        f"severity must be one of {', '.join(SEVERITIES)} or a number 0-24 (got {text[:32]!r})"
    )


def severity_name(number: int) -> str:
    found = ""
    for name, lowest in SEVERITIES.items():
        if number >= lowest:
            found = name
    return found


def like_contains(text: str) -> str:
    """An ILIKE pattern (ESCAPE '\\') matching ``text`` anywhere, literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_COLUMNS = (
    "l.rowid, l.time_ns, l.observed_ns, l.trace_id, l.span_id, l.service, l.environment, "
    "l.release, l.severity_number, l.severity_text, l.logger, l.body, l.attributes, "
    "l.event_id"
)


def _issues_of(store: Store, project_id: int, rows: Sequence[Sequence[Any]]) -> dict[str, int]:
    """The issue of each event id among ``rows`` (a page: a few ids, looked up by index)."""
    ids = sorted({r[-1] for r in rows if r[-1]})
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    found = store.read(
        f"SELECT event_id, issue_id FROM error_events WHERE project_id = ? AND event_id IN ({marks})",  # noqa: S608 - placeholders only
        [project_id, *ids],
    )
    return dict(found)


def _line(r: Sequence[Any], issues: dict[str, int]) -> LogLine:
    _, t, observed, trace, span, svc, env, rel, sev, sev_text, logger, body, attrs = r[:13]
    event_id = r[13]
    try:
        attributes = orjson.loads(attrs) if attrs else {}
    except orjson.JSONDecodeError:
        attributes = {}
    return LogLine(
        time_ns=t,
        observed_ns=observed,
        trace_id=trace_hex(trace),
        span_id=span_hex(span),
        service=svc,
        environment=env,
        release=rel,
        severity_number=sev,
        severity_text=sev_text,
        severity=severity_name(sev),
        logger=logger,
        body=body,
        attributes=attributes if isinstance(attributes, dict) else {},
        event_id=event_id,
        issue_id=issues.get(event_id) if event_id else None,
    )


def _cursor(text: str) -> tuple[int, int]:
    t, _, row = text.partition(":")
    try:
        return int(t), int(row)
    except ValueError:
        raise InvalidQuery("cursor is malformed: pass next_cursor as it was given") from None


def search_logs(store: Store, project_id: int, time_range: TimeRange, q: LogQuery) -> LogPage:
    """Log records in the range matching every filter, newest first (keyset pages)."""
    clauses = ["l.project_id = ?", "l.time_ns >= ?", "l.time_ns < ?"]
    params: list[Any] = [project_id, time_range.start_ns, time_range.end_ns]
    for col, value in (
        ("l.service", q.service),
        ("l.environment", q.environment),
        ("l.trace_id", q.trace_id),
    ):
        if value is not None:
            clauses.append(f"{col} = ?")
            params.append(value)
    if q.min_severity:
        clauses.append("l.severity_number >= ?")
        params.append(q.min_severity)
    if q.text:
        clauses.append("l.body ILIKE ? ESCAPE '\\'")
        params.append(like_contains(q.text))
    if q.cursor:
        t, row = _cursor(q.cursor)
        clauses.append("(l.time_ns < ? OR (l.time_ns = ? AND l.rowid < ?))")
        params += [t, t, row]
    rows = store.read(
        f"SELECT {_COLUMNS} FROM logs l WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants only
        "ORDER BY l.time_ns DESC, l.rowid DESC LIMIT ?",
        [*params, q.limit + 1],
    )
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    cursor = f"{rows[-1][1]}:{rows[-1][0]}" if more else None
    issues = _issues_of(store, project_id, rows)
    return LogPage([_line(r, issues) for r in rows], cursor)


def trace_logs(
    store: Store, project_id: int, trace_id: bytes, limit: int = MAX_TRACE_LOGS
) -> list[LogLine]:
    """Every log record of a trace, oldest first (served by the index on ``trace_id``)."""
    rows = store.read(
        f"SELECT {_COLUMNS} FROM logs l "  # noqa: S608 - constants only
        "WHERE l.project_id = ? AND l.trace_id = ? ORDER BY l.time_ns, l.rowid LIMIT ?",
        [project_id, trace_id, limit],
    )
    issues = _issues_of(store, project_id, rows)
    return [_line(r, issues) for r in rows]


def log_services(store: Store, project_id: int, time_range: TimeRange) -> list[str]:
    """Services with log records in the range (the logs explorer's choices)."""
    rows = store.read(
        "SELECT DISTINCT service FROM logs WHERE project_id = ? AND time_ns >= ? "
        "AND time_ns < ? ORDER BY 1",
        [project_id, time_range.start_ns, time_range.end_ns],
    )
    return [r[0] for r in rows]
