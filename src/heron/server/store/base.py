"""The Store protocol: what ingest, queries and background jobs need from storage."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Protocol, Self

from heron.server.model.metric import MetricWrite
from heron.server.model.rum import RumWrite
from heron.server.model.write import EventWrite, SpanWrite
from heron.server.store.db import DbReader
from heron.server.store.issues import IssueReader
from heron.server.store.logs import LogReader
from heron.server.store.metrics import MetricReader
from heron.server.store.red import RedReader
from heron.server.store.rum import RumReader
from heron.server.store.state import StateStore
from heron.server.store.stats import CommitTimes
from heron.server.store.traces import TraceReader


class QueueFull(Exception):
    """The writer's queue is full; the caller should answer 503 with Retry-After."""

    retry_after_s = 1


class StorageUnavailable(Exception):
    """The store cannot write (disk full, an I/O error) or read (its database is being
    reopened); the caller should answer 503 with Retry-After. Nothing was stored."""

    retry_after_s = 5


class QueryTimeout(Exception):
    """A read ran past the store's time limit and was stopped; the caller should answer
    503 with Retry-After (a shorter time range or more filters may succeed)."""

    retry_after_s = 1


class DatabaseInUse(RuntimeError):
    """Another process (a running ``heron serve``) holds the store's database."""


class Store(Protocol):
    # Reads by subject: the query layer asks these, never SQL (see store/<subject>.py).
    @property
    def traces(self) -> TraceReader: ...
    @property
    def red(self) -> RedReader: ...
    @property
    def db(self) -> DbReader: ...
    @property
    def issues(self) -> IssueReader: ...
    @property
    def logs(self) -> LogReader: ...
    @property
    def metrics(self) -> MetricReader: ...
    @property
    def rum(self) -> RumReader: ...
    @property
    def state(self) -> StateStore: ...

    def submit_spans(self, write: SpanWrite) -> Future[int]:
        """Queue a prepared span batch (see ``ingest/pipeline.py``) for the writer, which
        persists it as given; the future resolves after it is committed.

        Raises QueueFull at once when the queue cannot take them.
        """

    def submit_events(self, write: EventWrite) -> Future[int]:
        """Queue error events (already scrubbed and fingerprinted) and log records; the
        writer assigns each event its issue (creating or updating issues, reopening
        regressions) and the future resolves after one commit holding all of them.

        Raises QueueFull at once when the queue cannot take them.
        """

    def submit_metrics(self, write: MetricWrite) -> Future[int]:
        """Queue data points (interval values, series keys set, see ``model/metric``)
        for the writer, which stores the points and their series' per-minute rollups;
        the future resolves after the commit holding them.

        Raises QueueFull at once when the queue cannot take them.
        """

    def submit_rum(self, write: RumWrite) -> Future[int]:
        """Queue RUM events (scrubbed, see ``ingest/rum``) and their per-minute rollups
        for the writer; the future resolves after the commit holding them. Several
        beacons' writes may commit together.

        Raises QueueFull at once when the queue cannot take them.
        """

    def upkeep(
        self,
        now_ns: int,
        *,
        retention_days: int,
        rollup_retention_days: int,
        compact_from_s: int,
        compact_to_s: int,
    ) -> int:
        """On the writer, in one transaction: delete what is older than its retention and
        merge the partial request-rollup rows of minutes [compact_from_s, compact_to_s);
        return the spans deleted."""

    def start(self) -> Self:
        """Start the writer (idempotent); returns the store."""

    @property
    def queued_spans(self) -> int:
        """Spans accepted but not yet committed (``/healthz``)."""

    @property
    def queued_events(self) -> int:
        """Events and log records accepted but not yet committed (``/healthz``)."""

    @property
    def queued_points(self) -> int:
        """Metric data points accepted but not yet committed (``/healthz``)."""

    @property
    def queued_rum(self) -> int:
        """RUM events accepted but not yet committed (``/healthz``)."""

    def health(self) -> str | None:
        """None while writes succeed; otherwise why they fail (cleared on recovery)."""

    # What GET /metrics reports of the writers (server/exposition/).
    @property
    def stats(self) -> dict[str, int]:
        """Counters since start: ``committed_<kind>`` (records acknowledged, by kind),
        ``commits``, ``failed_commits``, ``rejected_full`` (batches refused, queue full)."""

    @property
    def commit_times(self) -> CommitTimes:
        """Durations of the writers' commits."""

    def storage_bytes(self) -> dict[str, int]:
        """Bytes on disk now by file or table; cheap enough for every scrape."""

    def close(self) -> None:
        """Stop the writer after committing what is queued, and close connections."""
