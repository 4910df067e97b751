"""Beacons of one moment queued to the writer together.

A beacon is small (about ten events, a few browser spans) and the writer's cost per
write has a large fixed part (building columns, scrubbing a batch of spans, a commit), so
beacons that arrive within :data:`WINDOW_S` of each other are queued as one RUM write,
one span write and one error-event write per project. Each beacon's request still waits
for the commits holding its records before it is answered. Runs on the event loop
thread only.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future

from heron.server.errors import ServiceUnavailable
from heron.server.ingest.http import committed
from heron.server.ingest.pipeline import Pipeline
from heron.server.ingest.rum_decode import Beacon
from heron.server.store.base import QueueFull

log = logging.getLogger("heron.ingest.rum")

WINDOW_S = 0.005  # how long the first beacon of a batch waits for others
MAX_EVENTS = 5_000  # a batch this large is queued at once

Writes = list[tuple[Future[int], str]]


class BeaconBatcher:
    def __init__(
        self, pipeline: Pipeline, window_s: float = WINDOW_S, max_events: int = MAX_EVENTS
    ) -> None:
        self.pipeline = pipeline
        self.window_s = window_s
        self.max_events = max_events
        self._pending: dict[int, list[tuple[Beacon, asyncio.Future[Writes]]]] = {}
        self._events = 0
        self._timer: asyncio.TimerHandle | None = None

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
        elif self._timer is None:
            self._timer = loop.call_later(self.window_s, self.flush)
        for fut, what in await waiter:
            await committed(fut, what)

    def flush(self) -> None:
        """Queue everything pending now (one write of each kind per project)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._events = self._pending, {}, 0
        for project, items in pending.items():
            try:
                writes = self._submit(project, [b for b, _ in items])
            except Exception as e:  # QueueFull, or a bug: every waiter hears of it
                outcome: Writes | BaseException = e
            else:
                outcome = writes
            for _, waiter in items:
                if waiter.done():  # the request was cancelled (client hung up)
                    continue
                if isinstance(outcome, BaseException):
                    waiter.set_exception(_as_http(outcome))
                else:
                    waiter.set_result(outcome)

    def _submit(self, project: int, beacons: list[Beacon]) -> Writes:
        events = [e for b in beacons for e in b.events]
        writes: Writes = [(self.pipeline.submit_rum(project, events), "RUM events")]
        spans = [s for b in beacons for s in b.spans]
        errors = [e for b in beacons for e in b.errors]
        try:
            if spans:
                writes.append((self.pipeline.submit_spans(project, spans, rollup=False), "spans"))
            if errors:
                writes.append((self.pipeline.submit_events(project, errors, []), "errors"))
        except QueueFull:
            log.warning(
                "write queue full: dropped the browser spans or errors of %d beacons", len(beacons)
            )
        return writes


def _as_http(e: BaseException) -> BaseException:
    if isinstance(e, QueueFull):
        return ServiceUnavailable(f"{e}; retry later", {"Retry-After": "1"})
    return e
