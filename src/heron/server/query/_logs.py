"""Logs' read side: search (newest first, a page at a time) and one trace's records.

Rows come from ``store.logs`` (text search matches literally, see its protocol). A
record that became an error event carries its event id; the issue it was grouped into
is looked up for the page's records (``store.issues``), so a log line can link to its
issue.
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


def _issues_of(store: Store, project_id: int, rows: Sequence[Sequence[Any]]) -> dict[str, int]:
    """The issue of each event id among ``rows`` (a page: a few ids, looked up by index)."""
    ids = sorted({r[-1] for r in rows if r[-1]})
    return store.issues.issues_of_events(project_id, ids) if ids else {}


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
    rows = store.logs.search(
        project_id,
        time_range.start_ns,
        time_range.end_ns,
        service=q.service,
        environment=q.environment,
        trace_id=q.trace_id,
        min_severity=q.min_severity,
        text=q.text,
        before=_cursor(q.cursor) if q.cursor else None,
        limit=q.limit + 1,
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
    rows = store.logs.trace_logs(project_id, trace_id, limit)
    issues = _issues_of(store, project_id, rows)
    return [_line(r, issues) for r in rows]


def log_services(store: Store, project_id: int, time_range: TimeRange) -> list[str]:
    """Services with log records in the range (the logs explorer's choices)."""
    return store.logs.services(project_id, time_range.start_ns, time_range.end_ns)
