"""The ClickHouse event writer and its tables (the behaviour both backends share is
tested on both in test_issue_store, test_errors_api and the ingest tests): schema and
skip indexes, failed INSERTs, what a retry does to issue counters, the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server.model import LogRecord
from heron.server.model.write import EventWrite
from heron.server.store.base import QueueFull, StorageUnavailable
from heron.server.store.clickhouse.store import ClickHouseStore

from .backends import open_store
from .test_issue_store import ev, issue, ns


@pytest.fixture
def ch(tmp_path: Path, chdb_dir: Path) -> Iterator[ClickHouseStore]:
    store = open_store("clickhouse", tmp_path, chdb_dir)
    assert isinstance(store, ClickHouseStore)
    yield store
    store.close()


def rows(store: ClickHouseStore, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return store._reads.rows(sql, params)


def log(t: int, body: str) -> LogRecord:
    return LogRecord(ns(t), ns(t), bytes(range(16)), 7, 9, "INFO", body, "shop", "prod", "1.0")


def test_tables_are_partitioned_by_day_with_ttl_and_skip_indexes(ch: ClickHouseStore) -> None:
    events = rows(ch, "SHOW CREATE TABLE {db}.error_events")[0][0]
    logs = rows(ch, "SHOW CREATE TABLE {db}.logs")[0][0]
    for ddl in (events, logs):
        assert "PARTITION BY toDate(toDateTime(intDiv(time_ns, 1000000000)))" in ddl
        assert "TTL toDateTime(intDiv(time_ns, 1000000000)) + toIntervalDay(3650)" in ddl
    assert "ORDER BY (project_id, issue_id, time_ns)" in events
    assert "INDEX event_id_bloom event_id TYPE bloom_filter" in events
    assert "INDEX body_ngrams lowerUTF8(body) TYPE ngrambf_v1" in logs
    assert "INDEX trace_id_bloom trace_id TYPE bloom_filter" in logs


def test_text_search_and_trace_logs_use_the_skip_indexes(ch: ClickHouseStore) -> None:
    ch.submit_events(EventWrite(1, [], [log(10, "a needle here")])).result(30)
    plan = rows(
        ch,
        "EXPLAIN indexes = 1 SELECT body FROM {db}.logs WHERE project_id = 1 "
        "AND lowerUTF8(body) LIKE lowerUTF8({t:String}) AND trace_id = {tr:FixedString(16)}",
        t="%needle%",
        tr=bytes(range(16)),
    )
    text = "\n".join(r[0] for r in plan)
    assert "body_ngrams" in text and "trace_id_bloom" in text


def test_positions_follow_write_order(ch: ClickHouseStore) -> None:
    ch.submit_events(EventWrite(1, [], [log(10, "a"), log(10, "b")])).result(30)
    ch.submit_events(EventWrite(1, [], [log(10, "c")])).result(30)
    found = ch.logs.search(1, 0, 2**62, limit=10)
    assert [r[11] for r in found] == ["c", "b", "a"]  # same time: newest write first
    assert found[0][0] > found[1][0] > found[2][0]
    page = ch.logs.search(1, 0, 2**62, before=(found[0][1], found[0][0]), limit=10)
    assert [r[11] for r in page] == ["b", "a"]


def test_failed_insert_is_not_acknowledged_and_recovers(ch: ClickHouseStore) -> None:
    ch.submit_events(EventWrite(1, [ev(100)], [])).result(30)
    again = ev(200)
    ch._writer_client.command(f"DETACH TABLE {ch.database}.error_events")
    try:
        with pytest.raises(StorageUnavailable):
            ch.submit_events(EventWrite(1, [again], [log(200, "with it")])).result(30)
        assert ch.health() is not None and "event write failed" in str(ch.health())
    finally:
        ch._writer_client.command(f"ATTACH TABLE {ch.database}.error_events")
    assert ch.logs.search(1, 0, 2**62, limit=10) == []  # nothing of the request stored
    # The duplicate check failed before the issue transaction: nothing was counted.
    assert issue(ch)["event_count"] == 1
    assert ch.submit_events(EventWrite(1, [again], [log(200, "with it")])).result(30) == 2
    assert ch.health() is None
    assert issue(ch)["event_count"] == 2 and issue(ch)["last_seen_ns"] == ns(200)
    assert len(ch.logs.search(1, 0, 2**62, limit=10)) == 1


def test_a_retry_after_a_failed_event_insert_counts_the_event_twice(
    ch: ClickHouseStore,
) -> None:
    ch.submit_events(EventWrite(1, [ev(100)], [])).result(30)
    again = ev(200)
    refuse = f"ALTER TABLE {ch.database}.error_events"
    ch._writer_client.command(f"{refuse} ADD CONSTRAINT refuse CHECK time_ns < 0")
    try:
        with pytest.raises(StorageUnavailable):
            ch.submit_events(EventWrite(1, [again], [])).result(30)
    finally:
        ch._writer_client.command(f"{refuse} DROP CONSTRAINT refuse")
    # The issue transaction had committed before the INSERT failed, so the client's
    # retry counts the event again (documented in store/clickhouse/events.py); the
    # event is stored once and the figures over a range count stored events.
    assert ch.submit_events(EventWrite(1, [again], [])).result(30) == 1
    row = issue(ch)
    assert (row["event_count"], row["last_seen_ns"], row["status"]) == (3, ns(200), "open")
    assert ch.issues.issue(1, row["id"], 0, 2**62, {})[14] == 2


def test_queue_full_and_queued_events(tmp_path: Path, chdb_dir: Path) -> None:
    store = ClickHouseStore(
        f"chdb://{chdb_dir}",
        database=f"heron_test_q{time.time_ns()}",
        retention_days=3650,
        rollup_retention_days=3650,
        max_queue=1,
        state_path=tmp_path / "state.duckdb",
    )
    state_db = store._state_store
    assert state_db is not None
    release = threading.Event()
    busy = state_db.submit_write(lambda con: release.wait(30))  # the issue transaction waits
    try:
        taken = store.submit_events(EventWrite(1, [ev(1)], []))
        deadline = time.monotonic() + 10
        while not store._events._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)  # until the writer took it (and waits for the state)
        waiting = store.submit_events(EventWrite(1, [ev(2), ev(3)], [log(3, "x")]))
        assert store.queued_events == 1 + 3  # the one being written and those queued
        with pytest.raises(QueueFull):
            store.submit_events(EventWrite(1, [ev(4)], []))
    finally:
        release.set()
    busy.result(30)
    assert (taken.result(30), waiting.result(30)) == (1, 3)
    assert store.queued_events == 0
    store.close()
