"""The ClickHouse event writer: error events and log records, grouped into issues.

Issues are transactional state shared by every ingest process, so they live in the
state store (``store/state.py``); events and logs are telemetry in ClickHouse. One
writer thread (apart from the span writer, so a slow issue transaction never holds up
spans) takes every ``EventWrite`` waiting and commits them together:

1. drop the events whose id is stored already or repeated in the commit (the same rule
   as DuckDB's ``store/events.py``: an OpenTelemetry error sent as span event and log
   record, a client's retry); log records are always kept;
2. ``state.assign_issues``: one state transaction records new releases, creates missing
   issues, applies ``analyze.issues.apply_event`` and sets every event's ``issue_id``;
3. one INSERT into ``error_events``, then one into ``logs``.

Each future resolves only after ClickHouse acknowledged both INSERTs; any failure fails
every future of the commit with ``StorageUnavailable`` (503, the client retries).

A retry after a failed INSERT: step 2 had committed, so the retried events are counted
into their issues again — ``event_count`` grows by the events sent twice (``first/
last_seen``, ``last_release`` and status are unchanged, as the same events are applied
again). Figures over a time range (events, users, releases on the issues list and
page) are counted from ``error_events`` and stay exact, and no event is stored twice:
an event whose INSERT succeeded is dropped as a duplicate by the retry.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from heron.server.model import ErrorEvent, LogRecord
from heron.server.model.event import EVENT_FIELDS, event_values
from heron.server.model.log import LOG_FIELDS, log_values
from heron.server.model.write import EventWrite
from heron.server.store.base import QueueFull, StorageUnavailable
from heron.server.store.state import StateStore
from heron.server.store.stats import CommitTimes

log = logging.getLogger(__name__)

# Insert order: the writer sets the issue id (index 1) and the log position (index 1).
EVENT_COLUMNS = ("project_id", "issue_id", *EVENT_FIELDS)
LOG_COLUMNS = ("project_id", "position", *LOG_FIELDS)
_STORED_IDS = (
    "SELECT project_id, event_id FROM {db}.error_events WHERE event_id IN {ids:Array(String)}"
)
_ID_LOOKUP_CHUNK = 5_000
_STOP = object()


def _event_row(project_id: int, e: ErrorEvent) -> list[Any]:
    """A row of EVENT_COLUMNS; the issue id (index 1) is set when it is assigned."""
    return [project_id, 0, *event_values(e)]


def _log_row(project_id: int, r: LogRecord) -> list[Any]:
    """A row of LOG_COLUMNS; the position (index 1) is set by the writer."""
    return [project_id, 0, *log_values(r)]


class _Batch:
    """One request's events and logs as rows (converted on the submitting thread)."""

    __slots__ = ("project_id", "events", "event_rows", "log_rows", "n", "future")

    def __init__(self, write: EventWrite) -> None:
        self.project_id = write.project_id
        self.events = list(write.events)
        self.event_rows = [_event_row(write.project_id, e) for e in self.events]
        self.log_rows = [_log_row(write.project_id, r) for r in write.logs]
        self.n = len(write)
        self.future: Future[int] = Future()


class EventWriter:
    """Queue and writer thread for ``submit_events`` of ``ClickHouseStore``."""

    def __init__(
        self,
        client: Client,
        database: str,
        state: Callable[[], StateStore],
        *,
        max_queue: int,
        max_batch_rows: int,
        stats: dict[str, int] | None = None,
        commit_times: CommitTimes | None = None,
    ) -> None:
        self.client = client
        # Counted for GET /metrics, in the store's dict (``ClickHouseStore.stats``).
        self.stats = stats if stats is not None else {}
        self.commit_times = commit_times or CommitTimes()
        self.database = database
        self.state = state
        self.error: str | None = None
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._max_batch_rows = max_batch_rows
        self._next_position = 0
        self._pending = 0  # events and logs accepted, not yet committed (or failed)
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name="heron-clickhouse-events", daemon=True
        )
        self._thread.start()

    @property
    def queued(self) -> int:
        """Events and logs accepted but not yet committed (queued or being written)."""
        return self._pending

    def submit(self, write: EventWrite) -> Future[int]:
        batch = _Batch(write)
        with self._lock:
            try:
                self._queue.put_nowait(batch)
            except queue.Full:
                self.stats["rejected_full"] = self.stats.get("rejected_full", 0) + 1
                raise QueueFull from None
            self._pending += batch.n
        return batch.future

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batches = [item]
            rows = item.n
            while rows < self._max_batch_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._commit(batches)
                    return
                batches.append(nxt)
                rows += nxt.n
            self._commit(batches)

    def _commit(self, batches: list[_Batch]) -> None:
        n = sum(b.n for b in batches)
        try:
            with self.commit_times.timed("events"):
                self._write(batches)
        except Exception as err:
            if not isinstance(err, ClickHouseError | OSError | StorageUnavailable):
                log.exception("commit of %d events/logs failed", n)
            self.stats["failed_commits"] = self.stats.get("failed_commits", 0) + 1
            self.error = f"ClickHouse event write failed: {err}"
            for b in batches:
                b.future.set_exception(StorageUnavailable(self.error))
            return
        finally:
            with self._lock:
                self._pending -= n
        self.error = None
        events = sum(len(b.events) for b in batches)
        self.stats["committed_events"] = self.stats.get("committed_events", 0) + events
        self.stats["committed_logs"] = self.stats.get("committed_logs", 0) + n - events
        for b in batches:
            b.future.set_result(b.n)

    def _write(self, batches: list[_Batch]) -> None:
        fresh = self._unseen_events(batches)
        if fresh:
            self.state().assign_issues([(pid, ev) for pid, ev, _ in fresh])
            rows = []
            for _, ev, row in fresh:
                row[1] = ev.issue_id
                rows.append(row)
            self._insert("error_events", rows, EVENT_COLUMNS)
        log_rows = [row for b in batches for row in b.log_rows]
        if log_rows:
            self._insert("logs", self._positioned(log_rows), LOG_COLUMNS)

    def _unseen_events(self, batches: list[_Batch]) -> list[tuple[int, ErrorEvent, list[Any]]]:
        """(project, event, row) of each event whose id is neither stored nor repeated."""
        out: dict[tuple[int, str], tuple[int, ErrorEvent, list[Any]]] = {}
        for b in batches:
            for ev, row in zip(b.events, b.event_rows, strict=True):
                out.setdefault((b.project_id, ev.event_id), (b.project_id, ev, row))
        ids = sorted({eid for _, eid in out})
        for i in range(0, len(ids), _ID_LOOKUP_CHUNK):
            found = self.client.query(
                _STORED_IDS.replace("{db}", self.database),
                parameters={"ids": ids[i : i + _ID_LOOKUP_CHUNK]},
            ).result_rows
            for pid, eid in found:
                out.pop((pid, eid), None)
        return list(out.values())

    def _positioned(self, rows: list[list[Any]]) -> list[list[Any]]:
        """Give each record its position: increasing in write order, starting from the
        wall clock in nanoseconds (so a restarted writer continues above the last one)."""
        position = max(self._next_position, time.time_ns())
        for row in rows:
            row[1] = position
            position += 1
        self._next_position = position
        return rows

    def _insert(self, table: str, rows: Sequence[list[Any]], columns: Sequence[str]) -> None:
        """One INSERT (``table`` is one of this module's fixed names)."""
        self.client.insert(f"{self.database}.{table}", list(rows), column_names=list(columns))
