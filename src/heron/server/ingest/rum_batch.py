"""Beacons of one moment queued to the writer together.

A beacon is small (about ten events, a few browser spans) and the writer's cost per
write has a large fixed part (building columns, scrubbing a batch of spans, a commit), so
beacons are queued together: one RUM write, one span write and one error-event write per
project for all the beacons decoded while the previous batch was being committed (group
commit without a timer: an idle writer gets a beacon at once, a busy one gets everything
that arrived meanwhile when it is done). Each beacon's request still waits for the
commits holding its records before it is answered. Runs on the event loop thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future

from heron.server.errors import ServiceUnavailable
from heron.server.ingest.http import committed
from heron.server.ingest.pipeline import Pipeline
from heron.server.ingest.rum_decode import Beacon
from heron.server.store.base import QueueFull

log = logging.getLogger("heron.ingest.rum")

MAX_EVENTS = 5_000  # a batch this large is queued at once, even while one is in flight
MAX_IN_FLIGHT = 1  # batches queued to the writer and not yet committed

Writes = list[tuple[Future[int], str]]


class BeaconBatcher:
    def __init__(
        self, pipeline: Pipeline, max_events: int = MAX_EVENTS, max_in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self.pipeline = pipeline
        self.max_events = max_events
        self.max_in_flight = max_in_flight
        self._pending: dict[int, list[tuple[Beacon, asyncio.Future[Writes]]]] = {}
        self._events = 0
        self._scheduled: asyncio.Handle | None = None
        self._in_flight = 0  # flushes whose writes are not all done yet

    async def store(self, project: int, beacon: Beacon) -> None:
        """Queue the beacon's records with others and wait for their commits. A full
        queue for the RUM events raises ServiceUnavailable (503, nothing of the batch
        queued); spans and error events queued after them are dropped and logged when
        the writer is too busy, so a retry does not duplicate the events."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Writes] = loop.create_future()
        self._pending.setdefault(project, []).append((beacon, waiter))
        self._events += len(beacon.events)
        if self._events >= self.max_events:
            self.flush()
        elif self._scheduled is None and self._in_flight < self.max_in_flight:
            # After the requests already readable on this loop iteration were decoded.
            self._scheduled = loop.call_soon(self.flush)
        for fut, what in await waiter:
            await committed(fut, what)

    def flush(self) -> None:
        """Queue everything pending now (one write of each kind per project)."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        pending, self._pending, self._events = self._pending, {}, 0
        if not pending:
            return
        loop = asyncio.get_running_loop()
        futures: list[Future[int]] = []
        for project, items in pending.items():
            try:
                writes = self._submit(project, [b for b, _ in items])
            except Exception as e:  # QueueFull, or a bug: every waiter hears of it
                outcome: Writes | BaseException = e
            else:
                outcome = writes
                futures += [f for f, _ in writes]
            for _, waiter in items:
                if waiter.done():  # the request was cancelled (client hung up)
                    continue
                if isinstance(outcome, BaseException):
                    waiter.set_exception(_as_http(outcome))
                else:
                    waiter.set_result(outcome)
        if futures:
            self._in_flight += 1
            left = [len(futures)]  # counted on the loop thread only

            def one_done() -> None:
                left[0] -= 1
                if left[0] == 0:
                    self._landed()

            for f in futures:  # done callbacks run on the writer thread
                f.add_done_callback(lambda _: _call_soon(loop, one_done))

    def _landed(self) -> None:
        """A flush's writes are all done: queue what arrived meanwhile."""
        self._in_flight -= 1
        if self._pending and self._scheduled is None and self._in_flight < self.max_in_flight:
            self.flush()

    def _submit(self, project: int, beacons: list[Beacon]) -> Writes:
        events = [e for b in beacons for e in b.events]
        spans = [s for b in beacons for s in b.spans]
        errors = [e for b in beacons for e in b.errors]
        rum = self.pipeline.submit_rum(project, events, spans_follow=bool(spans))
        writes: Writes = [(rum, "RUM events")]
        try:  # the spans last: DuckDB's writer waits for them (RumWrite.spans_follow)
            if errors:
                writes.append((self.pipeline.submit_events(project, errors, []), "errors"))
            if spans:
                writes.append((self.pipeline.submit_spans(project, spans, rollup=False), "spans"))
        except QueueFull:
            log.warning(
                "write queue full: dropped the browser spans or errors of %d beacons", len(beacons)
            )
        return writes


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed (shutdown)
        loop.call_soon_threadsafe(fn)


def _as_http(e: BaseException) -> BaseException:
    if isinstance(e, QueueFull):
        return ServiceUnavailable(f"{e}; retry later", {"Retry-After": "1"})
    return e
