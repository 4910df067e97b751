"""``store.memory.release_free_memory`` also makes each open DuckDB file hand back what
its allocator keeps (``HealingConnection.release_memory``), without changing a setting
or disturbing the store, and forgets stores once they are gone."""

from __future__ import annotations

import gc
from pathlib import Path

from heron.server.store import memory
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.memory import duckdb_config, release_free_memory


def _limit(store: DuckDBStore) -> str:
    return str(store.read("SELECT current_setting('memory_limit')")[0][0])


def test_release_keeps_the_limit_and_the_store_working(tmp_path: Path) -> None:
    db = tmp_path / "heron.duckdb"
    store = DuckDBStore(db, duckdb_config=duckdb_config(600, db)).start()
    try:
        before = _limit(store)
        assert store.read("SELECT count(*) FROM range(3000000) GROUP BY range % 1000")
        assert any(r is store._db for r in memory._releasers)  # registered on open
        release_free_memory()
        assert _limit(store) == before  # set again to the same value: 300 MiB
        assert store.read("SELECT count(*) FROM range(10)") == [(10,)]
    finally:
        store.close()


def test_a_store_without_a_configured_limit_is_left_alone(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "heron.duckdb").start()
    try:
        before = _limit(store)
        release_free_memory()
        assert _limit(store) == before
    finally:
        store.close()


def test_a_store_that_is_gone_is_forgotten(tmp_path: Path) -> None:
    db = tmp_path / "heron.duckdb"
    store = DuckDBStore(db, duckdb_config=duckdb_config(600, db)).start()
    store.close()
    release_free_memory()  # a closed store: nothing to release, no error
    del store
    gc.collect()
    assert not any(getattr(r, "path", None) == db for r in memory._releasers)
