"""A ``MetricWrite`` in stored form: the rows every metrics writer persists (engine-neutral).

- ``series``: the catalogue, one row per series of the write (name, service, kind, unit,
  description, attributes, the first and last minute seen in it); the attributes are
  the point's dict here, made sorted JSON text by ``SeenSeries.new_rows`` for the rows
  to be written (a steady stream writes each series' row once a minute);
- ``points``: the raw data points;
- ``rollups``: per series and minute, the write's points merged (``metric_rollup_1m``):
  ``count`` (observations of a histogram/summary, otherwise points), ``sum`` (of values;
  histograms/summaries: of observations), ``min``/``max``, ``last`` and ``last_ns`` (the
  latest value), ``bounds``/``buckets`` (histograms: bucket counts summed; points whose
  bounds differ from the row's stay in rows of their own). Rows of different writes for
  the same key are partial until the store merges them: readers always merge;
- ``exemplars``: one row per exemplar, with its series.

Computed on the submitting thread, so writers only insert columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heron.server.model.metric import MetricPoint, MetricWrite, canonical_attributes

NS_PER_MIN = 60 * 10**9

SERIES_COLUMNS = (
    "project_id",
    "series",
    "name",
    "service",
    "kind",
    "unit",
    "description",
    "attributes",
    "first_seen_s",
    "last_seen_s",
)
POINT_COLUMNS = (
    "project_id",
    "time_ns",
    "series",
    "value",
    "count",
    "min",
    "max",
    "bounds",
    "buckets",
    "quantiles",
)
ROLLUP_COLUMNS = (
    "project_id",
    "series",
    "minute_s",
    "count",
    "sum",
    "min",
    "max",
    "last",
    "last_ns",
    "bounds",
    "buckets",
)
EXEMPLAR_COLUMNS = ("project_id", "series", "time_ns", "value", "trace_id", "span_id")


@dataclass(slots=True)
class MetricRows:
    project_id: int
    n: int = 0
    series: dict[str, list[Any]] = field(default_factory=dict)
    points: dict[str, list[Any]] = field(default_factory=dict)
    rollups: dict[str, list[Any]] = field(default_factory=dict)
    exemplars: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.n


def metric_rows(write: MetricWrite) -> MetricRows:
    """The write's rows. The usual request (one point per series and minute) is turned
    into columns whole; repeats of a series or of its minute go through the general
    merge (``_merged_rows``), which gives the same rows."""
    pid = write.project_id
    pts = write.points
    n = len(pts)
    out = MetricRows(pid, n)
    keys = [p.key() for p in pts]
    times = [p.time_ns for p in pts]
    minutes = [t // NS_PER_MIN * 60 for t in times]
    values = [p.value for p in pts]
    has_buckets = [bool(p.bucket_counts) for p in pts]
    bounds = [list(p.bounds) if hb else None for p, hb in zip(pts, has_buckets, strict=True)]
    buckets = [
        list(p.bucket_counts) if hb else None for p, hb in zip(pts, has_buckets, strict=True)
    ]
    counts: list[Any] = []
    lows: list[Any] = []
    highs: list[Any] = []
    point_min: list[Any] = []
    point_max: list[Any] = []
    for p in pts:
        kind = p.kind
        if kind == "histogram":
            counts.append(p.count)
            lows.append(p.min)
            highs.append(p.max)
            point_min.append(p.min)
            point_max.append(p.max)
        elif kind == "summary":
            counts.append(p.count)
            lows.append(p.min)
            highs.append(p.max)
            point_min.append(None)
            point_max.append(None)
        else:
            counts.append(1)
            lows.append(p.value)
            highs.append(p.value)
            point_min.append(None)
            point_max.append(None)
    pids = [pid] * n
    out.points = {
        "project_id": pids,
        "time_ns": times,
        "series": keys,
        "value": values,
        "count": counts,
        "min": point_min,
        "max": point_max,
        "bounds": bounds,
        "buckets": buckets,
        "quantiles": [[[q, v] for q, v in p.quantiles] if p.quantiles else None for p in pts],
    }
    exemplars: dict[str, list[Any]] = {c: [] for c in EXEMPLAR_COLUMNS}
    for p, key in zip(pts, keys, strict=True):
        for e in p.exemplars:
            exemplars["project_id"].append(pid)
            exemplars["series"].append(key)
            exemplars["time_ns"].append(e.time_ns)
            exemplars["value"].append(e.value)
            exemplars["trace_id"].append(e.trace_id)
            exemplars["span_id"].append(e.span_id)
    out.exemplars = exemplars
    if len(set(keys)) != n:
        out.series, out.rollups = _merged_rows(pid, pts, keys, minutes, counts, lows, highs)
        return out
    # one point per series: each is its series' catalogue row and its minute's rollup
    out.series = {
        "project_id": pids,
        "series": keys,
        "name": [p.name for p in pts],
        "service": [p.service for p in pts],
        "kind": [p.kind for p in pts],
        "unit": [p.unit for p in pts],
        "description": [p.description for p in pts],
        "attributes": [p.attributes for p in pts],  # as text in ``SeenSeries.new_rows``
        "first_seen_s": minutes,
        "last_seen_s": minutes,
    }
    out.rollups = {
        "project_id": pids,
        "series": keys,
        "minute_s": minutes,
        "count": counts,
        "sum": values,
        "min": lows,
        "max": highs,
        "last": values,
        "last_ns": times,
        "bounds": bounds,
        "buckets": buckets,
    }
    return out


def _merged_rows(
    pid: int,
    pts: list[MetricPoint],
    keys: list[int],
    minutes: list[int],
    counts: list[Any],
    lows: list[Any],
    highs: list[Any],
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The catalogue and rollup rows of points with repeated series: per series, the
    first and last minute; per (series, minute, bounds), the points merged."""
    series: dict[int, list[Any]] = {}
    # (series, minute, bounds) -> [count, sum, min, max, last, last_ns, buckets]
    acc: dict[tuple[int, int, tuple[float, ...]], list[Any]] = {}
    for i, p in enumerate(pts):
        key = keys[i]
        minute = minutes[i]
        s = series.get(key)
        if s is None:
            series[key] = [
                pid,
                key,
                p.name,
                p.service,
                p.kind,
                p.unit,
                p.description,
                p.attributes,
                minute,
                minute,
            ]
        else:
            s[8] = min(s[8], minute)
            s[9] = max(s[9], minute)
        count, lo, hi = counts[i], lows[i], highs[i]
        bounds = p.bounds if p.bucket_counts else ()
        r = acc.get((key, minute, bounds))
        if r is None:
            acc[(key, minute, bounds)] = [
                count,
                p.value,
                lo,
                hi,
                p.value,
                p.time_ns,
                list(p.bucket_counts) if p.bucket_counts else None,
            ]
            continue
        r[0] += count
        r[1] += p.value
        if lo is not None:
            r[2] = lo if r[2] is None else min(r[2], lo)
        if hi is not None:
            r[3] = hi if r[3] is None else max(r[3], hi)
        if p.time_ns >= r[5]:
            r[4], r[5] = p.value, p.time_ns
        if r[6] is not None and len(r[6]) == len(p.bucket_counts):
            r[6] = [a + b for a, b in zip(r[6], p.bucket_counts, strict=True)]
    cat = {c: [row[i] for row in series.values()] for i, c in enumerate(SERIES_COLUMNS)}
    rollups: dict[str, list[Any]] = {c: [] for c in ROLLUP_COLUMNS}
    for (key, minute, bounds), (count, total, lo, hi, last, last_ns, buckets) in acc.items():
        for c, v in (
            ("project_id", pid),
            ("series", key),
            ("minute_s", minute),
            ("count", count),
            ("sum", total),
            ("min", lo),
            ("max", hi),
            ("last", last),
            ("last_ns", last_ns),
            ("bounds", list(bounds) if buckets is not None else None),
            ("buckets", buckets),
        ):
            rollups[c].append(v)
    return cat, rollups


class SeenSeries:
    """What a writer knows its catalogue holds: (project, series) → the last minute
    written. ``new_rows`` gives the catalogue rows of series new to it or seen in a later
    minute, so a steady stream rewrites each series' row once a minute, not per point.
    Writer thread only; ``clear()`` after a failed commit (it may hold rolled-back rows).
    """

    def __init__(self, cap: int = 1_000_000) -> None:
        self._seen: dict[tuple[int, int], int] = {}
        self._cap = cap  # bounded: a cardinality bomb costs catalogue writes, not memory

    def clear(self) -> None:
        self._seen.clear()

    def new_rows(self, batches: list[MetricRows]) -> dict[str, list[Any]]:
        seen = self._seen
        cols: dict[str, list[Any]] = {c: [] for c in SERIES_COLUMNS}
        for b in batches:
            s = b.series
            for i, key in enumerate(s["series"]):
                k = (b.project_id, key)
                last = s["last_seen_s"][i]
                known = seen.get(k)
                if known is not None and known >= last:
                    continue
                seen[k] = last if known is None else max(known, last)
                for c, values in cols.items():
                    values.append(s[c][i])
                # only rows written need their attributes as text
                attrs = cols["attributes"]
                attrs[-1] = canonical_attributes(attrs[-1])
        if len(seen) > self._cap:
            seen.clear()
        return cols
