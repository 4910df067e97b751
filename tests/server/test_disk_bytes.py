"""``disk_bytes()``: what each backend's data takes on disk (for the storage benchmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from heron.server.ingest.pipeline import Pipeline
from tests.server.backends import BACKENDS, open_store
from tests.server.test_query import PROJECT, all_spans


@pytest.mark.parametrize("kind", BACKENDS)
def test_disk_bytes_grow_with_the_spans(kind: str, tmp_path: Path, chdb_dir: Path) -> None:
    store: Any = open_store(kind, tmp_path, chdb_dir)  # disk_bytes() is no protocol method
    try:
        empty = sum(store.disk_bytes().values())
        Pipeline(store).submit_spans(PROJECT, all_spans()).result(30)
        parts = store.disk_bytes()
    finally:
        store.close()
    assert sum(parts.values()) > empty
    if kind == "duckdb":
        # After the CHECKPOINT the write-ahead log is in the file.
        assert set(parts) == {"file", "wal"}
        assert parts["wal"] == 0
        assert parts["file"] == (tmp_path / "heron.duckdb").stat().st_size
    else:
        assert parts["spans"] > 0
        assert parts["rollup_1m"] > 0
        assert parts["trace_times"] > 0
