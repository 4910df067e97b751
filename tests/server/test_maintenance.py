"""Retention and rollup compaction on a real DuckDB store."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import Maintenance
from heron.server.model import Span
from heron.server.store.alerting import HistoryRow, NotificationRow
from heron.server.store.base import StorageUnavailable
from heron.server.store.duckdb.upkeep import NS_PER_DAY
from heron.server.store.duckdb_store import DuckDBStore

NOW = 1_800_000_000 * 10**9


def span(start_ns: int, duration_ms: float = 10, status: int = 0) -> Span:
    return Span(
        trace_id=os.urandom(16),
        span_id=int.from_bytes(os.urandom(8), "big") | 1,
        parent_id=0,
        start_ns=start_ns,
        duration_ns=int(duration_ms * 1e6),
        name="GET /a",
        kind=2,
        status=status,
        status_message="",
        service="svc",
        environment="prod",
        release="1",
        http_method="GET",
        http_route="/a",
        http_status=200,
    )


def test_retention_deletes_old_spans_and_rollups(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb").start()
    try:
        old = [span(NOW - 10 * NS_PER_DAY) for _ in range(5)]
        recent = [span(NOW - 3600 * 10**9) for _ in range(7)]
        Pipeline(store).submit_spans(1, old + recent).result(10)
        m = Maintenance(store, retention_days=7, rollup_retention_days=8, clock=lambda: NOW)
        assert m.run_once() == 5
        assert store.read("SELECT count(*) FROM spans") == [(7,)]
        assert store.read("SELECT sum(count) FROM rollup_1m") == [(7,)]
    finally:
        store.close()


def test_alert_history_and_finished_notifications_expire_with_retention(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb", commit_interval_ms=0).start()
    try:
        old, recent = NOW - 8 * NS_PER_DAY, NOW - NS_PER_DAY
        store.state.save_evaluation(
            [],
            [],
            [HistoryRow(0, 1, 1, "fp", "{}", "firing", 1.0, t) for t in (old, recent)],
            [],
        )
        rows = [
            NotificationRow(0, 1, 1, "g", "firing", "{}", status, 1, 0, "", t, 0)
            for status, t in (("sent", old), ("pending", old), ("failed", recent))
        ]
        store.state.save_dispatch([], [], rows)
        m = Maintenance(store, retention_days=7, rollup_retention_days=8, clock=lambda: NOW)
        assert m.prune_alerting_once() == 2
        assert [h.at_ns for h in store.state.alert_history(1)] == [recent]
        assert [n.status for n in store.state.list_notifications(1)] == ["failed", "pending"]
    finally:
        store.close()


def test_compaction_merges_rows_without_changing_sums(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb", commit_interval_ms=0).start()
    try:
        minute = NOW - 600 * 10**9
        for i in range(6):  # six separate commits → six partial rollup rows per key
            Pipeline(store).submit_spans(1, [span(minute, 10, status=2 if i == 0 else 0)]).result(
                10
            )
        before = store.read("SELECT count(*), sum(count), sum(errors), sum(sum_ns) FROM rollup_1m")
        assert before[0][0] == 6
        Maintenance(store, retention_days=7, rollup_retention_days=30, clock=lambda: NOW).run_once()
        after = store.read("SELECT count(*), sum(count), sum(errors), sum(sum_ns) FROM rollup_1m")
        assert after[0][0] == 1
        assert after[0][1:] == before[0][1:] == (6, 1, 60_000_000)
    finally:
        store.close()


def test_store_reopens_and_keeps_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    store = DuckDBStore(path).start()
    Pipeline(store).submit_spans(1, [span(NOW)]).result(10)
    store.close()
    store = DuckDBStore(path).start()
    try:
        from heron.server.store.schema import MIGRATIONS

        assert store.read("SELECT max(version) FROM schema_version") == [(MIGRATIONS[-1][0],)]
        assert store.read("SELECT count(*) FROM spans") == [(1,)]
    finally:
        store.close()


def test_a_job_during_a_storage_failure_logs_one_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unavailable() -> None:
        raise StorageUnavailable("No space left on device")

    def broken() -> None:
        raise ValueError("a bug")

    with caplog.at_level(logging.WARNING, logger="heron.maintenance"):
        Maintenance._guarded(unavailable, "analysis")
        Maintenance._guarded(broken, "maintenance")
    skipped, failed = caplog.records
    assert skipped.levelno == logging.WARNING and skipped.exc_info is None
    assert "analysis skipped while storage is unavailable" in skipped.getMessage()
    assert "No space left on device" in skipped.getMessage()
    assert failed.levelno == logging.ERROR and failed.exc_info is not None
