"""Write batches: what the ingest pipeline hands a store's writer, ready to persist.

Everything here is already scrubbed; spans carry their SQL fingerprints and rollup
accumulators, events their issue fingerprints. A writer converts them to its engine's
form and persists them; it computes nothing about them (``ingest/pipeline.py`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heron.server.model.event import ErrorEvent
from heron.server.model.log import LogRecord
from heron.server.model.rollup import Rollups
from heron.server.model.span import SpanBatch


@dataclass(slots=True)
class SpanWrite:
    """One request's spans: scrubbed rows, each row's SQL fingerprint (None without a
    statement), and the per-minute rollups of its entry spans."""

    project_id: int
    spans: SpanBatch
    fingerprints: list[int | None]
    rollups: Rollups = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.spans)


@dataclass(slots=True)
class EventWrite:
    """One request's error events (scrubbed, with their issue fingerprints) and log
    records (scrubbed). The writer assigns issues when it commits them."""

    project_id: int
    events: list[ErrorEvent]
    logs: list[LogRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.events) + len(self.logs)
