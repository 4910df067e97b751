"""``ClickHouseStore``: telemetry in ClickHouse, state in PostgreSQL or a local file.

One writer thread drains the queue: every ``SpanWrite`` waiting is inserted with the
others in one INSERT per table (thousands of rows each under load), and each future
resolves only after ClickHouse acknowledged those inserts; a failed INSERT fails the
futures (``StorageUnavailable``, 503) and nothing of it is acknowledged. Database
monitoring's analysis writes (``store.db.replace_analysis``) and upkeep use the writer's
client too, under its lock. Error events and logs have a writer of their own
(``events.py``); issues live in the state store.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, NoReturn

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from heron.server.model.metric import MetricWrite
from heron.server.model.metric_rows import MetricRows, SeenSeries, metric_rows
from heron.server.model.rollup import ROLLUP_KEY, ROLLUP_VALUES, merge_rollups
from heron.server.model.rum import RumWrite
from heron.server.model.span import SPAN_COLUMNS
from heron.server.model.write import EventWrite, SpanWrite
from heron.server.store.base import QueueFull, StorageUnavailable
from heron.server.store.clickhouse import schema
from heron.server.store.clickhouse._client import ChReads
from heron.server.store.clickhouse.db import ClickHouseDb
from heron.server.store.clickhouse.events import EventWriter
from heron.server.store.clickhouse.issues import ClickHouseIssues
from heron.server.store.clickhouse.logs import ClickHouseLogs
from heron.server.store.clickhouse.metrics import ClickHouseMetrics, insert_metrics
from heron.server.store.clickhouse.red import ClickHouseRed
from heron.server.store.clickhouse.rum import ClickHouseRum, insert_rum
from heron.server.store.clickhouse.traces import ClickHouseTraces
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.postgres.state import PostgresState
from heron.server.store.state import StateStore
from heron.server.store.stats import CommitTimes

SPAN_INSERT_COLUMNS = ("project_id", *SPAN_COLUMNS, "db_fingerprint")
ROLLUP_COLUMNS = (*ROLLUP_KEY, *ROLLUP_VALUES)
_STOP = object()
NS_PER_DAY = 86_400 * 10**9


def _no_state() -> NoReturn:
    raise RuntimeError("ClickHouseStore has no state store: give state_url or state_path")


class ClickHouseStore:
    """Implements the ``store.base.Store`` writer for spans and the trace and RED readers
    on ClickHouse. ``dsn``: ``http://user:pass@host:8123`` or ``chdb:///path``."""

    def __init__(
        self,
        dsn: str,
        *,
        database: str = "heron",
        retention_days: int = 7,
        rollup_retention_days: int = 90,
        query_timeout_s: float = 30.0,
        max_queue: int = 1000,
        max_batch_rows: int = 100_000,
        state_path: Path | None = None,
        state_url: str | None = None,
        state_schema: str = "heron",
        cluster: str | None = None,
        read_clients: int = 8,
        commit_interval_ms: float = 25.0,
        queue_max_points: int = 500_000,
        queue_max_rum: int = 200_000,
    ) -> None:
        # State (projects, keys, users, sessions, issues) is transactional: shared by
        # every process in PostgreSQL (``state_url``, schema ``state_schema``; scale-out),
        # else a local DuckDB file for one process (``state_path``).
        self._pg_state = (
            PostgresState(state_url, schema=state_schema) if state_url is not None else None
        )
        self._state_store = (
            DuckDBStore(state_path).start()
            if state_path is not None and state_url is None
            else None
        )
        # ``cluster``: tables ON CLUSTER, Replicated + Distributed (schema.migrate); an
        # INSERT into a Distributed table returns only after every shard has its rows.
        self.cluster = schema.database_name(cluster) if cluster else None
        self._settings = {"insert_distributed_sync": 1} if self.cluster else {}
        self.database = schema.database_name(database)
        self._writer_client = self._connect(dsn, self._settings)
        schema.migrate(self._writer_client, self.database, cluster=self.cluster)
        schema.apply_retention(
            self._writer_client,
            self.database,
            retention_days=retention_days,
            rollup_retention_days=rollup_retention_days,
            cluster=self.cluster,
        )
        # Reads borrow a client each from a pool (a client runs one query at a time), so
        # several pages load at once; in-process chdb keeps one.
        self._reads = ChReads(
            self._connect(dsn, self._settings),
            self.database,
            query_timeout_s,
            connect=lambda: self._connect(dsn, self._settings),
            size=1 if dsn.startswith("chdb:") else read_clients,
        )
        self._traces = ClickHouseTraces(self._reads)
        self._red = ClickHouseRed(self._reads)
        # The writer's client: its lock is held by the span writer and the analysis job.
        self._writes = ChReads(self._writer_client, self.database, query_timeout_s)
        self._db = ClickHouseDb(self._reads, self._writes)
        self._issues = ClickHouseIssues(self._reads, lambda: self.state)
        self._logs = ClickHouseLogs(self._reads)
        self._metrics = ClickHouseMetrics(self._reads)
        self._rum = ClickHouseRum(self._reads)
        # Metric points share the span writer's thread and queue, with a budget of their own.
        self.queue_max_points = queue_max_points
        self._queued_points = 0
        self._points_lock = threading.Lock()
        self._series_seen = SeenSeries()  # writer thread only
        # RUM events too, with a budget of their own.
        self.queue_max_rum = queue_max_rum
        self._queued_rum = 0
        # Counted for GET /metrics (the keys of ``DuckDBStore.stats``).
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
        self.commit_times = CommitTimes()
        # Events and logs have their own writer thread and client (store/clickhouse/events.py).
        self._events = EventWriter(
            self._connect(dsn, self._settings),
            self.database,
            lambda: self.state,
            max_queue=max_queue,
            max_batch_rows=max_batch_rows,
            stats=self.stats,
            commit_times=self.commit_times,
        )
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._max_batch_rows = max_batch_rows
        self._linger_s = max(0.0, commit_interval_ms) / 1000
        self._error: str | None = None
        self._thread = threading.Thread(
            target=self._run, name="heron-clickhouse-writer", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _connect(dsn: str, settings: dict[str, Any]) -> Client:
        try:
            return clickhouse_connect.get_client(dsn=dsn, settings=settings)
        except ClickHouseError as err:
            raise StorageUnavailable(f"cannot connect to ClickHouse: {err}") from err

    # ------------------------------------------------------------------ readers

    @property
    def traces(self) -> ClickHouseTraces:
        return self._traces

    @property
    def red(self) -> ClickHouseRed:
        return self._red

    @property
    def db(self) -> ClickHouseDb:
        return self._db

    @property
    def issues(self) -> ClickHouseIssues:
        return self._issues

    @property
    def logs(self) -> ClickHouseLogs:
        return self._logs

    @property
    def metrics(self) -> ClickHouseMetrics:
        return self._metrics

    @property
    def rum(self) -> ClickHouseRum:
        return self._rum

    @property
    def state(self) -> StateStore:
        if self._pg_state is not None:
            return self._pg_state
        if self._state_store is None:
            _no_state()
        return self._state_store.state

    # ------------------------------------------------------------------- writer

    def start(self) -> ClickHouseStore:
        """The writer runs from construction; here for the ``Store`` protocol."""
        return self

    @property
    def queued_spans(self) -> int:
        return sum(
            len(item[0])
            for item in list(self._queue.queue)
            if item is not _STOP and isinstance(item[0], SpanWrite)
        )

    @property
    def queued_points(self) -> int:
        return self._queued_points

    def submit_metrics(self, write: MetricWrite) -> Future[int]:
        """Queue data points for the writer (converted to rows here, on the caller's
        thread); the future resolves after ClickHouse acknowledged their inserts."""
        n = len(write)
        with self._points_lock:
            if self._queued_points + n > self.queue_max_points and self._queued_points:
                self.stats["rejected_full"] += 1
                raise QueueFull(f"write queue full ({self._queued_points} points waiting)")
            self._queued_points += n
        fut: Future[int] = Future()
        try:
            rows = metric_rows(write)
            self._queue.put_nowait((rows, fut))
        except queue.Full:
            self._points_done(n)
            self.stats["rejected_full"] += 1
            raise QueueFull from None
        except Exception as e:  # a malformed point: fail this write only
            self._points_done(n)
            fut.set_exception(e)
        return fut

    @property
    def queued_rum(self) -> int:
        return self._queued_rum

    def submit_rum(self, write: RumWrite) -> Future[int]:
        """Queue RUM events for the writer; the future resolves after ClickHouse
        acknowledged their inserts (events, then rollups)."""
        n = len(write)
        with self._points_lock:
            if self._queued_rum + n > self.queue_max_rum and self._queued_rum:
                self.stats["rejected_full"] += 1
                raise QueueFull(f"write queue full ({self._queued_rum} RUM events waiting)")
            self._queued_rum += n
        fut: Future[int] = Future()
        try:
            self._queue.put_nowait((write, fut))
        except queue.Full:
            self._rum_done(n)
            self.stats["rejected_full"] += 1
            raise QueueFull from None
        return fut

    def _rum_done(self, n: int) -> None:
        with self._points_lock:
            self._queued_rum -= n

    def _points_done(self, n: int) -> None:
        with self._points_lock:
            self._queued_points -= n

    @property
    def queued_events(self) -> int:
        return self._events.queued

    def submit_spans(self, write: SpanWrite) -> Future[int]:
        fut: Future[int] = Future()
        try:
            self._queue.put_nowait((write, fut))
        except queue.Full:
            self.stats["rejected_full"] += 1
            raise QueueFull from None
        return fut

    def submit_events(self, write: EventWrite) -> Future[int]:
        """Queue events and logs for the event writer (see ``clickhouse/events.py``)."""
        return self._events.submit(write)

    def upkeep(
        self,
        now_ns: int,
        *,
        retention_days: int,
        rollup_retention_days: int,
        compact_from_s: int,
        compact_to_s: int,
    ) -> int:
        """Retention is each table's TTL (background merges drop expired parts, by
        ClickHouse's clock) and rollups are summed by SummingMergeTree merges, so upkeep
        deletes no spans and compacts nothing: it drops the names of fingerprints no query
        statistic uses that were first seen before the span retention (as DuckDB's upkeep
        does) and returns 0, the spans it deleted."""
        self._db.prune_fingerprints(now_ns - retention_days * NS_PER_DAY)
        return 0

    def health(self) -> str | None:
        return self._error or self._events.error

    def disk_bytes(self) -> dict[str, int]:
        """Bytes on disk of the database's active parts per table (``system.parts``,
        compressed, as merged so far). For the storage benchmarks."""
        rows = self._reads.rows(
            "SELECT table, sum(bytes_on_disk) FROM system.parts"
            " WHERE database = {database:String} AND active GROUP BY table",
            {"database": self.database},
        )
        return {str(table): int(size) for table, size in rows}

    def storage_bytes(self) -> dict[str, int]:
        """Bytes on disk per table (``disk_bytes``: one ``system.parts`` query)."""
        return self.disk_bytes()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        self._events.close()
        for client in (self._writer_client, self._events.client):
            client.close()
        self._reads.close()
        if self._state_store is not None:
            self._state_store.close()
        if self._pg_state is not None:
            self._pg_state.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            rows = len(item[0])
            # Every INSERT has a fixed cost (a new part, the trace-times view): wait up to
            # ``commit_interval_ms`` after the first batch for more to come with it.
            deadline = time.monotonic() + self._linger_s
            while rows < self._max_batch_rows:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._commit(batch)
                    return
                batch.append(nxt)
                rows += len(nxt[0])
            self._commit(batch)

    def _commit(self, items: list[tuple[Any, Future[int]]]) -> None:
        metrics = [(w, f) for w, f in items if isinstance(w, MetricRows)]
        if metrics:
            self._commit_metrics(metrics)
        rum = [(w, f) for w, f in items if isinstance(w, RumWrite)]
        if rum:
            self._commit_rum(rum)
        batch = [(w, f) for w, f in items if isinstance(w, SpanWrite)]
        if batch:
            self._commit_spans(batch)

    def _commit_metrics(self, batch: list[tuple[MetricRows, Future[int]]]) -> None:
        n = sum(r.n for r, _ in batch)
        try:
            rows = [r for r, _ in batch]
            # Each insert takes the writer client's lock (shared with the analysis job).
            with self.commit_times.timed("metrics"):
                insert_metrics(self._writes, rows, self._series_seen.new_rows(rows))
        except (ClickHouseError, OSError, StorageUnavailable) as err:
            self.stats["failed_commits"] += 1
            self._series_seen.clear()
            self._error = f"ClickHouse write failed: {err}"
            for _, fut in batch:
                fut.set_exception(StorageUnavailable(self._error))
            return
        finally:
            self._points_done(n)
        self._error = None
        self.stats["committed_points"] += n
        self.stats["metric_commits"] += 1
        for r, fut in batch:
            fut.set_result(r.n)

    def _commit_rum(self, batch: list[tuple[RumWrite, Future[int]]]) -> None:
        n = sum(len(w) for w, _ in batch)
        try:
            with self.commit_times.timed("rum"):
                insert_rum(self._writes, [w for w, _ in batch])
        except (ClickHouseError, OSError, StorageUnavailable) as err:
            self.stats["failed_commits"] += 1
            self._error = f"ClickHouse write failed: {err}"
            for _, fut in batch:
                fut.set_exception(StorageUnavailable(self._error))
            return
        except Exception as e:  # a value its column cannot hold: fail these writes only
            for _, fut in batch:
                fut.set_exception(e)
            return
        finally:
            self._rum_done(n)
        self._error = None
        self.stats["committed_rum"] += n
        for w, fut in batch:
            fut.set_result(len(w))

    def _commit_spans(self, batch: list[tuple[SpanWrite, Future[int]]]) -> None:
        writes = [w for w, _ in batch]
        try:
            with self._writes.lock, self.commit_times.timed("spans"):
                self._insert(writes)
        except (ClickHouseError, OSError) as err:
            self.stats["failed_commits"] += 1
            self._error = f"ClickHouse write failed: {err}"
            for _, fut in batch:
                fut.set_exception(StorageUnavailable(self._error))
            return
        self._error = None
        self.stats["committed_spans"] += sum(len(w) for w in writes)
        self.stats["commits"] += 1
        for write, fut in batch:
            fut.set_result(len(write))

    def _insert(self, writes: list[SpanWrite]) -> None:
        columns: list[list[Any]] = [[] for _ in SPAN_INSERT_COLUMNS]
        for write in writes:
            columns[0] += [write.project_id] * len(write.spans)
            for i, values in enumerate(write.spans.columns().values(), start=1):
                columns[i] += values
            columns[-1] += write.fingerprints
        if columns[0]:
            self._writer_client.insert(
                f"{self.database}.spans",
                columns,
                column_names=list(SPAN_INSERT_COLUMNS),
                column_oriented=True,
            )
        rollups = merge_rollups(w.rollups for w in writes if w.rollups)
        if rollups:
            self._writer_client.insert(
                f"{self.database}.rollup_1m",
                [[*key, *values] for key, values in rollups.items()],
                column_names=list(ROLLUP_COLUMNS),
            )
