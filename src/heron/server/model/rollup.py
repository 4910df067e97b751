"""The per-minute request rollup: what RED tables and time series read instead of raw
spans. One row per minute, service, environment, release, endpoint and latency bucket
(see ``heron.server.histogram``): count, errors and total duration of entry spans.

Computed from a batch of spans by the ingest pipeline (engine-neutral); writers persist
the accumulators and merge those of the batches they commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from heron.server.histogram import bucket_of
from heron.server.model.span import Span, SpanBatch

# The key's fields, in order, then the accumulated values.
ROLLUP_KEY = ("project_id", "minute_s", "service", "environment", "release", "endpoint", "bucket")
ROLLUP_VALUES = ("count", "errors", "sum_ns")
# key (ROLLUP_KEY) → [count, errors, sum_ns]
Rollups = dict[tuple[Any, ...], list[int]]


def rollup_rows(project_id: int, spans: Sequence[Span], acc: Rollups) -> None:
    """Add entry spans of a batch to per-minute, per-bucket counters in ``acc``."""
    batch = spans if isinstance(spans, SpanBatch) else SpanBatch.from_spans(spans)
    for span, endpoint, is_error in batch.entries():
        dur = span.duration_ns
        key = (
            project_id,
            span.start_ns // 60_000_000_000 * 60,
            span.service,
            span.environment,
            span.release,
            endpoint,
            bucket_of(dur),
        )
        row = acc.get(key)
        if row is None:
            acc[key] = [1, int(is_error), dur]
        else:
            row[0] += 1
            row[1] += is_error
            row[2] += dur


def merge_rollups(accs: Iterable[Rollups]) -> Rollups:
    """The sum of several accumulators (the one itself when there is one)."""
    accs = list(accs)
    if len(accs) == 1:
        return accs[0]
    out: Rollups = {}
    for acc in accs:
        for key, (count, errors, sum_ns) in acc.items():
            row = out.get(key)
            if row is None:
                out[key] = [count, errors, sum_ns]
            else:
                row[0] += count
                row[1] += errors
                row[2] += sum_ns
    return out
