"""Writing error events and logs: issue upserts, row inserts.

Runs on the store's single writer thread inside one transaction per group of batches,
so counters never race. The issue rules (new issue, regression, counters) are pure
functions in ``analyze/issues.py``; this module loads and persists what they decide:

- an event whose id is already stored (or repeated in the same commit) is skipped: it was
  reported twice (an OpenTelemetry error as span event and log record, see
  ``span_errors.exception_event_id``, or a client's retry after a lost answer). Log
  records are always kept and link to the stored event by id.

Conversion to columns happens on the submitting thread (:class:`EventBatch`), so the
writer only runs the issue logic and bulk inserts. A commit is few statements: the
lookup of already-stored event ids, then one ``execute`` holding the event, log and issue
writes and the COMMIT (Arrow tables registered on the writer connection). Issue state is
kept between commits in an :class:`IssueCache` owned by the writer, so a commit reads no
``issues`` row for issues it has seen before; it writes each touched issue once.
"""

from __future__ import annotations

import itertools
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
# A commit of up to this many events (or issues) writes them with parameter-bound
# statements; more, through a registered Arrow table. Registering costs about as much
# as a statement (~0.4 ms), so one event's commit is cheaper without it.
_PARAM_ROWS_MAX = 2
_INSERT_EVENT = (
    "INSERT INTO error_events ("  # noqa: S608
    + ", ".join(_EVENT_SCHEMA.names)
    + ") VALUES ("
    + ", ".join("?" * len(_EVENT_SCHEMA.names))
    + ")"
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
            # fetchall: a result left unfinished blocks registering a table after it.
            rows = self.con.execute(
                "SELECT first_seen_ns FROM releases WHERE project_id = ? AND release = ?",
                [project_id, release],
            ).fetchall()
            self.cache[key] = rows[0][0] if rows else None
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


class IssueCache:
    """Issue state by (project id, fingerprint), kept by the writer between commits.

    Owned by the writer thread (no lock). It mirrors committed rows only as long as
    nothing else writes ``issues``: the writer clears it after any other write it runs
    (a status change, an import, upkeep: every ``submit_write`` task) and after a failed
    commit (whose changes it holds but the database rolled back). Bounded: fingerprints
    come from client input, so past ``max_issues`` the oldest entries are dropped.
    """

    def __init__(self, max_issues: int = 20_000) -> None:
        self.max_issues = max_issues
        self.issues: dict[tuple[int, int], IssueState] = {}

    def clear(self) -> None:
        self.issues.clear()

    def add(self, found: dict[tuple[int, int], IssueState]) -> None:
        over = len(self.issues) + len(found) - self.max_issues
        if over > 0:  # dicts keep insertion order: drop the oldest
            for key in list(itertools.islice(self.issues, over)):
                del self.issues[key]
        self.issues.update(found)


def _load_issues(con: Any, keys: set[tuple[int, int]]) -> dict[tuple[int, int], IssueState]:
    by_project: dict[int, list[int]] = {}
    for pid, fp in keys:
        by_project.setdefault(pid, []).append(fp)
    out: dict[tuple[int, int], IssueState] = {}
    for pid, fps in by_project.items():
        for row in con.execute(_SELECT_ISSUES, [pid, fps]).fetchall():
            out[(row[1], row[2])] = IssueState(*row)
    return out


def write_events(
    con: Any,
    batches: list[EventBatch],
    known_releases: set[tuple[int, str]],
    cache: IssueCache | None = None,
) -> list[str]:
    """Insert releases, plan the issue changes and register the rows; return the
    statements that write them, for the caller to run with its COMMIT in one
    ``execute`` (the caller holds the transaction). They read ``heron_event_rows``,
    ``heron_log_rows``, ``heron_new_issues`` and ``heron_issue_updates``, left
    registered on the connection until the next commit replaces them (unregistering
    costs a statement each)."""
    sql: list[str] = []
    fresh = _unseen_events(con, batches)
    if fresh:
        events = [(b.project_id, b.events[i]) for b, i in fresh]
        record_releases(con, events, known_releases)
        new, updated = plan_issues(con, events, cache if cache is not None else IssueCache())
        sql += _issue_statements(con, new, updated)
        rows = [_with_issue(b.event_rows[i], b.events[i].issue_id) for b, i in fresh]
        if len(rows) <= _PARAM_ROWS_MAX:
            for row in rows:
                con.execute(_INSERT_EVENT, row)
        else:
            con.register("heron_event_rows", _table(_EVENT_SCHEMA, rows))
            sql.append("INSERT INTO error_events BY NAME SELECT * FROM heron_event_rows")
    log_tables = [b.logs for b in batches if b.logs is not None]
    if log_tables:
        con.register("heron_log_rows", pa.concat_tables(log_tables))
        sql.append("INSERT INTO logs BY NAME SELECT * FROM heron_log_rows")
    return sql


def _with_issue(row: tuple[Any, ...], issue_id: int | None) -> tuple[Any, ...]:
    return (*row[:2], issue_id, *row[2:])


def _unseen_events(con: Any, batches: list[EventBatch]) -> list[tuple[EventBatch, int]]:
    """(batch, index) of each event whose id is neither stored nor repeated, in batch
    order."""
    out: dict[tuple[int, str], tuple[EventBatch, int]] = {}
    for b in batches:
        for i, ev in enumerate(b.events):
            out.setdefault((b.project_id, ev.event_id), (b, i))
    ids = sorted({eid for _, eid in out})
    for i in range(0, len(ids), _ID_LOOKUP_CHUNK):
        chunk = ids[i : i + _ID_LOOKUP_CHUNK]
        # A literal IN list of placeholders lets DuckDB use the event_id index.
        sql = _SELECT_STORED_IDS + ", ".join("?" * len(chunk)) + ")"
        for pid, eid in con.execute(sql, chunk).fetchall():
            out.pop((pid, eid), None)
    # Dicts keep insertion order: batch by batch, event by event.
    return list(out.values())


def plan_issues(
    con: Any, events: list[tuple[int, ErrorEvent]], cache: IssueCache
) -> tuple[list[IssueState], list[IssueState]]:
    """Apply ``events`` to their issues (from ``cache``, else loaded; new ones numbered
    from the sequence) and set every event's issue id; return the new issues and the
    updated ones, each once. The cache holds the results from then on: the caller clears
    it if the commit fails."""
    groups: dict[tuple[int, int], list[ErrorEvent]] = {}
    for pid, ev in events:
        groups.setdefault((pid, ev.issue_fingerprint), []).append(ev)
    issues = {k: cache.issues[k] for k in groups if k in cache.issues}
    missing = set(groups) - set(issues)
    if missing:
        loaded = _load_issues(con, missing)
        issues.update(loaded)
        cache.add(loaded)
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
    cache.add({k: issues[k] for k in new_keys})
    return [issues[k] for k in new_keys], [issues[k] for k in groups if k not in created]


def _issue_statements(con: Any, new: list[IssueState], updated: list[IssueState]) -> list[str]:
    sql = []
    if new:
        con.register("heron_new_issues", _table(_ISSUE_SCHEMA, [_issue_row(i) for i in new]))
        sql.append("INSERT INTO issues BY NAME SELECT * FROM heron_new_issues")
    if len(updated) <= _PARAM_ROWS_MAX:
        for issue in updated:
            con.execute(_UPDATE_ISSUE, [*(getattr(issue, c) for c in _UPDATED_COLUMNS), issue.id])
    else:
        con.register("heron_issue_updates", _table(_ISSUE_SCHEMA, [_issue_row(i) for i in updated]))
        sql.append(_UPDATE_ISSUES)
    return sql


def write_issues(con: Any, events: list[tuple[int, ErrorEvent]]) -> None:
    """Group events into issues and persist them now (no cache: the state store's
    ``assign_issues``, whose issues other processes may change)."""
    new, updated = plan_issues(con, events, IssueCache())
    for sql in _issue_statements(con, new, updated):
        con.execute(sql)
