"""The ingest pipeline: every route's records take the same way to the writer.

    decoded records → scrub → fingerprint → group → roll up → write batch → writer

- spans (OTLP traces, Sentry transactions and spans): literals out of SQL and each
  statement's fingerprint (``analyze.scrub``), then secrets out of names, URLs, headers,
  attributes and events (``analyze.span_scrub``), then the per-minute rollups of the
  entry spans (``model.rollup``), as a :class:`~heron.server.model.write.SpanWrite`;
- error events and log records (OTLP logs, Sentry envelopes, span exception events):
  scrubbed (``analyze.event_scrub``), each event given its issue fingerprint
  (``analyze.grouping``), as an :class:`~heron.server.model.write.EventWrite`.

Nothing unscrubbed reaches the writer, which only persists what it is given. The work
runs on the submitting thread, so the writer only waits on its database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future

from heron.server.analyze.event_scrub import EventScrubber
from heron.server.analyze.grouping import assign
from heron.server.analyze.scrub import scrub_db_spans
from heron.server.analyze.span_scrub import SpanScrubber
from heron.server.model import ErrorEvent, LogRecord, Span
from heron.server.model.rollup import Rollups, rollup_rows
from heron.server.model.rum import RumEvent, RumRollups, RumWrite, rollup_rum
from heron.server.model.write import EventWrite, SpanWrite
from heron.server.store.base import QueueFull, Store


def prepare_spans(
    project_id: int, spans: Sequence[Span], scrubber: SpanScrubber, *, rollup: bool = True
) -> SpanWrite:
    """Spans ready for the writer: SQL obfuscated and fingerprinted, secrets scrubbed,
    rolled up (from the scrubbed spans, so rollups never hold a secret either). Browser
    spans (``rollup=False``) are stored but not rolled up: page loads and a page's fetch
    calls are not endpoints of a service's RED metrics."""
    obfuscated, fingerprints = scrub_db_spans(spans)
    batch = scrubber.spans(obfuscated)
    rollups: Rollups = {}
    if rollup:
        rollup_rows(project_id, batch, rollups)
    return SpanWrite(project_id, batch, fingerprints, rollups)


def prepare_events(
    project_id: int,
    events: list[ErrorEvent],
    logs: list[LogRecord],
    scrubber: EventScrubber,
) -> EventWrite:
    """Events scrubbed and given their issue fingerprints, log records scrubbed."""
    for ev in events:
        assign(scrubber.event(ev))
    for rec in logs:
        scrubber.log(rec)
    return EventWrite(project_id, events, logs)


class Pipeline:
    """The pipeline of one server: its scrubbers (with the configured ``scrub_keys``)
    and the writer it feeds. Scrubbers keep caches of values seen clean, so one
    pipeline serves all requests."""

    def __init__(self, writer: Store, scrub_keys: Iterable[str] = ()) -> None:
        keys = list(scrub_keys)
        self.writer = writer
        self.span_scrubber = SpanScrubber(keys)
        self.event_scrubber = EventScrubber(keys)
        # Items refused, by (signal, reason): "invalid" (left out of a partial success)
        # or "queue_full" (answered 503/429). Read by GET /metrics.
        self.rejected: dict[tuple[str, str], int] = {}

    def count_rejected(self, signal: str, reason: str, n: int) -> None:
        """Count ``n`` items of ``signal`` (spans, events, logs...) refused for ``reason``."""
        if n:
            key = (signal, reason)
            self.rejected[key] = self.rejected.get(key, 0) + n

    def submit_spans(
        self, project_id: int, spans: Sequence[Span], *, rollup: bool = True
    ) -> Future[int]:
        """Prepare spans and queue them; the future resolves after their commit.
        Raises QueueFull at once when the writer is overloaded."""
        try:
            write = prepare_spans(project_id, spans, self.span_scrubber, rollup=rollup)
            return self.writer.submit_spans(write)
        except QueueFull:
            self.count_rejected("spans", "queue_full", len(spans))
            raise

    def submit_events(
        self, project_id: int, events: list[ErrorEvent], logs: list[LogRecord]
    ) -> Future[int]:
        """Prepare events and logs and queue them; the future resolves after one commit
        holding all of them. Raises QueueFull at once when the writer is overloaded."""
        write = prepare_events(project_id, events, logs, self.event_scrubber)
        try:
            return self.writer.submit_events(write)
        except QueueFull:
            self.count_rejected("events", "queue_full", len(events))
            self.count_rejected("logs", "queue_full", len(logs))
            raise

    def submit_rum(
        self, project_id: int, events: list[RumEvent], *, spans_follow: bool = False
    ) -> Future[int]:
        """Queue RUM events (already scrubbed by ``ingest/rum``) with their per-minute
        rollups; the future resolves after their commit. Raises QueueFull at once when
        the writer is overloaded. ``spans_follow``: the caller submits the beacons'
        spans next (see ``RumWrite.spans_follow``)."""
        rollups: RumRollups = {}
        rollup_rum(project_id, events, rollups)
        try:
            return self.writer.submit_rum(RumWrite(project_id, events, rollups, spans_follow))
        except QueueFull:
            self.count_rejected("rum", "queue_full", len(events))
            raise
