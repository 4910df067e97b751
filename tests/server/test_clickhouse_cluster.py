"""``cluster = "name"``: the ClickHouse migrations ON CLUSTER, Replicated + Distributed.

No cluster (nor Keeper) exists here, so the tests read the DDL ``migrate`` sends, and a
real ClickHouse (chdb) parses every statement (``formatQuery``); without a cluster the
statements are exactly the migrations as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server.store.clickhouse import schema
from heron.server.store.clickhouse.store import ClickHouseStore
from tests.server.backends import open_store


class _Result:
    result_rows = [(0,)]


class RecordingClient:
    """Takes the migration's commands and answers "version 0" to its one query."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.inserted: list[tuple[str, Any]] = []

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> None:
        self.commands.append(" ".join(sql.split()))

    def query(self, sql: str) -> _Result:
        return _Result()

    def insert(self, table: str, rows: Any, column_names: list[str]) -> None:
        self.inserted.append((table, rows))


def _ddl(cluster: str | None) -> list[str]:
    client = RecordingClient()
    assert schema.migrate(client, "heron", cluster=cluster) == schema.MIGRATIONS[-1][0]
    schema.apply_retention(
        client, "heron", retention_days=7, rollup_retention_days=30, cluster=cluster
    )
    assert client.inserted[-1] == ("heron.schema_version", [[schema.MIGRATIONS[-1][0]]])
    return client.commands


@pytest.fixture(scope="module")
def ch_store(tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path) -> Iterator[ClickHouseStore]:
    store = open_store("clickhouse", tmp_path_factory.mktemp("cluster"), chdb_dir)
    assert isinstance(store, ClickHouseStore)
    yield store
    store.close()


def test_without_a_cluster_the_migrations_run_as_written() -> None:
    ddl = _ddl(None)
    written = [
        " ".join(st.replace("{db}", "heron").split()) for _, sts in schema.MIGRATIONS for st in sts
    ]
    assert ddl[:2] == [
        "CREATE DATABASE IF NOT EXISTS heron",
        "CREATE TABLE IF NOT EXISTS heron.schema_version (version UInt32, applied_at DateTime "
        "DEFAULT now()) ENGINE = MergeTree ORDER BY version",
    ]
    assert ddl[2 : 2 + len(written)] == written
    assert [d.split(" MODIFY")[0] for d in ddl[2 + len(written) :]] == [
        f"ALTER TABLE heron.{table}" for table in schema._TTL
    ]
    text = "\n".join(ddl)
    for cluster_word in ("ON CLUSTER", "Replicated", "Distributed", "_local", "{shard}"):
        assert cluster_word not in text


def test_on_a_cluster_local_replicated_tables_and_distributed_ones() -> None:
    ddl = _ddl("prod")
    assert all(" ON CLUSTER prod" in d for d in ddl), [d for d in ddl if "ON CLUSTER" not in d]
    assert ddl[0] == "CREATE DATABASE IF NOT EXISTS heron ON CLUSTER prod"
    # one version table for the whole cluster: no {shard} in its Keeper path
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/heron/heron/schema_version', " in (ddl[1])
    )
    engines = {
        "spans": "ReplicatedMergeTree('/clickhouse/tables/{shard}/heron/spans_local', '{replica}')",
        "trace_times": "ReplicatedAggregatingMergeTree("
        "'/clickhouse/tables/{shard}/heron/trace_times_local', '{replica}')",
        "rollup_1m": "ReplicatedSummingMergeTree("
        "'/clickhouse/tables/{shard}/heron/rollup_1m_local', '{replica}', (count, errors, sum_ns))",
    }
    shard_keys = {
        "spans": "cityHash64(trace_id)",
        "trace_times": "cityHash64(trace_id)",
        "rollup_1m": "rand()",
    }
    for table, engine in engines.items():
        local = next(
            d for d in ddl if d.startswith(f"CREATE TABLE IF NOT EXISTS heron.{table}_local")
        )
        assert f"ENGINE = {engine}" in local
        distributed = (
            f"CREATE TABLE IF NOT EXISTS heron.{table} ON CLUSTER prod AS heron.{table}_local "
            f"ENGINE = Distributed(prod, heron, {table}_local, {shard_keys[table]})"
        )
        assert distributed in ddl
        # retention on the local tables, on every node
        assert any(
            d.startswith(f"ALTER TABLE heron.{table}_local ON CLUSTER prod MODIFY TTL") for d in ddl
        )
    view = next(d for d in ddl if "MATERIALIZED VIEW" in d)
    assert view.startswith(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS heron.trace_times_mv ON CLUSTER prod "
        "TO heron.trace_times_local AS SELECT"
    )
    assert view.endswith("FROM heron.spans_local GROUP BY project_id, trace_id")
    # the columns, codecs, partitioning and order of a table are those of the single server
    single = next(d for d in _ddl(None) if d.startswith("CREATE TABLE IF NOT EXISTS heron.spans"))
    local = next(d for d in ddl if d.startswith("CREATE TABLE IF NOT EXISTS heron.spans_local"))
    assert re.sub(
        r"ENGINE = Replicated\w+\([^)]*\)", "", local.split(" ON CLUSTER prod ")[1]
    ) == re.sub(r"ENGINE = MergeTree", "", single.split("heron.spans ")[1])


def test_clickhouse_parses_every_cluster_statement(ch_store: ClickHouseStore) -> None:
    for statement in _ddl("prod"):
        formatted = ch_store._reads.rows("SELECT formatQuery({q:String})", {"q": statement})
        assert "ON CLUSTER prod" in formatted[0][0]


def test_later_migrations_are_rewritten_too() -> None:
    statements = [
        "CREATE TABLE IF NOT EXISTS {db}.events (id UInt64, trace_id FixedString(16)) "
        "ENGINE = ReplacingMergeTree(id) ORDER BY id",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_mv TO {db}.trace_times AS "
        "SELECT 1 AS project_id FROM {db}.events JOIN {db}.spans USING (trace_id)",
        "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS kind2 UInt8",
        "ALTER TABLE {db}.spans ADD INDEX IF NOT EXISTS name_bf name TYPE bloom_filter",
    ]
    out = schema.on_cluster(statements, "c1")
    assert out == [
        "CREATE TABLE IF NOT EXISTS {db}.events_local ON CLUSTER c1 (id UInt64, trace_id "
        "FixedString(16)) ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/{db}/events_local', '{replica}', id) ORDER BY id",
        "CREATE TABLE IF NOT EXISTS {db}.events ON CLUSTER c1 AS {db}.events_local "
        "ENGINE = Distributed(c1, {db}, events_local, rand())",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_mv ON CLUSTER c1 TO "
        "{db}.trace_times_local AS SELECT 1 AS project_id FROM {db}.events_local "
        "JOIN {db}.spans_local USING (trace_id)",
        # a column goes to the local tables and the Distributed one; an index only local
        "ALTER TABLE {db}.spans_local ON CLUSTER c1 ADD COLUMN IF NOT EXISTS kind2 UInt8",
        "ALTER TABLE {db}.spans ON CLUSTER c1 ADD COLUMN IF NOT EXISTS kind2 UInt8",
        "ALTER TABLE {db}.spans_local ON CLUSTER c1 ADD INDEX IF NOT EXISTS name_bf name "
        "TYPE bloom_filter",
    ]


def test_statements_that_cannot_run_on_a_cluster_fail_loudly() -> None:
    with pytest.raises(ValueError, match="cannot run this migration statement on a cluster"):
        schema.on_cluster(["INSERT INTO {db}.spans SELECT * FROM {db}.old"], "c1")
    with pytest.raises(ValueError, match="not a MergeTree table"):
        schema.on_cluster(["CREATE TABLE IF NOT EXISTS {db}.t (x UInt8) ENGINE = Log"], "c1")
    with pytest.raises(ValueError, match="invalid ClickHouse database name"):
        schema.on_cluster([], "prod; DROP")
