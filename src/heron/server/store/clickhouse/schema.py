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
- ``error_events`` (migration 3): one row per error event, keyed ``(project_id,
  issue_id, time_ns)`` (every issue page reads one issue's events in a range), day
  partitions, a bloom filter on ``event_id`` (event by id, duplicate checks). Issues
  themselves are transactional state (``store/state.py``), not telemetry.
- ``rum_events``, ``rum_rollup_1m`` (migration 5): real-user monitoring's raw events
  (day partitions, keyed by project, kind and time; bloom filters on session, page view
  and trace ids) and its per-minute web-vitals rollup (a SummingMergeTree).
- ``logs`` (migration 3): keyed like ``spans`` by project, service, minute and time; a
  bloom filter on ``trace_id`` and an n-gram bloom filter on ``lowerUTF8(body)`` (the
  case-insensitive text search) skip granules; ``position`` (assigned by the writer,
  increasing in write order) orders records of the same nanosecond.

``{db}`` is the database (an identifier checked by :func:`database_name`); retention is
applied by :func:`apply_retention` with ``MODIFY TTL`` on every start.

On a cluster (``cluster=`` names one of the server's ``remote_servers``) the same
migrations are rewritten by :func:`on_cluster`: every table ``T`` becomes ``T_local``, a
``Replicated*MergeTree`` created ``ON CLUSTER``, plus ``T``, a ``Distributed`` table over
them that the readers and the writer use unchanged; materialized views read and write the
local tables. Spans are sharded by trace id (a trace stays on one shard), the rest at
random. Without a cluster nothing changes: plain MergeTree tables on one server, no
Keeper.
"""

from __future__ import annotations

import re
from typing import Any

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_NS_TO_S = "intDiv(start_ns, 1000000000)"
_EVENT_S = "intDiv(time_ns, 1000000000)"
_LOG_S = _EVENT_S
MAX_RETENTION_DAYS = 7300


def _metric_tier(table: str, period_s: int, partition: str) -> list[str]:
    """One metric rollup tier: its AggregatingMergeTree and the view that folds every
    insert into ``metric_rollup_in`` into rows of ``period_s`` (``minute_s`` is the
    period's start)."""
    return [
        f"""
            CREATE TABLE IF NOT EXISTS {{db}}.{table} (
                project_id UInt32,
                name LowCardinality(String),
                minute_s Int64 CODEC(Delta, ZSTD(1)),
                series Int64,
                bounds Array(Float64),
                count SimpleAggregateFunction(sum, UInt64),
                sum SimpleAggregateFunction(sum, Float64),
                min SimpleAggregateFunction(min, Float64),
                max SimpleAggregateFunction(max, Float64),
                last AggregateFunction(argMax, Float64, Int64),
                last_ns SimpleAggregateFunction(max, Int64),
                buckets AggregateFunction(sumForEach, Array(UInt64)),
                rows SimpleAggregateFunction(sum, UInt64)
            ) ENGINE = AggregatingMergeTree
            PARTITION BY {partition}
            ORDER BY (project_id, name, minute_s, series, bounds)
            """,
        f"""
            CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{table}_mv TO {{db}}.{table} AS
            SELECT project_id, name, intDiv(at_s, {period_s}) * {period_s} AS minute_s, series, bounds,
                   sum(v_count) AS count, sum(v_sum) AS sum, min(v_min) AS min,
                   max(v_max) AS max, argMaxState(v_last, v_last_ns) AS last,
                   max(v_last_ns) AS last_ns, sumForEachState(v_buckets) AS buckets,
                   count() AS rows
            FROM {{db}}.metric_rollup_in GROUP BY project_id, name, minute_s, series, bounds
            """,  # noqa: S608 - DDL from constants (table names and periods of this module)
    ]


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
    (
        3,
        [
            # Error events: read per issue (its events newest first, its series and
            # counts over a range) and per project and range (the issues list's figures,
            # filter choices); the issue is state (``StateStore``), only its id is here.
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.error_events (
                project_id UInt32,
                issue_id Int64,
                time_ns Int64 CODEC(Delta, ZSTD(1)),
                event_id String CODEC(ZSTD(1)),
                received_ns Int64 CODEC(ZSTD(1)),
                service LowCardinality(String),
                environment LowCardinality(String),
                release LowCardinality(String),
                level LowCardinality(String),
                platform LowCardinality(String),
                source LowCardinality(String),
                exc_type LowCardinality(Nullable(String)),
                message String CODEC(ZSTD(1)),
                culprit String CODEC(ZSTD(1)),
                transaction LowCardinality(Nullable(String)),
                trace_id Nullable(FixedString(16)) CODEC(ZSTD(1)),
                span_id UInt64 CODEC(ZSTD(1)),
                user_key Nullable(String) CODEC(ZSTD(1)),
                handled Nullable(Bool),
                logger LowCardinality(Nullable(String)),
                exceptions Nullable(String) CODEC(ZSTD(1)),
                breadcrumbs Nullable(String) CODEC(ZSTD(1)),
                request Nullable(String) CODEC(ZSTD(1)),
                user_data Nullable(String) CODEC(ZSTD(1)),
                tags Nullable(String) CODEC(ZSTD(1)),
                contexts Nullable(String) CODEC(ZSTD(1)),
                extra Nullable(String) CODEC(ZSTD(1)),
                sdk LowCardinality(String),
                INDEX event_id_bloom event_id TYPE bloom_filter(0.001) GRANULARITY 1
            ) ENGINE = MergeTree
            PARTITION BY toDate(toDateTime({_EVENT_S}))
            ORDER BY (project_id, issue_id, time_ns)
            SETTINGS ttl_only_drop_parts = 1
            """,
            # Logs: read per project and range, newest first, often per service; by
            # trace id (bloom filter) and by text (n-grams of the lowercased body).
            # ``position`` orders records of the same nanosecond (keyset pages).
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.logs (
                project_id UInt32,
                service LowCardinality(String),
                time_ns Int64 CODEC(Delta, ZSTD(1)),
                position UInt64 CODEC(ZSTD(1)),
                observed_ns Int64 CODEC(ZSTD(1)),
                trace_id Nullable(FixedString(16)) CODEC(ZSTD(1)),
                span_id UInt64 CODEC(ZSTD(1)),
                environment LowCardinality(String),
                release LowCardinality(String),
                severity_number UInt8,
                severity_text LowCardinality(String),
                logger LowCardinality(String),
                body String CODEC(ZSTD(1)),
                attributes Nullable(String) CODEC(ZSTD(1)),
                resource Nullable(String) CODEC(ZSTD(1)),
                event_id Nullable(String) CODEC(ZSTD(1)),
                INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
                INDEX body_ngrams lowerUTF8(body) TYPE ngrambf_v1(3, 32768, 2, 0) GRANULARITY 1
            ) ENGINE = MergeTree
            PARTITION BY toDate(toDateTime({_LOG_S}))
            ORDER BY (project_id, service, intDiv(time_ns, 60000000000), time_ns)
            SETTINGS ttl_only_drop_parts = 1
            """,
        ],
    ),
    (
        4,
        [
            # Metrics (see heron.server.model.metric and store/clickhouse/metrics.py).
            # The series catalogue: one row per series once merged (first/last minute
            # seen kept by min/max), ordered by metric name for the per-metric reads.
            """
            CREATE TABLE IF NOT EXISTS {db}.metric_series (
                project_id UInt32,
                name LowCardinality(String),
                series Int64,
                service SimpleAggregateFunction(any, String),
                kind SimpleAggregateFunction(anyLast, String),
                unit SimpleAggregateFunction(anyLast, String),
                description SimpleAggregateFunction(anyLast, String),
                attributes SimpleAggregateFunction(any, String),
                first_seen_s SimpleAggregateFunction(min, Int64),
                last_seen_s SimpleAggregateFunction(max, Int64)
            ) ENGINE = AggregatingMergeTree
            ORDER BY (project_id, name, series)
            """,
            # Raw points and exemplars: per series in time order, one partition a day.
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.metric_points (
                project_id UInt32,
                series Int64,
                time_ns Int64 CODEC(Delta, ZSTD(1)),
                value Float64 CODEC(Gorilla, ZSTD(1)),
                count UInt64 CODEC(T64, ZSTD(1)),
                min Nullable(Float64),
                max Nullable(Float64),
                bounds Array(Float64) CODEC(ZSTD(1)),
                buckets Array(UInt64) CODEC(ZSTD(1)),
                quantiles Array(Array(Float64)) CODEC(ZSTD(1))
            ) ENGINE = MergeTree
            PARTITION BY toDate(toDateTime({_EVENT_S}))
            ORDER BY (project_id, series, time_ns)
            SETTINGS ttl_only_drop_parts = 1
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.metric_exemplars (
                project_id UInt32,
                series Int64,
                time_ns Int64 CODEC(Delta, ZSTD(1)),
                value Float64,
                trace_id FixedString(16) CODEC(ZSTD(1)),
                span_id UInt64 CODEC(ZSTD(1))
            ) ENGINE = MergeTree
            PARTITION BY toDate(toDateTime({_EVENT_S}))
            ORDER BY (project_id, series, time_ns)
            SETTINGS ttl_only_drop_parts = 1
            """,
            # The writer's per-minute partial rollups go into a Null table; materialized
            # views aggregate every insert into the minute, 10-minute and hour tiers
            # (AggregatingMergeTree: background merges fold partial rows, readers always
            # merge), ordered by metric then time: a read takes one metric's series over
            # a range. Unknown min/max are +inf/-inf, non-histograms have empty arrays.
            """
            CREATE TABLE IF NOT EXISTS {db}.metric_rollup_in (
                project_id UInt32,
                name String,
                series Int64,
                at_s Int64,
                bounds Array(Float64),
                v_count UInt64,
                v_sum Float64,
                v_min Float64,
                v_max Float64,
                v_last Float64,
                v_last_ns Int64,
                v_buckets Array(UInt64)
            ) ENGINE = Null
            """,
            *_metric_tier("metric_rollup_1m", 60, "toDate(toDateTime(minute_s))"),
            *_metric_tier("metric_rollup_10m", 600, "toYYYYMM(toDateTime(minute_s))"),
            *_metric_tier("metric_rollup_1h", 3600, "toYYYYMM(toDateTime(minute_s))"),
        ],
    ),
    (
        5,
        [
            # Real-user monitoring (store/clickhouse/rum.py): one row per thing a page
            # reported, columns of ``model.rum.RUM_FIELDS``. Reads name a project, a time
            # range and mostly one kind (the slowest resources, the errors…), so the key
            # is (project, kind, minute, time); a session's, a page view's and a trace's
            # events are found through bloom filters. Day partitions: retention drops
            # whole parts.
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.rum_events (
                project_id UInt32,
                time_ns Int64 CODEC(Delta, ZSTD(1)),
                kind LowCardinality(String),
                session_id String CODEC(ZSTD(1)),
                view_id String CODEC(ZSTD(1)),
                page LowCardinality(String),
                url String CODEC(ZSTD(1)),
                name String CODEC(ZSTD(1)),
                value Float64 CODEC(ZSTD(1)),
                rating LowCardinality(String),
                target String CODEC(ZSTD(1)),
                browser LowCardinality(String),
                browser_version LowCardinality(String),
                os LowCardinality(String),
                device LowCardinality(String),
                app LowCardinality(String),
                release LowCardinality(String),
                environment LowCardinality(String),
                user_id String CODEC(ZSTD(1)),
                trace_id Nullable(FixedString(16)) CODEC(ZSTD(1)),
                span_id UInt64 CODEC(ZSTD(1)),
                attributes Nullable(String) CODEC(ZSTD(1)),
                INDEX session_bloom session_id TYPE bloom_filter(0.001) GRANULARITY 1,
                INDEX view_bloom view_id TYPE bloom_filter(0.001) GRANULARITY 1,
                INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1
            ) ENGINE = MergeTree
            PARTITION BY toDate(toDateTime({_EVENT_S}))
            ORDER BY (project_id, kind, intDiv(time_ns, 60000000000), time_ns)
            SETTINGS ttl_only_drop_parts = 1
            """,
            # The per-minute web-vitals rollup (``model.rum.RUM_ROLLUP_KEY``): background
            # merges add partial rows of a key up, readers always ``sum``.
            """
            CREATE TABLE IF NOT EXISTS {db}.rum_rollup_1m (
                project_id UInt32,
                minute_s Int64 CODEC(Delta, ZSTD(1)),
                app LowCardinality(String),
                environment LowCardinality(String),
                page LowCardinality(String),
                browser LowCardinality(String),
                device LowCardinality(String),
                metric LowCardinality(String),
                rating LowCardinality(String),
                bucket UInt16,
                count UInt64 CODEC(T64, ZSTD(1))
            ) ENGINE = SummingMergeTree((count))
            PARTITION BY toYYYYMM(toDateTime(minute_s))
            ORDER BY (project_id, metric, minute_s, page, browser, device, app, environment,
                      rating, bucket)
            """,
            # Its hourly tier, filled by two materialized views on every insert: per page
            # (all_pages = 0) and summed over pages (all_pages = 1, page ''). Reads over
            # whole hours that need no browser or device take it.
            """
            CREATE TABLE IF NOT EXISTS {db}.rum_rollup_1h (
                project_id UInt32,
                all_pages UInt8,
                metric LowCardinality(String),
                hour_s Int64 CODEC(Delta, ZSTD(1)),
                app LowCardinality(String),
                environment LowCardinality(String),
                page LowCardinality(String),
                rating LowCardinality(String),
                bucket UInt16,
                count UInt64 CODEC(T64, ZSTD(1))
            ) ENGINE = SummingMergeTree((count))
            PARTITION BY toYYYYMM(toDateTime(hour_s))
            ORDER BY (project_id, all_pages, metric, hour_s, app, environment, page, rating,
                      bucket)
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rum_rollup_1h_pages_mv TO {db}.rum_rollup_1h AS
            SELECT project_id, toUInt8(0) AS all_pages, metric,
                   intDiv(minute_s, 3600) * 3600 AS hour_s, app, environment, page, rating,
                   bucket, sum(count) AS count
            FROM {db}.rum_rollup_1m
            GROUP BY project_id, metric, hour_s, app, environment, page, rating, bucket
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rum_rollup_1h_all_mv TO {db}.rum_rollup_1h AS
            SELECT project_id, toUInt8(1) AS all_pages, metric,
                   intDiv(minute_s, 3600) * 3600 AS hour_s, app, environment, '' AS page,
                   rating, bucket, sum(count) AS count
            FROM {db}.rum_rollup_1m
            GROUP BY project_id, metric, hour_s, app, environment, rating, bucket
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
    "error_events": (_EVENT_S, "spans"),
    "logs": (_LOG_S, "spans"),
    "metric_series": ("last_seen_s", "rollups"),
    "metric_points": (_EVENT_S, "spans"),
    "metric_exemplars": (_EVENT_S, "spans"),
    "metric_rollup_1m": ("minute_s", "rollups"),
    "metric_rollup_10m": ("minute_s", "rollups"),
    "metric_rollup_1h": ("minute_s", "rollups"),
    "rum_events": (_EVENT_S, "spans"),
    "rum_rollup_1m": ("minute_s", "rollups"),
    "rum_rollup_1h": ("hour_s", "rollups"),
}


def database_name(name: str) -> str:
    """``name`` if it is a plain identifier (it is spliced into DDL), else ValueError."""
    if not _IDENT.match(name):
        raise ValueError(f"invalid ClickHouse database name {name!r}")
    return name


def migrate(client: Any, db: str, *, cluster: str | None = None) -> int:
    """Create the database and apply the migrations it lacks; return the version.

    With ``cluster``, every statement runs ``ON CLUSTER`` in its replicated form
    (:func:`on_cluster`); without, the statements run as written.
    """
    db = database_name(db)
    on = f" ON CLUSTER {database_name(cluster)}" if cluster else ""
    # One version table for the whole cluster (no {shard} in its Keeper path).
    engine = (
        f"ReplicatedMergeTree('/clickhouse/tables/heron/{db}/schema_version', '{{replica}}')"
        if cluster
        else "MergeTree"
    )
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}{on}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_version{on} "
        f"(version UInt32, applied_at DateTime DEFAULT now()) ENGINE = {engine} ORDER BY version"
    )
    rows = client.query(f"SELECT max(version) FROM {db}.schema_version").result_rows  # noqa: S608 - checked identifier
    current = int(rows[0][0] or 0) if rows else 0
    for version, statements in MIGRATIONS:
        if version <= current:
            continue
        for statement in on_cluster(statements, cluster) if cluster else statements:
            client.command(statement.replace("{db}", db))
        client.insert(f"{db}.schema_version", [[version]], column_names=["version"])
        current = version
    return current


# Sharding key of a table's Distributed engine; a table not named here is sharded at random.
SHARD_KEYS = {"spans": "cityHash64(trace_id)", "trace_times": "cityHash64(trace_id)"}
_CREATE_TABLE = re.compile(r"^\s*CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s", re.S)
_CREATE_VIEW = re.compile(
    r"^\s*CREATE MATERIALIZED VIEW IF NOT EXISTS \{db\}\.(\w+) TO \{db\}\.(\w+) AS\s", re.S
)
_ALTER = re.compile(r"^\s*ALTER TABLE \{db\}\.(\w+)\s+(.*)$", re.S)
_COLUMN_CHANGE = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b", re.I)
_ENGINE = re.compile(r"ENGINE = (\w*MergeTree)")


def on_cluster(statements: list[str], cluster: str) -> list[str]:
    """The migration ``statements`` for a cluster: ``ON CLUSTER``, Replicated local tables
    ``T_local`` and a Distributed ``T`` over them, views on the local tables.

    Handles the statement forms migrations use (``CREATE TABLE IF NOT EXISTS``,
    ``CREATE MATERIALIZED VIEW IF NOT EXISTS … TO …``, ``ALTER TABLE``); any other raises
    ValueError, so a migration that cannot run on a cluster fails loudly.
    """
    cluster = database_name(cluster)
    every = [*statements, *(st for _, sts in MIGRATIONS for st in sts)]
    tables = {m.group(1) for st in every if (m := _CREATE_TABLE.match(st))}
    out: list[str] = []
    for statement in statements:
        out += _clustered(statement, cluster, tables)
    return out


def _clustered(statement: str, cluster: str, tables: set[str]) -> list[str]:
    on = f" ON CLUSTER {cluster}"
    if m := _CREATE_TABLE.match(statement):
        name = m.group(1)
        local = f"CREATE TABLE IF NOT EXISTS {{db}}.{name}_local{on} " + statement[m.end() :]
        shard_key = SHARD_KEYS.get(name, "rand()")
        return [
            _replicated(local, f"{name}_local"),
            f"CREATE TABLE IF NOT EXISTS {{db}}.{name}{on} AS {{db}}.{name}_local "
            f"ENGINE = Distributed({cluster}, {{db}}, {name}_local, {shard_key})",
        ]
    if m := _CREATE_VIEW.match(statement):
        body = statement[m.end() :]
        for table in tables:
            body = re.sub(rf"\{{db\}}\.{table}\b", f"{{db}}.{table}_local", body)
        view, target = m.group(1), m.group(2)
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{view}{on} "
            f"TO {{db}}.{target}_local AS {body}"
        ]
    if m := _ALTER.match(statement):
        name, change = m.group(1), m.group(2)
        local = f"ALTER TABLE {{db}}.{name}_local{on} {change}"
        if _COLUMN_CHANGE.match(change.strip()):  # the Distributed table has the columns too
            return [local, f"ALTER TABLE {{db}}.{name}{on} {change}"]
        return [local]
    raise ValueError(f"cannot run this migration statement on a cluster: {statement.strip()[:80]}")


def _replicated(statement: str, table: str) -> str:
    """``ENGINE = XMergeTree(args)`` as ``ReplicatedXMergeTree(path, replica, args)``."""
    m = _ENGINE.search(statement)
    if m is None and re.search(r"ENGINE = Null\b", statement):
        return statement  # stores nothing: its views write to replicated tables
    if m is None:
        raise ValueError(f"not a MergeTree table: {table}")
    args, end = "", m.end()
    if statement[end : end + 1] == "(":
        close = _closing_paren(statement, end)
        args, end = statement[end + 1 : close], close + 1
    path = f"'/clickhouse/tables/{{shard}}/{{db}}/{table}', '{{replica}}'"
    params = f"{path}, {args}" if args.strip() else path
    return f"{statement[: m.start()]}ENGINE = Replicated{m.group(1)}({params}){statement[end:]}"


def _closing_paren(text: str, start: int) -> int:
    """Index of the parenthesis closing the one at ``text[start]``."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses in {text[start : start + 40]!r}")


def apply_retention(
    client: Any,
    db: str,
    *,
    retention_days: int,
    rollup_retention_days: int,
    cluster: str | None = None,
) -> None:
    """Set each table's TTL from the retention settings (cheap: parts are dropped whole
    when they expire, existing parts are not rewritten)."""
    db = database_name(db)
    days = {"spans": int(retention_days), "rollups": int(rollup_retention_days)}
    if not all(1 <= d <= MAX_RETENTION_DAYS for d in days.values()):
        # A TTL is a DateTime, which ends in 2106: a longer one would wrap to the past.
        raise ValueError(f"retention must be 1 to {MAX_RETENTION_DAYS} days (got {days})")
    # On a cluster the TTL belongs to the local (Replicated) tables, on every node.
    where = f"_local ON CLUSTER {database_name(cluster)}" if cluster else ""
    for table, (seconds, kind) in _TTL.items():
        client.command(
            f"ALTER TABLE {db}.{table}{where} "
            f"MODIFY TTL toDateTime({seconds}) + INTERVAL {days[kind]} DAY",
            settings={"materialize_ttl_after_modify": 0},
        )
