"""The storage backends every conformance-run suite is parametrised over.

``open_store(kind, tmp, chdb_dir)`` opens an empty store of one kind:

- ``duckdb``: the embedded default, one file under ``tmp``;
- ``clickhouse``: ClickHouse in-process through chdb. chdb opens one data directory per
  process, so every in-process store shares the session's ``chdb_dir`` (see
  ``tests/conftest.py``), each in a database of its own;
- ``clickhouse-server``: a real server at ``HERON_TEST_CLICKHOUSE_URL``
  (``http://user:pass@host:8123``), only when that is set (docs/clickhouse.md);
- ``clickhouse-http``: the chdb engine served over ClickHouse's HTTP interface by
  ``tests/support/chdb_server.py`` at ``http_url`` (the ``chdb_http_url`` fixture), which
  other processes can share. Not in ``BACKENDS``: suites that want it add it.

Suites use ``BACKENDS`` as a module-scoped fixture's ``params`` so the same tests (same
inputs, same assertions) run on each.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from heron.server.store.base import Store

SERVER_URL = os.environ.get("HERON_TEST_CLICKHOUSE_URL")
BACKENDS = ["duckdb", "clickhouse", *(["clickhouse-server"] if SERVER_URL else [])]
# Test data is dated 2023: a ClickHouse TTL counts from the wall clock, so keep ten years.
LONG_RETENTION = 3650


def open_store(
    kind: str, tmp: Path, chdb_dir: Path, *, http_url: str | None = None, **duckdb_kw: Any
) -> Store:
    """An empty, started store of ``kind`` (one of ``BACKENDS``, or ``clickhouse-http``
    with ``http_url``)."""
    if kind == "duckdb":
        from heron.server.store.duckdb_store import DuckDBStore

        duckdb_kw.setdefault("commit_interval_ms", 0)
        return DuckDBStore(tmp / "heron.duckdb", **duckdb_kw).start()
    from heron.server.store.clickhouse.store import ClickHouseStore

    dsn = {
        "clickhouse": f"chdb://{chdb_dir}",
        "clickhouse-server": str(SERVER_URL),
        "clickhouse-http": str(http_url),
    }[kind]
    return ClickHouseStore(
        dsn,
        database=f"heron_test_{uuid.uuid4().hex[:12]}",
        retention_days=LONG_RETENTION,
        rollup_retention_days=LONG_RETENTION,
        state_path=tmp / "state.duckdb",
    )
