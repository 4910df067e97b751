"""The metric data point, as ingest hands it to a store (OTLP and Prometheus alike).

A *series* is one metric name + service + attribute set; ``series_key`` names it with a
stable 64-bit number, the same in every process and backend. Ingest turns what arrives
into interval values before the store sees them:

- ``counter`` (a monotonic sum): ``value`` is the increase over the point's interval —
  cumulative sums are converted to increases with reset detection (``ingest/metrics``);
- ``updown`` (a non-monotonic sum) and ``gauge``: ``value`` is the value at ``time_ns``;
- ``histogram``: ``count``/``value`` (sum)/``min``/``max`` and ``bucket_counts`` are the
  interval's observations; ``bounds`` are the explicit upper bounds (``len(bounds) + 1``
  counts, the last one for ``+Inf``); exponential histograms arrive converted to
  explicit bounds;
- ``summary``: ``count``/``value`` (sum) of the interval, ``quantiles`` as sent
  ``((q, value), ...)`` at ``time_ns``.

``attributes`` are the data point's attributes plus the resource attributes that tell
one process from another (``IDENTIFYING_RESOURCE_KEYS``), all values as strings, so
label filters and grouping compare strings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import orjson

MetricKind = Literal["gauge", "counter", "updown", "histogram", "summary"]
METRIC_KINDS: tuple[MetricKind, ...] = ("gauge", "counter", "updown", "histogram", "summary")

# Resource attributes kept on every series as labels (one series per worker process,
# per host, per environment); the others describe the process and are not labels.
IDENTIFYING_RESOURCE_KEYS = (
    "service.instance.id",
    "service.version",
    "deployment.environment.name",
    "deployment.environment",
    "host.name",
    "process.pid",
    "k8s.pod.name",
    "container.id",
)


@dataclass(frozen=True, slots=True)
class Exemplar:
    """A sampled measurement that links a chart point to the trace it came from."""

    time_ns: int
    value: float
    trace_id: bytes  # 16 bytes
    span_id: int  # unsigned 64-bit


@dataclass(slots=True)
class MetricPoint:
    time_ns: int
    name: str
    kind: MetricKind
    service: str
    attributes: dict[str, str]
    value: float
    count: int = 0
    min: float | None = None
    max: float | None = None
    bounds: tuple[float, ...] = ()
    bucket_counts: tuple[int, ...] = ()
    quantiles: tuple[tuple[float, float], ...] = ()
    unit: str = ""
    description: str = ""
    exemplars: list[Exemplar] = field(default_factory=list)
    series: int = 0  # series_key(name, service, attributes); set by ingest

    def key(self) -> int:
        """This point's series key (computed once, kept in ``series``)."""
        if not self.series:
            self.series = series_key(self.name, self.service, self.attributes)
        return self.series


def canonical_attributes(attributes: dict[str, str]) -> str:
    """The attributes as sorted JSON text: how they are stored and hashed."""
    return orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS).decode()


def series_key(name: str, service: str, attributes: dict[str, str]) -> int:
    """A stable signed 64-bit key of a series (signed: both engines' BIGINT/Int64)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(name.encode())
    h.update(b"\x00")
    h.update(service.encode())
    h.update(b"\x00")
    h.update(canonical_attributes(attributes).encode())
    return int.from_bytes(h.digest(), "little", signed=True) or 1


@dataclass(slots=True)
class MetricWrite:
    """One request's data points, ready to persist (interval values, keys set)."""

    project_id: int
    points: list[MetricPoint]

    def __len__(self) -> int:
        return len(self.points)
