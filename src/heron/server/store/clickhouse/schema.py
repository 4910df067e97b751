"""ClickHouse schema: numbered, idempotent migrations (see docs/clickhouse.md).

- ``spans``: MergeTree, one partition per day of ``start_ns`` (retention drops whole
  parts), ``ORDER BY (project_id, service, minute, start_ns)``: every read names a project
  and a time range, most a service, so the primary key skips granules by all three;
  within a minute rows sort by time, which keeps ``start_ns`` deltas tiny. Ids and JSON
  text are ZSTD-compressed, times Delta+ZSTD, low-cardinality strings dictionary-coded.
- ``trace_times``: trace id → (first start, last end) per project, kept by a materialized
  view on ``spans``: trace-by-id reads one small sorted table, then only the day
  partitions and granules of that time range (a bloom filter on ``spans.trace_id``
  skips the rest).
- ``rollup_1m``: the per-minute entry-span rollups Heron computes at ingest, in a
  SummingMergeTree keyed like ``model.rollup.ROLLUP_KEY``; background merges add partial
  rows up, readers always ``sum``.
- ``db_rollup_1m``, ``n_plus_one``, ``sql_fingerprints`` (version 2): what the analysis
  job persists — per-minute query statistics, repeat groups, fingerprint names (see
  ``store/clickhouse/db.py`` for how a run replaces its window without double counts).

``{db}`` is the database (an identifier checked by :func:`database_name`); retention is
applied by :func:`apply_retention` with ``MODIFY TTL`` on every start.
"""

from __future__ import annotations

import re
from typing import Any

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_NS_TO_S = "intDiv(start_ns, 1000000000)"
MAX_RETENTION_DAYS = 7300

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.spans (
                project_id UInt32,
                start_ns Int64 CODEC(Delta, ZSTD(1)),
                trace_id FixedString(16) CODEC(ZSTD(1)),
                span_id UInt64 CODEC(ZSTD(1)),
                parent_id UInt64 CODEC(ZSTD(1)),
                service LowCardinality(String),
                environment LowCardinality(String),
                release LowCardinality(String),
                name LowCardinality(String),
                kind UInt8,
                duration_ns Int64 CODEC(T64, ZSTD(1)),
                status UInt8,
                status_message Nullable(String) CODEC(ZSTD(1)),
                http_method LowCardinality(Nullable(String)),
                http_route LowCardinality(Nullable(String)),
                http_status Nullable(UInt16),
                db_system LowCardinality(Nullable(String)),
                db_statement Nullable(String) CODEC(ZSTD(1)),
                attributes Nullable(String) CODEC(ZSTD(1)),
                resource Nullable(String) CODEC(ZSTD(1)),
                events Nullable(String) CODEC(ZSTD(1)),
                links Nullable(String) CODEC(ZSTD(1)),
                scope LowCardinality(Nullable(String)),
                db_fingerprint Nullable(UInt64) CODEC(ZSTD(1)),
                INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
                INDEX duration_minmax duration_ns TYPE minmax GRANULARITY 1
            ) ENGINE = MergeTree
            PARTITION BY toDate(toDateTime({_NS_TO_S}))
            ORDER BY (project_id, service, intDiv(start_ns, 60000000000), start_ns)
            SETTINGS ttl_only_drop_parts = 1
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.trace_times (
                project_id UInt32,
                trace_id FixedString(16) CODEC(ZSTD(1)),
                first_ns SimpleAggregateFunction(min, Int64) CODEC(ZSTD(1)),
                last_ns SimpleAggregateFunction(max, Int64) CODEC(ZSTD(1))
            ) ENGINE = AggregatingMergeTree
            PARTITION BY toDate(toDateTime(intDiv(first_ns, 1000000000)))
            ORDER BY (project_id, trace_id)
            SETTINGS ttl_only_drop_parts = 1
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.trace_times_mv TO {db}.trace_times AS
            SELECT project_id, trace_id, min(start_ns) AS first_ns,
                   max(start_ns + duration_ns) AS last_ns
            FROM {db}.spans GROUP BY project_id, trace_id
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.rollup_1m (
                project_id UInt32,
                minute_s Int64 CODEC(Delta, ZSTD(1)),
                service LowCardinality(String),
                environment LowCardinality(String),
                release LowCardinality(String),
                endpoint LowCardinality(String),
                bucket UInt16,
                count UInt64 CODEC(T64, ZSTD(1)),
                errors UInt64 CODEC(T64, ZSTD(1)),
                sum_ns Int64 CODEC(ZSTD(1))
            ) ENGINE = SummingMergeTree((count, errors, sum_ns))
            PARTITION BY toYYYYMM(toDateTime(minute_s))
            ORDER BY (project_id, service, endpoint, environment, release, minute_s, bucket)
            """,
        ],
    ),
    (
        2,
        # Database monitoring, written by the analysis job (store/clickhouse/db.py): each
        # run replaces a recent window. Both window tables are ReplacingMergeTrees whose
        # sorting key is a row's identity, with a run ``version`` and an ``is_deleted``
        # flag: a run inserts its rows and a tombstone for every row of the window it no
        # longer has, in one INSERT, and readers use FINAL — never two runs' rows at once.
        [
            """
            CREATE TABLE IF NOT EXISTS {db}.db_rollup_1m (
                project_id UInt32,
                minute_s Int64 CODEC(Delta, ZSTD(1)),
                service LowCardinality(String),
                environment LowCardinality(String),
                endpoint LowCardinality(String),
                db_system LowCardinality(String),
                fingerprint UInt64 CODEC(ZSTD(1)),
                bucket UInt16,
                count UInt64 CODEC(T64, ZSTD(1)),
                errors UInt64 CODEC(T64, ZSTD(1)),
                sum_ns Int64 CODEC(ZSTD(1)),
                max_ns Int64 CODEC(T64, ZSTD(1)),
                rows_sum Int64 CODEC(T64, ZSTD(1)),
                rows_count UInt64 CODEC(T64, ZSTD(1)),
                version UInt64 CODEC(Delta, ZSTD(1)),
                is_deleted UInt8
            ) ENGINE = ReplacingMergeTree(version, is_deleted)
            PARTITION BY toYYYYMM(toDateTime(minute_s))
            ORDER BY (project_id, intDiv(minute_s, 3600), service, fingerprint, minute_s,
                      endpoint, environment, db_system, bucket)
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.n_plus_one (
                project_id UInt32,
                start_ns Int64 CODEC(Delta, ZSTD(1)),
                trace_id FixedString(16) CODEC(ZSTD(1)),
                parent_id UInt64 CODEC(ZSTD(1)),
                service LowCardinality(String),
                environment LowCardinality(String),
                endpoint LowCardinality(String),
                kind LowCardinality(String),
                fingerprint UInt64 CODEC(ZSTD(1)),
                db_system LowCardinality(Nullable(String)),
                display String CODEC(ZSTD(1)),
                count UInt32 CODEC(T64, ZSTD(1)),
                total_ns Int64 CODEC(T64, ZSTD(1)),
                max_ns Int64 CODEC(T64, ZSTD(1)),
                example_span_id UInt64 CODEC(ZSTD(1)),
                version UInt64 CODEC(Delta, ZSTD(1)),
                is_deleted UInt8
            ) ENGINE = ReplacingMergeTree(version, is_deleted)
            PARTITION BY toDate(toDateTime(intDiv(start_ns, 1000000000)))
            ORDER BY (project_id, intDiv(start_ns, 3600000000000), service, endpoint, kind,
                      fingerprint, trace_id, parent_id, start_ns)
            SETTINGS ttl_only_drop_parts = 1
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.sql_fingerprints (
                fingerprint UInt64,
                db_system LowCardinality(String),
                display String CODEC(ZSTD(1)),
                first_seen_ns Int64
            ) ENGINE = ReplacingMergeTree
            ORDER BY fingerprint
            """,
        ],
    ),
]

# Table → (time expression in seconds, which retention applies). ``sql_fingerprints``
# has none: upkeep drops the names no rollup uses any more (as on DuckDB).
_TTL: dict[str, tuple[str, str]] = {
    "spans": (_NS_TO_S, "spans"),
    "trace_times": ("intDiv(last_ns, 1000000000)", "spans"),
    "rollup_1m": ("minute_s", "rollups"),
    "db_rollup_1m": ("minute_s", "rollups"),
    "n_plus_one": (_NS_TO_S, "spans"),
}


def database_name(name: str) -> str:
    """``name`` if it is a plain identifier (it is spliced into DDL), else ValueError."""
    if not _IDENT.match(name):
        raise ValueError(f"invalid ClickHouse database name {name!r}")
    return name


def migrate(client: Any, db: str) -> int:
    """Create the database and apply the migrations it lacks; return the version."""
    db = database_name(db)
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_version "
        "(version UInt32, applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version"
    )
    rows = client.query(f"SELECT max(version) FROM {db}.schema_version").result_rows  # noqa: S608 - checked identifier
    current = int(rows[0][0] or 0) if rows else 0
    for version, statements in MIGRATIONS:
        if version <= current:
            continue
        for statement in statements:
            client.command(statement.replace("{db}", db))
        client.insert(f"{db}.schema_version", [[version]], column_names=["version"])
        current = version
    return current


def apply_retention(
    client: Any, db: str, *, retention_days: int, rollup_retention_days: int
) -> None:
    """Set each table's TTL from the retention settings (cheap: parts are dropped whole
    when they expire, existing parts are not rewritten)."""
    db = database_name(db)
    days = {"spans": int(retention_days), "rollups": int(rollup_retention_days)}
    if not all(1 <= d <= MAX_RETENTION_DAYS for d in days.values()):
        # A TTL is a DateTime, which ends in 2106: a longer one would wrap to the past.
        raise ValueError(f"retention must be 1 to {MAX_RETENTION_DAYS} days (got {days})")
    for table, (seconds, kind) in _TTL.items():
        client.command(
            f"ALTER TABLE {db}.{table} MODIFY TTL toDateTime({seconds}) + INTERVAL {days[kind]} DAY",
            settings={"materialize_ttl_after_modify": 0},
        )
