"""The DuckDB file's connections, and how the store heals after a failed write.

DuckDB invalidates its database after a fatal error (a checkpoint that could not write,
e.g. on a full disk): every later statement on any of its connections fails, even once
the disk has room again. This module owns the writer's connection and the readers'
cursors so that it can close them all and open the file again (DuckDB replays its
write-ahead log on open), and it keeps why writes fail meanwhile, for ``/healthz``.

It must never report a committed write as failed: DuckDB's COMMIT can succeed (the
write-ahead log is written and synced) and the automatic checkpoint after it fail in
the same statement; such a transaction is durable and its requests are acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from heron.server.store.base import QueryTimeout, StorageUnavailable
from heron.server.store.memory import release_on_trim

log = logging.getLogger("heron.store")

# Reopen attempts and probe writes while writes fail: at most one per interval.
RECOVERY_INTERVAL_S = 1.0
RELEASE_TIMEOUT_S = 5.0
_PATH = re.compile(r'"[^"]*/([^"/]+)"')
_MEMORY_LIMIT = re.compile(r"[0-9]+(\.[0-9]+)?\s*[KMGT]i?B", re.IGNORECASE)


def is_storage_failure(e: BaseException) -> bool:
    """Disk full, I/O errors and an invalidated database, as opposed to bad data."""
    if isinstance(e, (duckdb.FatalException, duckdb.IOException, StorageUnavailable)):
        return True
    return isinstance(e, duckdb.TransactionException) and "Failed to commit" in str(e)


def committed_anyway(e: BaseException) -> bool:
    """DuckDB committed (the write-ahead log holds the transaction) and then failed in
    the automatic checkpoint; the database is invalidated but the data is durable."""
    return isinstance(e, duckdb.FatalException) and "COMMIT succeeded" in str(e)


def _reason(e: BaseException) -> str:
    """The first line of DuckDB's message, file names without their directories: it is
    shown to clients (503 answers, ``/healthz``)."""
    lines = str(e).strip().splitlines()
    first = lines[0] if lines else type(e).__name__
    return _PATH.sub(r'"\1"', first)[:300]


class HealingConnection:
    """The writer's connection and the readers' cursors of one DuckDB file.

    ``writer``, ``failed``, ``succeeded``, ``probe`` and ``close`` are for the writer
    thread only; ``cursor`` and ``failure`` for any thread.
    """

    def __init__(
        self,
        path: Path,
        setup: Callable[[duckdb.DuckDBPyConnection], None],
        config: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self._setup = setup
        self._config = dict(config or {})  # connect-time settings (memory_limit, threads...)
        self._lock = threading.Lock()  # guards _con against readers taking cursors
        self._con: duckdb.DuckDBPyConnection | None = None
        self._readers: set[duckdb.DuckDBPyConnection] = set()
        self._invalid = False
        self._next_reopen = 0.0
        self.failure: str | None = None
        """Why writes fail; None while they succeed."""

    def open(self) -> None:
        con = duckdb.connect(str(self.path), config=self._config)
        try:
            self._setup(con)
            # Leave no unfinished result on the writer: con.register() refuses to run
            # while one is pending (the writer registers Arrow tables by name).
            con.execute("SELECT 1").fetchall()
        except BaseException:
            con.close()
            raise
        with self._lock:
            self._con = con
        self._invalid = False
        release_on_trim(self)

    def release_memory(self) -> None:
        """Make DuckDB hand back the memory its allocator keeps after queries: setting
        ``memory_limit``, even to the value it has, flushes it (a 10M-span aggregate left
        RSS at 232 MiB with 2 MiB of blocks in use; 79 MiB after). Called after each
        background job (store.memory)."""
        limit = str(self._config.get("memory_limit", ""))
        if not _MEMORY_LIMIT.fullmatch(limit):  # no limit configured (tests): nothing to set
            return
        try:
            with self.cursor(RELEASE_TIMEOUT_S) as cur:
                cur.execute(f"SET memory_limit = '{limit}'")  # a checked literal: SET binds none
        except (StorageUnavailable, QueryTimeout, duckdb.Error) as e:
            log.debug("releasing DuckDB's free memory failed: %s", _reason(e))

    # ------------------------------------------------------------------ writer side

    def writer(self) -> duckdb.DuckDBPyConnection:
        """The writer's connection, opened again first if DuckDB invalidated it."""
        if self._invalid:
            self._reopen()
        con = self._con
        if self._invalid or con is None:
            raise StorageUnavailable(self.failure or "storage is being reopened")
        return con

    def failed(self, e: Exception) -> Exception | None:
        """Note a failed write. None when its transaction committed all the same,
        otherwise the error to answer the write's requests with."""
        if not is_storage_failure(e):
            return e
        if isinstance(e, duckdb.FatalException):
            self._invalid = True
        if self.failure is None:
            log.error("storage failing, writes answer 503 until it recovers: %s", str(e)[:500])
        if not isinstance(e, StorageUnavailable) or self.failure is None:
            self.failure = _reason(e)
        if committed_anyway(e):
            return None
        return e if isinstance(e, StorageUnavailable) else StorageUnavailable(self.failure)

    def succeeded(self) -> None:
        """Note a committed write; it proves nothing while the database needs reopening."""
        if self.failure is not None and not self._invalid:
            log.warning("storage recovered, writes succeed again")
            self.failure = None

    def probe(self) -> None:
        """One small real write, so that a failure clears without waiting for traffic."""
        try:
            self.writer().execute(
                "CREATE OR REPLACE TABLE write_probe AS SELECT ?::BIGINT AS at_ns",
                [time.time_ns()],
            )
        except Exception as e:
            self.failed(e)
        else:
            self.succeeded()

    def close(self) -> None:
        con = self._con
        if con is None:
            return
        if not self._invalid:
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error as e:  # the write-ahead log is replayed at the next start
                log.warning("checkpoint at shutdown failed: %s", _reason(e))
        with self._lock, contextlib.suppress(duckdb.Error):
            con.close()
        self._con = None

    def _reopen(self) -> None:
        now = time.monotonic()
        if now < self._next_reopen:
            return
        self._next_reopen = now + RECOVERY_INTERVAL_S
        if not self._close_invalidated():
            return
        try:
            self.open()
        except duckdb.Error as e:
            log.debug("reopening %s failed: %s", self.path, _reason(e))
            return
        log.warning("reopened %s after: %s", self.path, self.failure)

    def _close_invalidated(self) -> bool:
        """Close the connection and its cursors, which DuckDB requires before it opens
        the file anew. False while a reader is still busy: it is interrupted, and the
        next attempt closes."""
        with self._lock:
            if self._con is None:
                return True
            for cur in self._readers:
                cur.interrupt()
            try:
                self._con.close()
            except duckdb.ResourceInUseException:
                return False
            except duckdb.Error as e:
                log.debug("closing the invalidated database: %s", _reason(e))
            self._con = None
            return True

    # ------------------------------------------------------------------ reader side

    @contextlib.contextmanager
    def cursor(self, timeout_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one read, interrupted after ``timeout_s``. Raises
        StorageUnavailable while the database is invalidated or being reopened."""
        with self._lock:
            if self._con is None or self._invalid:
                raise StorageUnavailable(self.failure or "storage is not open")
            cur = self._con.cursor()
            self._readers.add(cur)
        timer = threading.Timer(timeout_s, cur.interrupt)
        timer.start()
        try:
            yield cur
        except duckdb.Error as e:
            if self._invalid or isinstance(e, (duckdb.FatalException, duckdb.ConnectionException)):
                raise StorageUnavailable(self.failure or _reason(e)) from None
            if isinstance(e, duckdb.InterruptException):
                raise QueryTimeout(f"the query was stopped after {timeout_s:g} s") from None
            raise
        finally:
            timer.cancel()
            with self._lock:
                self._readers.discard(cur)
            with contextlib.suppress(duckdb.Error):
                cur.close()
