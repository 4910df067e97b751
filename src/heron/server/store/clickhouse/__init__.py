"""The ClickHouse backend: telemetry in ClickHouse (spans, rollups, database analysis,
error events, logs), state in PostgreSQL or a local file. ``[storage] backend =
"clickhouse"``; see docs/clickhouse.md and docs/scale-out.md."""
