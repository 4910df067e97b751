"""The SDK's batch span processor, plus what is needed to count the spans its queue drops."""

from __future__ import annotations

import itertools
from collections.abc import Sized

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """``BatchSpanProcessor`` that counts the spans it is given.

    The SDK drops the oldest span when its bounded queue is full and only logs it. Spans
    dropped that way are those given to the processor that neither reached the exporter
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
    ) -> None:
        super().__init__(
            exporter,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
        )
        self._ended = itertools.count()  # next() is atomic; no lock on the hot path
        # The SDK's queue (an internal; the same deque lives on after fork). If a future
        # SDK renames it, queue-full drops are simply not counted.
        queue = getattr(self._batch_processor, "_queue", None)
        self._queue: Sized | None = queue if isinstance(queue, Sized) else None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            next(self._ended)
        super().on_end(span)

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
