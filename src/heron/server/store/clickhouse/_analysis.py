"""The analysis job's writes on ClickHouse: replacing a window of query statistics and
repeat groups, naming fingerprints, and dropping unused names (upkeep).

How a run of the analysis job replaces its window (``ClickHouseDb.replace_analysis``):
``db_rollup_1m`` and ``n_plus_one`` are ReplacingMergeTrees whose sorting key is a
row's identity, with a ``version`` (one per run, increasing) and an ``is_deleted``
flag. A run reads the keys the window holds now (``FINAL``), then writes in **one
INSERT** its own rows and a tombstone (``is_deleted = 1``) for every key it no longer
has (an endpoint found late turns ``''`` into ``GET /x``: a new key, the old one
deleted). Every read uses ``FINAL``, which keeps each key's newest version and drops
tombstones, so a reader sees, for every key, the old run's row or the new run's —
never both: no window is counted twice. Chosen over lightweight ``DELETE`` + INSERT
because that is a mutation every ten seconds (ClickHouse advises against frequent
mutations) and leaves the window empty between the two statements. Merges collapse
the old versions in the background.

Everything runs on the writer's client (``writes``: its lock is shared with the span
writer, so no clickhouse-connect client is used by two threads at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from heron.server.analyze.n_plus_one import RepeatGroup
from heron.server.store.clickhouse._client import ChReads

# The rows the analysis job replaces: identity (the tables' sorting key) and values, in
# the tables' column order, and a tombstone's values.
_ROLLUP_KEY = (
    "project_id",
    "minute_s",
    "service",
    "environment",
    "endpoint",
    "db_system",
    "fingerprint",
    "bucket",
)
_ROLLUP_VALUES = ("count", "errors", "sum_ns", "max_ns", "rows_sum", "rows_count")
_ROLLUP_GONE = (0, 0, 0, 0, 0, 0)
_REPEAT_KEY = (
    "project_id",
    "start_ns",
    "trace_id",
    "parent_id",
    "service",
    "endpoint",
    "kind",
    "fingerprint",
)
_REPEAT_VALUES = (
    "environment",
    "db_system",
    "display",
    "count",
    "total_ns",
    "max_ns",
    "example_span_id",
)
_REPEAT_GONE = ("", None, "", 0, 0, 0, 0)
_FINGERPRINT_COLUMNS = ("fingerprint", "db_system", "display", "first_seen_ns")


def _key(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row's identity as Python values that compare equal across drivers' types."""
    return tuple(bytes(v) if isinstance(v, bytearray | memoryview) else v for v in row)


def read_names(conn: ChReads, fingerprints: Sequence[int]) -> dict[int, tuple[str, str]]:
    """``fingerprint -> (db_system, display)`` of the named ones among them."""
    if not fingerprints:
        return {}
    # A name written twice (two servers naming one fingerprint) reads as the first.
    rows = conn.rows(
        "SELECT fingerprint, argMin(db_system, first_seen_ns), argMin(display, first_seen_ns) "
        "FROM {db}.sql_fingerprints WHERE fingerprint IN {fps:Array(UInt64)} "
        "GROUP BY fingerprint",
        {"fps": list(fingerprints)},
    )
    return {fp: (system, display) for fp, system, display in rows}


class AnalysisWriter:
    """Replaces the analysis job's windows and prunes fingerprint names, on ``writes``."""

    def __init__(self, writes: ChReads) -> None:
        self.writes = writes
        self._replacing = threading.Lock()  # one analysis write at a time

    def replace(
        self,
        lo_s: int,
        rollup: pa.Table,
        fingerprints: Sequence[tuple[int, str, str, int]],
        lo_ns: int,
        groups: Sequence[RepeatGroup],
    ) -> None:
        """The query statistics of minutes from ``lo_s`` on become ``rollup``, new
        fingerprints are named, and the repeat groups starting at or after ``lo_ns``
        become exactly ``groups``. Names go first, so no statistic is shown without its
        name.

        Three INSERTs, not one transaction: if one fails, the job's next run (seconds
        later) writes the window again."""
        with self._replacing:
            self._add_fingerprints(fingerprints)
            names = rollup.column_names
            rows = zip(*(rollup.column(n).to_pylist() for n in names), strict=True)
            by_name = [dict(zip(names, r, strict=True)) for r in rows]
            self._window(
                "db_rollup_1m",
                _ROLLUP_KEY,
                _ROLLUP_VALUES,
                _ROLLUP_GONE,
                ("minute_s >= {lo:Int64}", {"lo": lo_s}),
                [tuple(r[c] for c in (*_ROLLUP_KEY, *_ROLLUP_VALUES)) for r in by_name],
            )
            self._window(
                "n_plus_one",
                _REPEAT_KEY,
                _REPEAT_VALUES,
                _REPEAT_GONE,
                ("start_ns >= {lo:Int64}", {"lo": lo_ns}),
                [tuple(getattr(g, c) for c in (*_REPEAT_KEY, *_REPEAT_VALUES)) for g in groups],
            )

    def _add_fingerprints(self, rows: Sequence[tuple[int, str, str, int]]) -> None:
        """Name new fingerprints (a fingerprint already named keeps its name)."""
        named = read_names(self.writes, [r[0] for r in rows])
        new = [r for r in rows if r[0] not in named]
        if new:
            self.writes.insert(
                "sql_fingerprints", [list(c) for c in zip(*new, strict=True)], _FINGERPRINT_COLUMNS
            )

    def _window(
        self,
        table: str,
        key: Sequence[str],
        values: Sequence[str],
        gone: Sequence[Any],
        window: tuple[str, dict[str, Any]],
        rows: list[tuple[Any, ...]],
    ) -> None:
        """The rows of ``table`` in ``window`` become exactly ``rows`` (key, then values):
        one INSERT of them and of a tombstone for each key they no longer hold, under a
        version above every version the window has."""
        where, params = window
        held = self.writes.rows(
            f"SELECT {', '.join(key)} FROM {{db}}.{table} FINAL WHERE {where}",  # noqa: S608 - constants only
            params,
        )
        ((last,),) = self.writes.rows(
            f"SELECT max(version) FROM {{db}}.{table} WHERE {where}",  # noqa: S608 - constants only
            params,
        )
        version = max(time.time_ns(), int(last or 0) + 1)
        fresh = {_key(r[: len(key)]) for r in rows}
        stale = [(*k, *gone) for k in map(_key, held) if k not in fresh]
        out = [(*r, version, 0) for r in rows] + [(*r, version, 1) for r in stale]
        if out:
            columns = [list(c) for c in zip(*out, strict=True)]
            self.writes.insert(table, columns, (*key, *values, "version", "is_deleted"))

    def prune_fingerprints(self, first_seen_before_ns: int) -> int:
        """Drop the names of fingerprints no query statistic uses any more that were first
        seen before ``first_seen_before_ns`` (as DuckDB's upkeep); returns how many.

        A lightweight DELETE (a mutation), only when there is something to drop. Rows
        not yet merged away may keep a name a little longer (a key whose newest row is a
        tombstone still has its older live row until a merge), never drop one in use."""
        rows = self.writes.rows(
            "SELECT DISTINCT fingerprint FROM {db}.sql_fingerprints "
            "WHERE first_seen_ns < {before:Int64} "
            "AND fingerprint NOT IN (SELECT fingerprint FROM {db}.db_rollup_1m WHERE is_deleted = 0)",
            {"before": first_seen_before_ns},
        )
        if rows:
            self.writes.command(
                "DELETE FROM {db}.sql_fingerprints WHERE fingerprint IN {fps:Array(UInt64)}",
                {"fps": [fp for (fp,) in rows]},
            )
        return len(rows)
