"""``heron migrate``: copy a DuckDB data dir into ClickHouse and its state store.

A team that started on the embedded default (one file, ``data_dir/heron.duckdb``) keeps
its history and its state when it moves to ``[storage] backend = "clickhouse"``:

- **state** (projects, ingest keys, API tokens, users with their password hashes,
  sessions, sign-in tokens, issues, releases) goes to the target's state store —
  PostgreSQL with ``state_url``, else ``data_dir/state.duckdb`` — through its bulk
  ``import_state`` (``store/state.py``), ids preserved so error events still point at
  their issues;
- **telemetry** (spans with their fingerprints, request rollups, and whichever of the
  database-analysis tables, error events and logs the target schema has) is read from
  DuckDB in Arrow batches and inserted into ClickHouse, the columns mapped by name.

Running it twice adds nothing: state rows are inserted only where their key is absent,
and telemetry is copied per table and UTC day, skipping the days the target table holds
already. A day interrupted half-way stays half-copied (drop the target database and run
again). The source is only read: it is opened read-only, after one exclusive open that
applies its pending migrations and fails with ``DatabaseInUse`` while a server holds it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import clickhouse_connect
import duckdb
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from heron.server.config import Config
from heron.server.store.base import DatabaseInUse, StorageUnavailable, Store
from heron.server.store.clickhouse.schema import database_name
from heron.server.store.duckdb_store import open_exclusive
from heron.server.store.open import clickhouse_dsn, open_store, state_file
from heron.server.store.state import STATE_TABLES, StateImport

_NS_PER_DAY = 86_400 * 1_000_000_000
_S_PER_DAY = 86_400
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Telemetry:
    """A telemetry table copied day by day: its time column and that column's units
    per day."""

    table: str
    time_column: str
    per_day: int


# In copy order. A table the target schema lacks is reported and left out.
TELEMETRY: tuple[Telemetry, ...] = (
    Telemetry("spans", "start_ns", _NS_PER_DAY),
    Telemetry("rollup_1m", "minute_s", _S_PER_DAY),
    Telemetry("sql_fingerprints", "first_seen_ns", _NS_PER_DAY),
    Telemetry("db_rollup_1m", "minute_s", _S_PER_DAY),
    Telemetry("n_plus_one", "start_ns", _NS_PER_DAY),
    Telemetry("error_events", "time_ns", _NS_PER_DAY),
    Telemetry("logs", "time_ns", _NS_PER_DAY),
    Telemetry("rum_events", "time_ns", _NS_PER_DAY),
    Telemetry("rum_rollup_1m", "minute_s", _S_PER_DAY),  # its hourly tier is DuckDB's own
)

# ClickHouse columns DuckDB has no counterpart of, and the DuckDB expression that fills
# them: the analysis tables' run version (below any later run's, which replaces it) and
# tombstone flag, and a log record's position (DuckDB orders records of the same
# nanosecond by rowid; the same number keeps their order and their page cursors).
_FILLED = {"version": "1", "is_deleted": "0", "position": "rowid"}


class MigrationError(Exception):
    """The migration cannot start or cannot go on; the message says why."""


@dataclass
class Copied:
    """What one table's copy did."""

    table: str
    rows: int = 0
    days: int = 0
    skipped_days: int = 0
    note: str = ""


@dataclass
class Summary:
    """Rows inserted per state table and per telemetry table."""

    state: dict[str, int] = field(default_factory=dict)
    telemetry: list[Copied] = field(default_factory=list)


def migrate_data_dir(
    config: Config, *, progress: Callable[[str], None], batch_rows: int = 100_000
) -> Summary:
    """Copy ``config.db_path`` (DuckDB) into the ClickHouse store ``config`` names.

    Raises ``MigrationError`` (no source, target schema it cannot fill),
    ``DatabaseInUse`` (a server holds the source) and ``StorageUnavailable`` (target
    unreachable). ``progress`` gets one line per table and day copied.
    """
    if config.storage_backend != "clickhouse":
        raise MigrationError("the target must be ClickHouse (storage backend clickhouse)")
    source = config.db_path
    if not source.is_file():
        raise MigrationError(f"no DuckDB data to migrate: {source} does not exist")
    open_exclusive(source).close()  # pending DuckDB migrations; DatabaseInUse
    with _read_only(source) as con:
        target = _open_target(config)
        try:
            summary = Summary(state=_copy_state(con, cast(StateImport, target.state), progress))
            with _client(config) as client:
                copier = _Copier(con, client, config.clickhouse_database, batch_rows, progress)
                summary.telemetry = [copier.copy(t) for t in TELEMETRY]
        finally:
            target.close()
    return summary


def _open_target(config: Config) -> Store:
    """The target store: connects, applies the ClickHouse migrations, opens the state."""
    try:
        return open_store(config)
    except duckdb.IOException as e:  # data_dir/state.duckdb, held by a running server
        raise _in_use(state_file(config), e) from None


@contextmanager
def _read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as e:
        raise _in_use(path, e) from None
    try:
        yield con
    finally:
        con.close()


def _in_use(path: Path | None, e: duckdb.IOException) -> Exception:
    """DuckDB's lock error as ``DatabaseInUse``; any other error unchanged."""
    if "lock" not in str(e).lower():
        return e
    return DatabaseInUse(
        f"{path} is in use by another process (a running `heron serve`?): stop it first."
    )


@contextmanager
def _client(config: Config) -> Iterator[Client]:
    dsn = clickhouse_dsn(config.clickhouse_url, config.clickhouse_user, config.clickhouse_password)
    # On a cluster the tables are Distributed: an INSERT returns once every shard has it.
    settings = {"insert_distributed_sync": 1} if config.clickhouse_cluster else {}
    try:
        client = clickhouse_connect.get_client(dsn=dsn, settings=settings)
    except ClickHouseError as err:
        raise StorageUnavailable(f"cannot connect to ClickHouse: {err}") from err
    try:
        yield client
    finally:
        client.close()


def _copy_state(
    con: duckdb.DuckDBPyConnection, state: StateImport, progress: Callable[[str], None]
) -> dict[str, int]:
    """Every state table in one import (one transaction on the target)."""
    rows: dict[str, Sequence[Sequence[object]]] = {}
    for table, columns in STATE_TABLES.items():
        # Names from STATE_TABLES only.
        rows[table] = con.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()  # noqa: S608
    inserted = state.import_state(rows)
    for table in STATE_TABLES:
        kept = len(rows[table]) - inserted[table]
        progress(f"{table}: {inserted[table]} rows" + (f" ({kept} already there)" if kept else ""))
    return inserted


class _Copier:
    """Copies telemetry tables from one DuckDB connection into one ClickHouse database."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        client: Client,
        database: str,
        batch_rows: int,
        progress: Callable[[str], None],
    ) -> None:
        self.con, self.client, self.db = con, client, database_name(database)
        self.batch_rows, self.progress = batch_rows, progress

    def copy(self, t: Telemetry) -> Copied:
        done = Copied(t.table)
        target = self._target_columns(t.table)
        source = self._source_columns(t.table)
        if not target or not source:
            done.note = f"not copied: {'the target' if not target else 'the source'} has no table"
            self.progress(f"{t.table}: {done.note}")
            return done
        selects = [_select(t.table, name, source) for name in target]
        there = self._target_days(t)
        started = time.monotonic()
        for day in self._source_days(t):
            if day in there:
                done.skipped_days += 1
                continue
            done.rows += self._copy_day(t, day, target, selects)
            done.days += 1
        skipped = f", {done.skipped_days} already there" if done.skipped_days else ""
        self.progress(
            f"{t.table}: {done.rows} rows in {done.days} days{skipped} "
            f"({time.monotonic() - started:.1f} s)"
        )
        return done

    def _copy_day(self, t: Telemetry, day: int, names: list[str], selects: list[str]) -> int:
        lo, col = day * t.per_day, _ident(t.time_column)
        reader = self.con.sql(
            f"SELECT {', '.join(selects)} FROM {_ident(t.table)} "  # noqa: S608 - checked names
            f"WHERE {col} >= ? AND {col} < ?",
            params=[lo, lo + t.per_day],
        ).to_arrow_reader(self.batch_rows)
        rows = 0
        for batch in reader:
            columns = batch.to_pydict()
            self._insert(t.table, [columns[n] for n in names], names)
            rows += batch.num_rows
        label = datetime.fromtimestamp(day * _S_PER_DAY, UTC).date().isoformat()
        self.progress(f"{t.table} {label}: {rows} rows")
        return rows

    def _insert(self, table: str, columns: list[list[Any]], names: list[str]) -> None:
        try:
            self.client.insert(
                f"{self.db}.{table}", columns, column_names=names, column_oriented=True
            )
        except (ClickHouseError, OSError) as err:
            raise StorageUnavailable(f"ClickHouse insert into {table} failed: {err}") from err

    def _target_columns(self, table: str) -> list[str]:
        """The target table's stored columns in order ([] when it has no such table)."""
        rows = self._query(
            "SELECT name FROM system.columns WHERE database = {db:String} "
            "AND table = {table:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') "
            "ORDER BY position",
            {"db": self.db, "table": table},
        )
        return [_ident(str(name)) for (name,) in rows]

    def _source_columns(self, table: str) -> dict[str, str]:
        """Column name → DuckDB type of the source table ({} when it has none)."""
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ?",
            [table],
        ).fetchall()
        return {str(name): str(kind) for name, kind in rows}

    def _source_days(self, t: Telemetry) -> list[int]:
        col = _ident(t.time_column)
        rows = self.con.execute(
            f"SELECT DISTINCT {col} // {int(t.per_day)} AS d FROM {_ident(t.table)} ORDER BY d"  # noqa: S608
        ).fetchall()
        return [int(d) for (d,) in rows]

    def _target_days(self, t: Telemetry) -> set[int]:
        col = _ident(t.time_column)
        rows = self._query(
            f"SELECT DISTINCT intDiv({col}, {{per_day:Int64}}) FROM {self.db}.{_ident(t.table)}",  # noqa: S608
            {"per_day": t.per_day},
        )
        return {int(d) for (d,) in rows}

    def _query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self.client.query(sql, parameters=params).result_rows]
        except (ClickHouseError, OSError) as err:
            raise StorageUnavailable(f"ClickHouse read failed: {err}") from err


def _select(table: str, name: str, source: dict[str, str]) -> str:
    """The DuckDB expression for the ClickHouse column ``name`` (quoted: ``transaction``
    is a column)."""
    if name in source:
        # HUGEINT sums become Python ints either way; Int64 is what ClickHouse keeps.
        column = f'CAST("{name}" AS BIGINT)' if source[name] == "HUGEINT" else f'"{name}"'
        return f'{column} AS "{name}"'
    if name in _FILLED:
        return f'{_FILLED[name]} AS "{name}"'
    raise MigrationError(f"the target column {table}.{name} has no source in the DuckDB data")


def _ident(name: str) -> str:
    """``name`` if it is a plain lower-case identifier (it is spliced into SQL)."""
    if not _IDENT.match(name):
        raise MigrationError(f"unexpected column or table name {name!r}")
    return name
