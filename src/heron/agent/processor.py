"""The SDK's batch span processor, plus what a burst needs: room, counts and one warning.

The SDK's ``BatchSpanProcessor`` drops the oldest span when its bounded queue is full
and logs "Queue full" every 20 s. Heron's subclass instead drops the span being ended
(the queue is left alone), says so on the ``heron.agent`` logger at most once a minute,
and counts every span it was given so that :meth:`queue_dropped` can tell how many
never reached the exporter. It never blocks the app: a full queue costs the app a
length check, not a wait.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sized

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

logger = logging.getLogger("heron.agent")

FULL_QUEUE_WARNING_INTERVAL_S = 60.0


def slim(span: ReadableSpan) -> ReadableSpan:
    """Let an ended span wait in the queue without its empty event and link lists.

    Each empty ``BoundedList`` (a deque and a lock) costs about 1.1 KB, two thirds of a
    plain queued span; an empty tuple reads the same to every exporter.
    """
    for name in ("_events", "_links"):
        items = getattr(span, name, ())
        if not items and not getattr(items, "dropped", 0):
            try:
                setattr(span, name, ())
            except AttributeError:  # a span type without these fields: left as it is
                break
    return span


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """``BatchSpanProcessor`` that counts the spans it is given and warns when it drops.

    Spans dropped are those given to the processor that neither reached the exporter
    nor wait in the queue: ``queue_dropped()`` works that out, exactly once the pipeline
    is at rest, instead of racing the worker thread on every span.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int,
        max_export_batch_size: int,
        schedule_delay_millis: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            exporter,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
        )
        self._queue_limit = max_queue_size
        self._ended = itertools.count()  # next() is atomic; no lock on the hot path
        self._clock = clock
        self._next_warning = float("-inf")
        # The SDK's queue (an internal; the same deque lives on after fork). If a future
        # SDK renames it, the SDK drops (and logs) by itself and the counts still hold.
        queue = getattr(self._batch_processor, "_queue", None)
        self._queue: Sized | None = queue if isinstance(queue, Sized) else None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        next(self._ended)
        if self._queue is not None and len(self._queue) >= self._queue_limit:
            self._warn_full()
            return
        super().on_end(slim(span))

    def _warn_full(self) -> None:
        now = self._clock()
        if now < self._next_warning:
            return
        self._next_warning = now + FULL_QUEUE_WARNING_INTERVAL_S
        logger.warning(
            "heron: the span queue is full (%d spans waiting for export); dropping new "
            "spans and counting them in heron.stats().dropped (this warning repeats at "
            "most once a minute; OTEL_BSP_MAX_QUEUE_SIZE sets the queue's size)",
            self._queue_limit,
        )

    def ended(self) -> int:
        """Sampled spans given to this processor (in this process)."""
        # count() has no getter; its repr, "count(N)", is the one read-only view of N.
        return int(repr(self._ended)[6:-1])

    def queued(self) -> int:
        """Spans waiting in the queue right now."""
        return len(self._queue) if self._queue is not None else 0

    def queue_dropped(self, given_to_exporter: int) -> int:
        """Spans the full queue dropped, given how many the exporter has been handed."""
        if self._queue is None:
            return 0
        return max(0, self.ended() - given_to_exporter - self.queued())

    def after_fork(self) -> None:
        """In a child: the SDK emptied the queue; start counting again."""
        self._ended = itertools.count()
        self._next_warning = float("-inf")
