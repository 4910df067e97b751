"""Writing error events and logs: issue upserts, row inserts.

Runs on the store's single writer thread inside one transaction per group of batches,
so counters never race. The issue rules (new issue, regression, counters) are pure
functions in ``analyze/issues.py``; this module loads and persists what they decide:

- an event whose id is already stored (or repeated in the same commit) is skipped: it was
  reported twice (an OpenTelemetry error as span event and log record, see
  ``span_errors.exception_event_id``, or a client's retry after a lost answer). Log
  records are always kept and link to the stored event by id.

Conversion to columns happens on the submitting thread (:class:`EventBatch`), so the
writer only runs the issue logic and bulk inserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pyarrow as pa

from heron.server.analyze.issues import IssueState, apply_event, new_issue
from heron.server.model import ErrorEvent, LogRecord
from heron.server.model.event import event_values
from heron.server.model.log import log_values
from heron.server.store.state import ISSUE_COLUMNS

_EVENT_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("event_id", pa.string()),
        ("issue_id", pa.int64()),
        ("time_ns", pa.int64()),
        ("received_ns", pa.int64()),
        ("service", pa.string()),
        ("environment", pa.string()),
        ("release", pa.string()),
        ("level", pa.string()),
        ("platform", pa.string()),
        ("source", pa.string()),
        ("exc_type", pa.string()),
        ("message", pa.string()),
        ("culprit", pa.string()),
        ("transaction", pa.string()),
        ("trace_id", pa.binary()),
        ("span_id", pa.uint64()),
        ("user_key", pa.string()),
        ("handled", pa.bool_()),
        ("logger", pa.string()),
        ("exceptions", pa.string()),
        ("breadcrumbs", pa.string()),
        ("request", pa.string()),
        ("user_data", pa.string()),
        ("tags", pa.string()),
        ("contexts", pa.string()),
        ("extra", pa.string()),
        ("sdk", pa.string()),
    ]
)
_LOG_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("time_ns", pa.int64()),
        ("observed_ns", pa.int64()),
        ("trace_id", pa.binary()),
        ("span_id", pa.uint64()),
        ("service", pa.string()),
        ("environment", pa.string()),
        ("release", pa.string()),
        ("severity_number", pa.uint8()),
        ("severity_text", pa.string()),
        ("logger", pa.string()),
        ("body", pa.string()),
        ("attributes", pa.string()),
        ("resource", pa.string()),
        ("event_id", pa.string()),
    ]
)
# Identifiers from the fixed tuple above; no value is ever formatted into SQL.
_SELECT_ISSUES = (
    "SELECT "  # noqa: S608
    + ", ".join(ISSUE_COLUMNS)
    + " FROM issues WHERE project_id = ? AND list_contains(?::UBIGINT[], fingerprint)"
)
_UPDATED_COLUMNS = (
    "level",
    "status",
    "first_seen_ns",
    "last_seen_ns",
    "event_count",
    "first_release",
    "last_release",
    "resolved_release",
    "status_changed_ns",
    "regressed_ns",
)
_UPDATE_ISSUE = (
    "UPDATE issues SET "  # noqa: S608
    + ", ".join(f"{c} = ?" for c in _UPDATED_COLUMNS)
    + " WHERE id = ?"
)
_UPDATE_ISSUES = (
    "UPDATE issues SET "  # noqa: S608
    + ", ".join(f"{c} = u.{c}" for c in _UPDATED_COLUMNS)
    + " FROM heron_issue_updates u WHERE issues.id = u.id"
)
_SELECT_STORED_IDS = "SELECT project_id, event_id FROM error_events WHERE event_id IN ("
_ID_LOOKUP_CHUNK = 1_000  # DuckDB scans the index for IN lists up to 2,048 values
# Per-statement overhead dominates small commits: one UPDATE per issue up to this many.
_ROW_UPDATES_MAX = 4
_ISSUE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("project_id", pa.int32()),
        ("fingerprint", pa.uint64()),
        ("title", pa.string()),
        ("exc_type", pa.string()),
        ("culprit", pa.string()),
        ("level", pa.string()),
        ("status", pa.string()),
        ("first_seen_ns", pa.int64()),
        ("last_seen_ns", pa.int64()),
        ("event_count", pa.uint64()),
        ("first_release", pa.string()),
        ("last_release", pa.string()),
        ("resolved_release", pa.string()),
        ("status_changed_ns", pa.int64()),
        ("regressed_ns", pa.int64()),
    ]
)


def _log_row(project_id: int, r: LogRecord) -> tuple[Any, ...]:
    return (project_id, *log_values(r))


def _event_row(project_id: int, e: ErrorEvent) -> tuple[Any, ...]:
    """A stored row without its issue id (assigned by the writer)."""
    return (project_id, *event_values(e))


def _table(schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
    )


class EventBatch:
    """One request's events and logs, converted to rows on the submitting thread."""

    __slots__ = ("project_id", "events", "event_rows", "logs", "n", "future")

    def __init__(
        self, project_id: int, events: Sequence[ErrorEvent], logs: Sequence[LogRecord]
    ) -> None:
        self.project_id = project_id
        self.events = list(events)
        self.event_rows = [_event_row(project_id, e) for e in self.events]
        self.logs = _table(_LOG_SCHEMA, [_log_row(project_id, r) for r in logs]) if logs else None
        self.n = len(self.events) + len(logs)
        self.future: Future[int] = Future()


def _issue_row(issue: IssueState) -> tuple[Any, ...]:
    return tuple(getattr(issue, c) for c in ISSUE_COLUMNS)


class _Releases:
    """First-seen times of releases, read lazily (only resolved issues need them)."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.cache: dict[tuple[int, str], int | None] = {}

    def first_seen(self, project_id: int, release: str) -> int | None:
        key = (project_id, release)
        if key not in self.cache:
            row = self.con.execute(
                "SELECT first_seen_ns FROM releases WHERE project_id = ? AND release = ?",
                [project_id, release],
            ).fetchone()
            self.cache[key] = row[0] if row else None
        return self.cache[key]


KNOWN_RELEASES_MAX = 10_000


def record_releases(
    con: Any, events: list[tuple[int, ErrorEvent]], known: set[tuple[int, str]]
) -> None:
    """Insert releases not seen before. ``known`` (kept by the writer across commits,
    cleared when a commit fails) spares a statement per commit for the usual case."""
    first: dict[tuple[int, str], int] = {}
    for pid, ev in events:
        key = (pid, ev.release)
        if ev.release and key not in known:
            first[key] = min(first.get(key, ev.time_ns), ev.time_ns)
    if first:
        con.executemany(
            "INSERT INTO releases VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [[pid, rel, t] for (pid, rel), t in first.items()],
        )
        if len(known) + len(first) > KNOWN_RELEASES_MAX:  # release names are client input
            known.clear()
        known.update(first)


def _load_issues(con: Any, keys: set[tuple[int, int]]) -> dict[tuple[int, int], IssueState]:
    by_project: dict[int, list[int]] = {}
    for pid, fp in keys:
        by_project.setdefault(pid, []).append(fp)
    out: dict[tuple[int, int], IssueState] = {}
    for pid, fps in by_project.items():
        for row in con.execute(_SELECT_ISSUES, [pid, fps]).fetchall():
            out[(row[1], row[2])] = IssueState(*row)
    return out


def write_events(con: Any, batches: list[EventBatch], known_releases: set[tuple[int, str]]) -> None:
    """Insert releases, upsert issues, insert events and logs (caller holds the
    transaction)."""
    fresh = _unseen_events(con, batches)
    if fresh:
        events = [(pid, ev) for pid, ev, _ in fresh]
        record_releases(con, events, known_releases)
        write_issues(con, events)
        rows = [(row[:2] + (ev.issue_id,) + row[2:]) for _, ev, row in fresh]
        _insert(con, "error_events", _table(_EVENT_SCHEMA, rows))
    log_tables = [b.logs for b in batches if b.logs is not None]
    if log_tables:
        _insert(con, "logs", pa.concat_tables(log_tables))


def _unseen_events(
    con: Any, batches: list[EventBatch]
) -> list[tuple[int, ErrorEvent, tuple[Any, ...]]]:
    """(project, event, row) of each event whose id is neither stored nor repeated."""
    out: dict[tuple[int, str], tuple[int, ErrorEvent, tuple[Any, ...]]] = {}
    for b in batches:
        for ev, row in zip(b.events, b.event_rows, strict=True):
            out.setdefault((b.project_id, ev.event_id), (b.project_id, ev, row))
    ids = sorted({eid for _, eid in out})
    for i in range(0, len(ids), _ID_LOOKUP_CHUNK):
        chunk = ids[i : i + _ID_LOOKUP_CHUNK]
        # A literal IN list of placeholders lets DuckDB use the event_id index.
        sql = _SELECT_STORED_IDS + ", ".join("?" * len(chunk)) + ")"
        for pid, eid in con.execute(sql, chunk).fetchall():
            out.pop((pid, eid), None)
    return list(out.values())


def _insert(con: Any, table: str, rows: pa.Table) -> None:
    """Bulk insert (``table`` is one of this module's fixed names)."""
    con.register("heron_rows", rows)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM heron_rows")  # noqa: S608
    finally:
        con.unregister("heron_rows")


def write_issues(con: Any, events: list[tuple[int, ErrorEvent]]) -> None:
    groups: dict[tuple[int, int], list[ErrorEvent]] = {}
    for pid, ev in events:
        groups.setdefault((pid, ev.issue_fingerprint), []).append(ev)
    issues = _load_issues(con, set(groups))
    new_keys = [k for k in groups if k not in issues]
    if new_keys:
        ids = con.execute("SELECT nextval('issue_ids') FROM range(?)", [len(new_keys)]).fetchall()
        for (issue_id,), key in zip(ids, new_keys, strict=True):
            first = min(groups[key], key=lambda e: e.time_ns)
            issues[key] = new_issue(issue_id, key[0], first)
    releases = _Releases(con)
    for key, evs in groups.items():
        issue = issues[key]
        for ev in sorted(evs, key=lambda e: e.time_ns):
            apply_event(issue, ev, releases.first_seen)
    created = set(new_keys)
    if new_keys:
        _insert(con, "issues", _table(_ISSUE_SCHEMA, [_issue_row(issues[k]) for k in new_keys]))
    updated = [issues[k] for k in groups if k not in created]
    if len(updated) <= _ROW_UPDATES_MAX:
        for issue in updated:
            con.execute(_UPDATE_ISSUE, [*(getattr(issue, c) for c in _UPDATED_COLUMNS), issue.id])
    else:
        con.register("heron_issue_updates", _table(_ISSUE_SCHEMA, [_issue_row(i) for i in updated]))
        try:
            con.execute(_UPDATE_ISSUES)
        finally:
            con.unregister("heron_issue_updates")
