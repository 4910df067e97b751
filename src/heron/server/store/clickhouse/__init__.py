"""The ClickHouse backend (issue 10, in progress): spans, rollups, trace and RED readers.

Not wired into ``heron serve`` yet; see docs/clickhouse.md for what works."""
