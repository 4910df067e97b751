"""The server's memory budget: config, DuckDB's settings, bounded caches, trimming."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from heron.server.analyze import fingerprint
from heron.server.app import create_app
from heron.server.config import ConfigError, load_config
from heron.server.model import ErrorEvent
from heron.server.store import events
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.memory import duckdb_config, release_free_memory


def settings(store: DuckDBStore) -> dict[str, str]:
    rows = store.read(
        "SELECT name, value FROM duckdb_settings() "
        "WHERE name IN ('memory_limit', 'threads', 'temp_directory')"
    )
    return dict(rows)


def test_memory_limit_comes_from_env_and_has_a_floor() -> None:
    assert load_config(env={}).memory_limit_mb == 1024
    assert load_config(env={"HERON_MEMORY_LIMIT_MB": "2048"}).memory_limit_mb == 2048
    with pytest.raises(ConfigError, match="memory_limit_mb=300"):
        load_config(env={"HERON_MEMORY_LIMIT_MB": "300"})


def test_duckdb_gets_half_the_budget_and_a_thread_per_128_mib(tmp_path: Path) -> None:
    db = tmp_path / "heron.duckdb"
    cores = os.cpu_count() or 1
    assert duckdb_config(1024, db) == {
        "memory_limit": "512MiB",
        "threads": str(min(cores, 4)),
        "temp_directory": f"{db}.tmp",
    }
    assert duckdb_config(512, db)["threads"] == str(min(cores, 2))


def test_the_servers_store_runs_with_those_settings(tmp_path: Path) -> None:
    config = load_config(env={"HERON_MEMORY_LIMIT_MB": "600", "HERON_DATA_DIR": str(tmp_path)})
    store = create_app(config).state.ctx.store
    store.start()
    try:
        got = settings(store)
    finally:
        store.close()
    # DuckDB reports its limit in its own units (1000-based); 300 MiB = 314.5 MB.
    assert got["memory_limit"] in ("300.0 MiB", "314.5 MB"), got
    assert got["threads"] == str(min(os.cpu_count() or 1, 2))
    assert got["temp_directory"] == f"{tmp_path / 'heron.duckdb'}.tmp"


def test_duckdb_holds_to_its_share_and_spills_what_is_over(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    store = DuckDBStore(db, duckdb_config=duckdb_config(512, db)).start()
    try:
        # A list of 600 MB cannot spill: refused at DuckDB's 256 MiB, not grown into.
        with pytest.raises(duckdb.OutOfMemoryException, match="/256.0 MiB used"):
            store.read(
                "SELECT len(l) FROM "
                "(SELECT list(repeat('x', 60) || i) AS l FROM range(10000000) t(i))"
            )
        # A sort of ~600 MB of rows can: it runs within the limit.
        (n,) = store.read(
            "SELECT count(*) FROM (SELECT repeat('x', 60) || i AS s FROM range(10000000) t(i) "
            "ORDER BY s DESC)"
        )[0]
    finally:
        store.close()
    assert n == 10_000_000


def test_the_sql_cache_is_bounded_across_database_systems() -> None:
    fingerprint.clear_cache()
    try:
        for i in range(fingerprint._CACHE_MAX_ENTRIES + 2_000):
            statement = f"SELECT {i} FROM t{i}"  # noqa: S608 - distinct texts, never run
            fingerprint.sql_info(statement, f"system-{i % 20}")
        cached = sum(map(len, fingerprint._CACHE.values()))
        assert 0 < cached <= fingerprint._CACHE_MAX_ENTRIES
    finally:
        fingerprint.clear_cache()


def test_releasing_free_memory_is_safe_to_call_anywhere() -> None:
    release_free_memory()
    release_free_memory()


def test_the_writers_set_of_known_releases_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "KNOWN_RELEASES_MAX", 100)  # 10,000: same rule, slower

    def event(release: str) -> ErrorEvent:
        return ErrorEvent(
            event_id=os.urandom(16).hex(),
            time_ns=1_800_000_000 * 10**9,
            received_ns=1_800_000_000 * 10**9,
            service="svc",
            environment="prod",
            release=release,
            level="error",
            platform="python",
            source="sentry",
            exc_type="ValueError",
            message="boom",
            culprit="app in handler",
        )

    known: set[tuple[int, str]] = set()
    store = DuckDBStore(tmp_path / "h.duckdb").start()
    try:
        for batch in range(3):  # 180 releases, all new
            releases = [(1, event(f"{batch}-{i}")) for i in range(60)]
            store.write(lambda con, r=releases: events.record_releases(con, r, known))
        (stored,) = store.read("SELECT count(*) FROM releases")[0]
    finally:
        store.close()
    assert stored == 180  # every release recorded, whatever the writer remembers
    assert 0 < len(known) <= 100
