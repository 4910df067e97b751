"""DuckDB store: one writer thread with group commit, many time-limited readers.

Invariant: a batch's future resolves only after the transaction holding its spans (and
their rollup rows) has committed, so an acknowledged request survives a crash. After a
storage failure (disk full) the store heals on its own, see ``duckdb_connection``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from heron.server.model.metric import MetricWrite
from heron.server.model.metric_rows import MetricRows, SeenSeries, metric_rows
from heron.server.model.rollup import ROLLUP_KEY, Rollups, merge_rollups
from heron.server.model.rum import RumWrite, merge_rum_rollups
from heron.server.model.span import SPAN_COLUMN_TYPES
from heron.server.model.write import EventWrite, SpanWrite
from heron.server.store.base import DatabaseInUse, QueueFull
from heron.server.store.duckdb.db import DuckDBDb
from heron.server.store.duckdb.issues import DuckDBIssues
from heron.server.store.duckdb.logs import DuckDBLogs
from heron.server.store.duckdb.metrics import (
    DuckDBMetrics,
    build_tiers,
    compact_metric_rollups,
    metric_retention,
)
from heron.server.store.duckdb.red import DuckDBRed
from heron.server.store.duckdb.rum import (
    RUM_TIER_UPDATE,
    DuckDBRum,
    build_rum_tier,
    compact_rum_rollups,
    rum_events_to_arrow,
    rum_retention,
    rum_rollups_to_arrow,
)
from heron.server.store.duckdb.state import DuckDBState
from heron.server.store.duckdb.traces import DuckDBTraces
from heron.server.store.duckdb.upkeep import compact_rollups, enforce_retention
from heron.server.store.duckdb_connection import (
    RECOVERY_INTERVAL_S,
    HealingConnection,
    is_storage_failure,
)
from heron.server.store.events import EventBatch, IssueCache, write_events
from heron.server.store.schema import MIGRATIONS
from heron.server.store.stats import CommitTimes

log = logging.getLogger("heron.store")

# Arrow type of each value type of ``model.span.SPAN_COLUMN_TYPES``.
_ARROW_TYPES = {
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "uint16": pa.uint16(),
    "uint8": pa.uint8(),
    "bytes": pa.binary(),
    "str": pa.string(),
}
# The spans table: the project, the span columns, and the SQL fingerprint (computed by
# the ingest pipeline, see ``analyze.scrub``).
_SPAN_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        *((name, _ARROW_TYPES[t]) for name, t in SPAN_COLUMN_TYPES.items()),
        ("db_fingerprint", pa.uint64()),
    ]
)
_ROLLUP_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("minute_s", pa.int64()),
        ("service", pa.string()),
        ("environment", pa.string()),
        ("release", pa.string()),
        ("endpoint", pa.string()),
        ("bucket", pa.uint16()),
        ("count", pa.uint64()),
        ("errors", pa.uint64()),
        ("sum_ns", pa.int64()),
    ]
)

# The metric tables' columns (``model.metric_rows``), as stored.
_METRIC_POINT_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("time_ns", pa.int64()),
        ("series", pa.int64()),
        ("value", pa.float64()),
        ("count", pa.uint64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("bounds", pa.list_(pa.float64())),
        ("buckets", pa.list_(pa.uint64())),
        ("quantiles", pa.list_(pa.list_(pa.float64()))),
    ]
)
METRIC_ROLLUP_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("series", pa.int64()),
        ("minute_s", pa.int64()),
        ("count", pa.uint64()),
        ("sum", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("last", pa.float64()),
        ("last_ns", pa.int64()),
        ("bounds", pa.list_(pa.float64())),
        ("buckets", pa.list_(pa.uint64())),
    ]
)
_METRIC_EXEMPLAR_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("series", pa.int64()),
        ("time_ns", pa.int64()),
        ("value", pa.float64()),
        ("trace_id", pa.binary()),
        ("span_id", pa.uint64()),
    ]
)
_METRIC_SERIES_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("series", pa.int64()),
        ("name", pa.string()),
        ("service", pa.string()),
        ("kind", pa.string()),
        ("unit", pa.string()),
        ("description", pa.string()),
        ("attributes", pa.string()),
        ("first_seen_s", pa.int64()),
        ("last_seen_s", pa.int64()),
    ]
)
# New series, and known ones whose last minute moved on: one row per key (the group's
# batches merged), the catalogue's last_seen_s only ever moves forward.
_UPSERT_SERIES = (
    "INSERT INTO metric_series SELECT project_id, series, any_value(name), "
    "any_value(service), any_value(kind), any_value(unit), any_value(description), "
    "any_value(attributes), min(first_seen_s), max(last_seen_s) FROM series_tbl "
    "GROUP BY project_id, series ON CONFLICT (project_id, series) DO UPDATE SET "
    "last_seen_s = greatest(metric_series.last_seen_s, excluded.last_seen_s), "
    "first_seen_s = least(metric_series.first_seen_s, excluded.first_seen_s), "
    "kind = excluded.kind, unit = excluded.unit, description = excluded.description"
)


def spans_to_arrow(write: SpanWrite) -> pa.Table:
    """Columnar form of a write batch's spans for one bulk INSERT: its rows are already
    in stored form, only a transpose is left."""
    cols = {**write.spans.columns(), "db_fingerprint": write.fingerprints}
    arrays = [pa.repeat(pa.scalar(write.project_id, pa.int32()), len(write.spans))]
    arrays += [pa.array(cols[f.name], f.type) for f in list(_SPAN_SCHEMA)[1:]]
    return pa.Table.from_arrays(arrays, schema=_SPAN_SCHEMA)


def rollups_to_arrow(acc: Rollups) -> pa.Table:
    keys = list(acc)
    vals = [acc[k] for k in keys]
    cols: dict[str, list[Any]] = {n: [k[i] for k in keys] for i, n in enumerate(ROLLUP_KEY)}
    cols["count"] = [v[0] for v in vals]
    cols["errors"] = [v[1] for v in vals]
    # Saturated: a few valid spans lasting centuries would overflow int64 (and fail the
    # whole commit); the stored column itself is HUGEINT.
    cols["sum_ns"] = [min(v[2], 2**63 - 1) for v in vals]
    return pa.table(cols, schema=_ROLLUP_SCHEMA)


class _Batch:
    """One request's write batch (see ``ingest/pipeline.py``), in insertable form.

    The conversion runs on the submitting thread, not the writer: the writer then only
    waits on DuckDB (which releases the GIL) instead of competing for the GIL with the
    threads decoding the next requests.
    """

    __slots__ = ("n", "table", "rollup", "future")

    def __init__(self, write: SpanWrite) -> None:
        self.n = len(write)
        self.table = spans_to_arrow(write) if self.n else None
        self.rollup = write.rollups
        self.future: Future[int] = Future()


class MetricBatch:
    """One request's data points, turned into insertable form by the writer
    (:meth:`convert`), unlike spans: the event loop decoding the next requests is the
    metrics path's limit, while the writer mostly waits on DuckDB with the GIL released.
    """

    __slots__ = ("n", "write", "rows", "points", "rollups", "exemplars", "future")

    def __init__(self, write: MetricWrite) -> None:
        self.n = len(write)
        self.write: MetricWrite | None = write
        self.rows = MetricRows(write.project_id)
        self.points: pa.Table | None = None
        self.rollups: pa.Table | None = None
        self.exemplars: pa.Table | None = None
        self.future: Future[int] = Future()

    def convert(self) -> None:
        """The write's rows as Arrow tables (raises for a value out of its column's
        range: the caller fails this batch only)."""
        assert self.write is not None
        rows = metric_rows(self.write)
        self.points = pa.table(rows.points, schema=_METRIC_POINT_SCHEMA)
        self.rollups = pa.table(rows.rollups, schema=METRIC_ROLLUP_SCHEMA)
        if rows.exemplars["series"]:
            self.exemplars = pa.table(rows.exemplars, schema=_METRIC_EXEMPLAR_SCHEMA)
        # Only the catalogue rows are read later (by the writer): free the rest.
        rows.points = rows.rollups = rows.exemplars = {}
        self.rows = rows
        self.write = None


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open (a failed COMMIT has already ended it)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


class RumBatch:
    """One beacon's (or one batch's) RUM events, converted on the submitting thread like
    spans' (the writer then mostly waits on DuckDB)."""

    __slots__ = ("n", "table", "rollups", "future", "spans_follow")

    def __init__(self, write: RumWrite) -> None:
        self.n = len(write)
        self.spans_follow = write.spans_follow
        self.table = rum_events_to_arrow(write) if self.n else None
        self.rollups = write.rollups
        self.future: Future[int] = Future()


class _Task:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


_STOP = object()


class DuckDBStore:
    """The embedded store. Create, then :meth:`start`; :meth:`close` drains and stops."""

    def __init__(
        self,
        path: str | Path,
        *,
        queue_max_spans: int = 200_000,
        commit_interval_ms: float = 25.0,
        query_timeout_s: float = 30.0,
        max_group_spans: int = 50_000,
        checkpoint_threshold_mb: int = 64,
        queue_max_events: int = 50_000,
        queue_max_points: int = 500_000,
        queue_max_rum: int = 200_000,
        duckdb_config: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.duckdb_config: dict[str, Any] = dict(duckdb_config or {})  # see store.memory
        self.queue_max_spans = queue_max_spans
        self.commit_interval_s = commit_interval_ms / 1000.0
        self.query_timeout_s = query_timeout_s
        self.max_group_spans = max_group_spans
        self.checkpoint_threshold_mb = checkpoint_threshold_mb
        self.queue_max_events = queue_max_events
        self.queue_max_points = queue_max_points
        self.queue_max_rum = queue_max_rum
        self._queue: queue.Queue[Any] = queue.Queue()
        self._queued_spans = 0
        self._queued_events = 0
        self._queued_points = 0
        self._queued_rum = 0
        self._series_seen = SeenSeries()  # writer thread only
        self._known_releases: set[tuple[int, str]] = set()  # writer thread only
        self._issue_cache = IssueCache()  # writer thread only
        self._rum_built_to_s: int | None = None  # rum_tiers.built_to_s; writer thread only
        self._lock = threading.Lock()
        self._db = HealingConnection(self.path, self._setup, self.duckdb_config)
        # Reads by subject (store/duckdb/<subject>.py): the query layer's only way in.
        self.traces = DuckDBTraces(self)
        self.red = DuckDBRed(self)
        self.db = DuckDBDb(self)
        self.issues = DuckDBIssues(self)
        self.logs = DuckDBLogs(self)
        self.state = DuckDBState(self)
        self.metrics = DuckDBMetrics(self)
        self.rum = DuckDBRum(self)
        self._thread: threading.Thread | None = None
        self.stats = {
            "committed_spans": 0,
            "commits": 0,
            "rejected_full": 0,
            "committed_events": 0,
            "committed_logs": 0,
            "committed_points": 0,
            "metric_commits": 0,
            "committed_rum": 0,
            "failed_commits": 0,
        }
        self.commit_times = CommitTimes()  # GET /metrics: commit latency per writer

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> DuckDBStore:
        """Open the database and start the writer; a second call does nothing."""
        if self._thread is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db.open()
        self._thread = threading.Thread(target=self._run, name="heron-writer", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self._db.close()

    def health(self) -> str | None:
        return self._db.failure

    def _setup(self, con: duckdb.DuckDBPyConnection) -> None:
        """Settings and migrations of a new connection (at start and on every reopen)."""
        # DuckDB checkpoints (compresses the WAL into the file) once the WAL reaches this
        # size. Its 16 MB default checkpoints every few group commits, each rewriting
        # partly-filled row groups: 4x the CPU per span and a larger file than 64 MB.
        con.execute(f"SET checkpoint_threshold = '{int(self.checkpoint_threshold_mb)}MB'")
        self._migrate(con)

    @staticmethod
    def _migrate(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        current = (row[0] if row else None) or 0
        for version, ddl in MIGRATIONS:
            if version <= current:
                continue
            con.execute("BEGIN")
            try:
                con.execute(ddl)
                con.execute("INSERT INTO schema_version VALUES (?)", [version])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            log.info("applied schema migration %d", version)

    # ---------------------------------------------------------------- write side

    def submit_spans(self, write: SpanWrite) -> Future[int]:
        n = len(write)
        with self._lock:
            if self._queued_spans + n > self.queue_max_spans and self._queued_spans:
                self.stats["rejected_full"] += 1
                raise QueueFull(f"write queue full ({self._queued_spans} spans waiting)")
            self._queued_spans += n
        try:
            batch = _Batch(write)
        except Exception as e:  # e.g. a value out of its column's range: fail this batch only
            with self._lock:
                self._queued_spans -= n
            failed: Future[int] = Future()
            failed.set_exception(e)
            return failed
        self._queue.put(batch)
        return batch.future

    def submit_events(self, write: EventWrite) -> Future[int]:
        n = len(write)
        with self._lock:
            if self._queued_events + n > self.queue_max_events and self._queued_events:
                self.stats["rejected_full"] += 1
                raise QueueFull(f"write queue full ({self._queued_events} events/logs waiting)")
            self._queued_events += n
        try:
            batch = EventBatch(write.project_id, write.events, write.logs)
        except Exception as e:  # a value out of its column's range: fail this batch only
            with self._lock:
                self._queued_events -= n
            failed: Future[int] = Future()
            failed.set_exception(e)
            return failed
        self._queue.put(batch)
        return batch.future

    def submit_metrics(self, write: MetricWrite) -> Future[int]:
        n = len(write)
        with self._lock:
            if self._queued_points + n > self.queue_max_points and self._queued_points:
                self.stats["rejected_full"] += 1
                raise QueueFull(f"write queue full ({self._queued_points} points waiting)")
            self._queued_points += n
        batch = MetricBatch(write)  # converted by the writer
        self._queue.put(batch)
        return batch.future

    def submit_rum(self, write: RumWrite) -> Future[int]:
        n = len(write)
        with self._lock:
            if self._queued_rum + n > self.queue_max_rum and self._queued_rum:
                self.stats["rejected_full"] += 1
                raise QueueFull(f"write queue full ({self._queued_rum} RUM events waiting)")
            self._queued_rum += n
        try:
            batch = RumBatch(write)
        except Exception as e:  # a value out of its column's range: fail this batch only
            with self._lock:
                self._queued_rum -= n
            failed: Future[int] = Future()
            failed.set_exception(e)
            return failed
        self._queue.put(batch)
        return batch.future

    def submit_write(self, fn: Callable[[Any], Any]) -> Future[Any]:
        task = _Task(fn)
        self._queue.put(task)
        return task.future

    def upkeep(
        self,
        now_ns: int,
        *,
        retention_days: int,
        rollup_retention_days: int,
        compact_from_s: int,
        compact_to_s: int,
    ) -> int:
        def job(con: Any) -> int:
            deleted = enforce_retention(con, now_ns, retention_days, rollup_retention_days)
            compact_rollups(con, compact_from_s, compact_to_s)
            metric_retention(con, now_ns, retention_days, rollup_retention_days)
            compact_metric_rollups(con, compact_from_s, compact_to_s)
            rum_retention(con, now_ns, retention_days, rollup_retention_days)
            compact_rum_rollups(con, compact_from_s, compact_to_s)
            build_rum_tier(con, compact_to_s)
            build_tiers(con, compact_from_s, compact_to_s)
            return deleted

        deleted: int = self.write(job, timeout=600)
        return deleted

    def write(self, fn: Callable[[Any], Any], timeout: float | None = 30.0) -> Any:
        """Run ``fn`` on the writer and wait for its result."""
        return self.submit_write(fn).result(timeout)

    def _run(self) -> None:
        while True:
            item = self._next_item()
            if item is _STOP:
                return
            if isinstance(item, _Task):
                self._run_task(item)
                continue
            group, events, stop, tasks, metrics, rum = self._gather(item)
            if rum or (group and events):
                # RUM events with the round's spans and error events (a beacon's browser
                # spans and JavaScript errors among them; spans with the error events of
                # their exceptions) in one transaction: one commit instead of two or three.
                self._commit_rum(rum, group, events)
            else:
                if group:
                    self._commit(group)
                if events:
                    self._commit_events(events)
            if metrics:
                self._commit_metrics(metrics)
            for t in tasks:
                self._run_task(t)
            if stop:
                return

    def _next_item(self) -> Any:
        """The next queued item; while writes fail, a probe write whenever the queue
        stays empty for a while, so that the store heals without traffic."""
        while True:
            if self._db.failure is None:
                return self._queue.get()
            try:
                return self._queue.get(timeout=RECOVERY_INTERVAL_S)
            except queue.Empty:
                self._db.probe()

    def _gather(
        self, first: _Batch | EventBatch | MetricBatch | RumBatch
    ) -> tuple[
        list[_Batch], list[EventBatch], bool, list[_Task], list[MetricBatch], list[RumBatch]
    ]:
        """Collect more batches for one commit: whatever is queued, waiting briefly.
        Metric batches commit separately; span, event and RUM batches of one round
        commit together (``_run``), or alone when the round has one kind."""
        group: list[_Batch] = []
        events: list[EventBatch] = []
        tasks: list[_Task] = []
        metrics: list[MetricBatch] = []
        rum: list[RumBatch] = []
        if isinstance(first, EventBatch):
            events.append(first)
        elif isinstance(first, MetricBatch):
            metrics.append(first)
        elif isinstance(first, RumBatch):
            rum.append(first)
        else:
            group.append(first)
        n = first.n
        # Events and metrics commit at once with whatever else is queued: their senders
        # wait for the commit one request at a time (a Sentry SDK's single transport
        # thread, an OTel exporter or a Prometheus shard), and requests arriving during
        # a commit still group into the next one. A window would only add its length to
        # every request's latency and leave the writer idle while it is open. So do RUM
        # beacons' writes (the endpoint groups the beacons that arrive during a commit),
        # except that the span write of the same beacons, queued right after, is waited
        # for: both commit in one transaction.
        wait_s = 0.0 if isinstance(first, (EventBatch, MetricBatch)) else self.commit_interval_s
        if isinstance(first, RumBatch) and not first.spans_follow:
            wait_s = 0.0
        deadline = time.monotonic() + wait_s
        while n < self.max_group_spans:
            timeout = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return group, events, True, tasks, metrics, rum
            if isinstance(item, _Task):
                tasks.append(item)
                continue
            if isinstance(item, EventBatch):
                events.append(item)
            elif isinstance(item, MetricBatch):
                metrics.append(item)
            elif isinstance(item, RumBatch):
                rum.append(item)
            else:
                group.append(item)
                if isinstance(first, RumBatch):
                    deadline = 0.0  # the awaited spans came: take what else is queued
            n += item.n
        return group, events, False, tasks, metrics, rum

    def _commit(self, group: list[_Batch]) -> None:
        n = sum(b.n for b in group)
        try:
            with self.commit_times.timed("spans"):
                error = self._written(lambda: self._insert_spans(group), f"commit of {n} spans")
            self._spans_committed(group, error)
        finally:
            with self._lock:
                self._queued_spans -= n

    def _spans_committed(
        self, group: list[_Batch], error: Exception | None, *, count_failure: bool = True
    ) -> None:
        if error is not None:
            self.stats["failed_commits"] += count_failure
            for b in group:
                b.future.set_exception(error)
            return
        self._db.succeeded()
        self.stats["committed_spans"] += sum(b.n for b in group)
        self.stats["commits"] += 1
        for b in group:
            b.future.set_result(b.n)

    def _insert_spans(self, group: list[_Batch]) -> None:
        con = self._db.writer()
        sql = ["BEGIN", *self._span_statements(group), "COMMIT"]
        try:
            con.execute("; ".join(sql))
        except BaseException:
            _rollback(con)
            raise

    def _span_statements(self, group: list[_Batch]) -> list[str]:
        """The INSERTs of a group of span batches. They read ``heron_span_rows`` and
        ``heron_span_rollups``, registered on the writer connection until the next group
        replaces them (unregistering costs a statement each). Registered names shadow
        the Python variables other writes' SQL reads by name (``rollup_tbl``…): they
        must not collide."""
        con = self._db.writer()
        tables = [b.table for b in group if b.table is not None]
        acc = merge_rollups(b.rollup for b in group)
        # BY NAME: columns added by later migrations (nullable) are left to default.
        # One execute() for the whole transaction: each call re-takes the GIL when
        # DuckDB returns, which costs up to a switch interval while the event loop
        # is decoding the next requests.
        sql = []
        if tables:
            con.register("heron_span_rows", pa.concat_tables(tables))
            sql.append("INSERT INTO spans BY NAME SELECT * FROM heron_span_rows")
        if acc:
            con.register("heron_span_rollups", rollups_to_arrow(acc))
            sql.append("INSERT INTO rollup_1m BY NAME SELECT * FROM heron_span_rollups")
        return sql

    def _commit_events(self, batches: list[EventBatch]) -> None:
        n = sum(b.n for b in batches)
        try:
            with self.commit_times.timed("events"):
                error = self._written(lambda: self._insert_events(batches), f"commit of {n} events")
            self._events_committed(batches, error)
        finally:
            with self._lock:
                self._queued_events -= n

    def _events_committed(
        self, batches: list[EventBatch], error: Exception | None, *, count_failure: bool = True
    ) -> None:
        if error is not None:
            self.stats["failed_commits"] += count_failure
            self._known_releases.clear()  # it may hold releases rolled back
            self._issue_cache.clear()  # and issue changes rolled back
            for b in batches:
                b.future.set_exception(error)
            return
        self._db.succeeded()
        self.stats["committed_events"] += sum(len(b.events) for b in batches)
        self.stats["committed_logs"] += sum(b.n - len(b.events) for b in batches)
        for b in batches:
            b.future.set_result(b.n)

    def _insert_events(self, batches: list[EventBatch]) -> None:
        con = self._db.writer()
        con.execute("BEGIN")
        try:
            sql = write_events(con, batches, self._known_releases, self._issue_cache)
            con.execute("; ".join([*sql, "COMMIT"]))
        except BaseException:
            _rollback(con)
            raise

    def _commit_metrics(self, all_batches: list[MetricBatch]) -> None:
        queued = sum(b.n for b in all_batches)
        try:
            batches = []
            for b in all_batches:
                try:
                    b.convert()
                except Exception as e:  # a value out of its column's range: this batch only
                    b.future.set_exception(e)
                    continue
                batches.append(b)
            if not batches:
                return
            n = sum(b.n for b in batches)
            with self.commit_times.timed("metrics"):
                error = self._written(
                    lambda: self._insert_metrics(batches), f"commit of {n} points"
                )
            if error is not None:
                self.stats["failed_commits"] += 1
                self._series_seen.clear()  # it may hold series rolled back
                for b in batches:
                    b.future.set_exception(error)
                return
            self._db.succeeded()
            self.stats["committed_points"] += n
            self.stats["metric_commits"] += 1
            for b in batches:
                b.future.set_result(b.n)
        finally:
            with self._lock:
                self._queued_points -= queued

    def _new_series(self, batches: list[MetricBatch]) -> pa.Table | None:
        """The catalogue rows of series new to the writer or seen in a later minute."""
        cols = self._series_seen.new_rows([b.rows for b in batches])
        return pa.table(cols, schema=_METRIC_SERIES_SCHEMA) if cols["series"] else None

    def _insert_metrics(self, batches: list[MetricBatch]) -> None:
        con = self._db.writer()
        points_tbl = pa.concat_tables([b.points for b in batches if b.points is not None])  # noqa: F841 - read by name
        rollup_tbl = pa.concat_tables([b.rollups for b in batches if b.rollups is not None])  # noqa: F841
        ex = [b.exemplars for b in batches if b.exemplars is not None]
        series_tbl = self._new_series(batches)
        sql = ["BEGIN"]
        if series_tbl is not None:
            sql.append(_UPSERT_SERIES)
        sql.append("INSERT INTO metric_points BY NAME SELECT * FROM points_tbl")
        sql.append("INSERT INTO metric_rollup_1m BY NAME SELECT * FROM rollup_tbl")
        if ex:
            ex_tbl = pa.concat_tables(ex)  # noqa: F841
            sql.append("INSERT INTO metric_exemplars BY NAME SELECT * FROM ex_tbl")
        sql.append("COMMIT")
        try:
            con.execute("; ".join(sql))
        except BaseException:
            _rollback(con)
            raise

    def _commit_rum(
        self, batches: list[RumBatch], group: list[_Batch], events: list[EventBatch]
    ) -> None:
        """RUM batches (if any) with the span and event batches of the same round, in one
        transaction; a failure fails them all."""
        n = sum(b.n for b in batches)
        n_spans = sum(b.n for b in group)
        n_events = sum(b.n for b in events)
        try:
            with self.commit_times.timed("rum" if batches else "spans"):
                error = self._written(
                    lambda: self._insert_rum(batches, group, events),
                    f"commit of {n} RUM events, {n_spans} spans and {n_events} events",
                )
            if group:
                self._spans_committed(group, error, count_failure=False)
            if events:
                self._events_committed(events, error, count_failure=False)
            if error is not None:
                self.stats["failed_commits"] += 1  # one transaction
                self._rum_built_to_s = None
                for b in batches:
                    b.future.set_exception(error)
                return
            self._db.succeeded()
            self.stats["committed_rum"] += n
            for b in batches:
                b.future.set_result(b.n)
        finally:
            with self._lock:
                self._queued_rum -= n
                self._queued_spans -= n_spans
                self._queued_events -= n_events

    def _insert_rum(
        self, batches: list[RumBatch], group: list[_Batch], events: list[EventBatch]
    ) -> None:
        con = self._db.writer()
        tables = [b.table for b in batches if b.table is not None]
        acc = merge_rum_rollups([b.rollups for b in batches if b.rollups])
        sql = ["BEGIN", *self._span_statements(group)]
        if tables:
            con.register("heron_rum_rows", pa.concat_tables(tables))
            sql.append("INSERT INTO rum_events BY NAME SELECT * FROM heron_rum_rows")
        if acc:
            con.register("rum_rollup_tbl", rum_rollups_to_arrow(acc))
            sql.append("INSERT INTO rum_rollup_1m BY NAME SELECT * FROM rum_rollup_tbl")
            # Move the hourly tier's watermark back only when a minute is before it (the
            # writer is the only one to change it: upkeep runs here as a task).
            if self._rum_built_to_s is None:
                row = con.execute("SELECT min(built_to_s) FROM rum_tiers").fetchone()
                self._rum_built_to_s = int(row[0]) if row and row[0] is not None else 0
            earliest = min(k[1] for k in acc) // 3600 * 3600
            if earliest < self._rum_built_to_s:
                sql.append(RUM_TIER_UPDATE)
                self._rum_built_to_s = None  # re-read after the commit
        if not events:
            sql.append("COMMIT")
        try:
            con.execute("; ".join(sql))
            if events:
                more = write_events(con, events, self._known_releases, self._issue_cache)
                con.execute("; ".join([*more, "COMMIT"]))
        except BaseException:
            _rollback(con)
            raise

    def _run_task(self, task: _Task) -> None:
        if not task.future.set_running_or_notify_cancel():
            return
        self._rum_built_to_s = None  # a task (upkeep) may rebuild the RUM tier
        self._issue_cache.clear()  # or change issues (a status change, an import)
        out: list[Any] = []
        error = self._written(lambda: self._transaction(task.fn, out), "background write")
        if error is not None:
            task.future.set_exception(error)
        else:
            task.future.set_result(out[0])

    def _transaction(self, fn: Callable[[Any], Any], out: list[Any]) -> None:
        """``fn(connection)`` in a transaction; its result goes to ``out`` before COMMIT,
        which may fail after it has committed (see ``_written``)."""
        con = self._db.writer()
        con.execute("BEGIN")
        try:
            out.append(fn(con))
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise

    def _written(self, write: Callable[[], None], what: str) -> Exception | None:
        """Run one transaction; None when it committed, even if the automatic checkpoint
        after its COMMIT failed, otherwise the error to answer its requests with."""
        try:
            write()
        except Exception as e:
            if not is_storage_failure(e):
                log.exception("%s failed", what)
            return self._db.failed(e)
        return None

    def disk_bytes(self) -> dict[str, int]:
        """Bytes on disk: the database file and its write-ahead log, after a CHECKPOINT
        on the writer (as ``close()`` leaves them). For the storage benchmarks."""
        self.write(lambda con: con.execute("CHECKPOINT"), timeout=600)
        wal = self.path.with_name(self.path.name + ".wal")
        return {"file": self.path.stat().st_size, "wal": wal.stat().st_size if wal.exists() else 0}

    def storage_bytes(self) -> dict[str, int]:
        """Bytes on disk now, by file (``file``, ``wal``): two ``stat`` calls, no
        checkpoint, so a scrape of ``GET /metrics`` may call it."""
        wal = self.path.with_name(self.path.name + ".wal")
        return {"file": _size(self.path), "wal": _size(wal)}

    @property
    def queued_spans(self) -> int:
        return self._queued_spans

    @property
    def queued_events(self) -> int:
        return self._queued_events

    @property
    def queued_points(self) -> int:
        return self._queued_points

    @property
    def queued_rum(self) -> int:
        return self._queued_rum

    # ----------------------------------------------------------------- read side

    def _reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._db.cursor(self.query_timeout_s)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._reader() as cur:
            return cur.execute(sql, list(params)).fetchall()

    def read_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Like read(), the rows as an Arrow table: no Python object per value, for
        results that go straight back into a table (the analysis job's rollups)."""
        with self._reader() as cur:
            return cur.sql(sql, params=list(params)).to_arrow_table()

    def read_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._reader() as cur:
            res = cur.execute(sql, list(params))
            names = [d[0] for d in res.description or []]
            return [dict(zip(names, row, strict=True)) for row in res.fetchall()]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def open_exclusive(db_path: Path) -> DuckDBStore:
    """A started store on ``db_path`` for a process other than the server (CLI, demo).
    DuckDB lets one process open a database file: its lock error becomes
    :class:`DatabaseInUse` with a message that says what to do."""
    try:
        return DuckDBStore(db_path).start()
    except duckdb.IOException as e:
        if "lock" not in str(e).lower():
            raise
        raise DatabaseInUse(
            f"{db_path} is in use by another process (a running `heron serve`?). DuckDB "
            "lets one process open it: stop the server first."
        ) from None
