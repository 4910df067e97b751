"""The writer's issue logic (contract §4): grouping into issues, counters, resolve and
regressions, ignored issues, releases first seen, logs linked to events.

Runs on every backend (``tests/server/backends.py``): the same events through
``submit_events``, statuses set through ``state.set_issue_status``, read back through the
public readers (``store.issues``, ``store.logs``, ``store.state``). Retention and the
full-queue test are DuckDB's own (ClickHouse retention is a TTL, see
``test_backend_conformance``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from heron.server.analyze.grouping import assign
from heron.server.model import ErrorEvent, LogRecord
from heron.server.model.write import EventWrite
from heron.server.store.base import QueueFull, Store
from heron.server.store.clickhouse.store import ClickHouseStore
from heron.server.store.duckdb.upkeep import enforce_retention
from heron.server.store.duckdb_store import DuckDBStore

from .backends import BACKENDS, open_store
from .ingest_client import EVENT_KEYS, EVERYTHING, LOG_KEYS

S = 10**9
# Times are seconds after T0 (in 2023): a ClickHouse TTL counts from the wall clock, so
# events dated 1970 would expire at once.
T0 = 1_700_000_000 * S


def ns(t: int) -> int:
    return T0 + t * S


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, chdb_dir: Path) -> Iterator[Store]:
    s = open_store(request.param, tmp_path, chdb_dir)
    yield s
    s.close()


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
    yield s
    s.close()


_n = 0


def ev(t: int, release: str = "1.0", message: str = "boom", **kw: Any) -> ErrorEvent:
    global _n
    _n += 1
    e = ErrorEvent(
        event_id=f"{_n:032x}",
        time_ns=ns(t),
        received_ns=ns(t),
        service="shop",
        environment="prod",
        release=release,
        level=kw.pop("level", "error"),
        platform="python",
        source="sentry",
        exc_type=kw.pop("exc_type", "ValueError"),
        message=message,
        culprit="",
        **kw,
    )
    return assign(e)


def send(store: Store, *events: ErrorEvent, logs: list[LogRecord] | None = None) -> None:
    store.submit_events(EventWrite(1, list(events), logs or [])).result(30)


def figures(store: Store) -> list[tuple[Any, ...]]:
    """ISSUE_ROWs of every issue with an event, by id."""
    rows = store.issues.list_issues(1, *EVERYTHING, {}, status=None, sort="last_seen", limit=999)
    return sorted(rows, key=lambda r: int(r[0]))


def issues(store: Store) -> list[dict[str, Any]]:
    """The stored state of every issue with an event, by id."""
    ids = [int(r[0]) for r in figures(store)]
    states = store.state.issue_states(1, ids)
    return [asdict(states[i]) for i in ids]


def issue(store: Store, issue_id: int | None = None) -> dict[str, Any]:
    rows = issues(store)
    return rows[-1] if issue_id is None else next(r for r in rows if r["id"] == issue_id)


def set_status(store: Store, issue_id: int, status: str, release: str | None, at: int) -> None:
    """The read side's resolve/ignore actions (contract §4), at time ``at``."""
    assert store.state.set_issue_status(1, issue_id, status, release, ns(at))


def state_db(store: Store) -> DuckDBStore:
    """The DuckDB database holding the state (releases have no reader)."""
    if isinstance(store, ClickHouseStore):
        assert store._state_store is not None
        return store._state_store
    assert isinstance(store, DuckDBStore)
    return store


def test_same_bug_one_issue_with_counters(store: Store) -> None:
    send(store, ev(100, "1.0", "order 17 failed"), ev(90, "1.1", "order 4242 failed"))
    send(store, ev(120, "1.2", "order 5 failed", level="fatal"))
    send(store, ev(110, "1.3", "other bug"))
    rows = issues(store)
    assert len(rows) == 2
    first = rows[0]
    assert first["event_count"] == 3
    assert (first["first_seen_ns"], first["last_seen_ns"]) == (ns(90), ns(120))
    assert first["first_release"] == "1.1"  # of its first event in time
    assert first["last_release"] == "1.2" and first["level"] == "fatal"
    assert first["title"] == "ValueError: order 4242 failed"  # its first event's
    assert first["status"] == "open" and first["resolved_release"] is None
    events = [(r[0], r[14]) for r in figures(store)]
    assert events == [(first["id"], 3), (rows[1]["id"], 1)]
    releases = state_db(store).read(
        "SELECT release, first_seen_ns FROM releases ORDER BY first_seen_ns"
    )
    assert releases == [("1.1", ns(90)), ("1.0", ns(100)), ("1.3", ns(110)), ("1.2", ns(120))]


def test_resolved_without_release_reopens_on_a_newer_event(store: Store) -> None:
    send(store, ev(100, release=""))
    iid = issue(store)["id"]
    set_status(store, iid, "resolved", "", at=200)
    send(store, ev(150, release=""))  # older than the resolution: stays resolved
    assert issue(store)["status"] == "resolved"
    send(store, ev(250, release=""))
    row = issue(store)
    assert row["status"] == "open" and row["regressed_ns"] == ns(250)
    assert row["resolved_release"] is None and row["event_count"] == 3


def test_resolved_in_a_release_reopens_only_in_a_later_release(store: Store) -> None:
    send(store, ev(100, "1.0"))
    send(store, ev(200, "2.0", message="unrelated", exc_type="KeyError"))  # 2.0 first seen
    iid = issue(store, 1)["id"]
    set_status(store, iid, "resolved", "2.0", at=300)
    send(store, ev(400, "1.0"))  # an old release still running: not a regression
    send(store, ev(410, "2.0"))  # the fixed release itself: not a regression
    send(store, ev(420, ""))  # unknown release: not a regression
    row = issue(store, iid)
    assert row["status"] == "resolved" and row["event_count"] == 4 and row["regressed_ns"] is None
    send(store, ev(500, "2.1"))
    row = issue(store, iid)
    assert row["status"] == "open" and row["regressed_ns"] == ns(500)
    assert row["last_release"] == "2.1"


def test_resolved_in_an_unknown_release_falls_back_to_time(store: Store) -> None:
    send(store, ev(100, "1.0"))
    iid = issue(store)["id"]
    set_status(store, iid, "resolved", "9.9-never-seen", at=200)
    send(store, ev(150, "1.0"))
    assert issue(store)["status"] == "resolved"
    send(store, ev(250, "1.0"))
    assert issue(store)["status"] == "open"


def test_ignored_stays_ignored_but_counts(store: Store) -> None:
    send(store, ev(100, "1.0"))
    iid = issue(store)["id"]
    set_status(store, iid, "ignored", None, at=200)
    send(store, ev(300, "3.0"), ev(301, "3.0"))
    row = issue(store)
    assert row["status"] == "ignored" and row["event_count"] == 3
    assert row["last_seen_ns"] == ns(301) and row["last_release"] == "3.0"


def test_regression_within_one_batch_counts_every_event(store: Store) -> None:
    send(store, ev(100, ""))
    iid = issue(store)["id"]
    set_status(store, iid, "resolved", "", at=200)
    send(store, ev(260, ""), ev(250, ""), ev(150, ""))
    row = issue(store)
    assert row["status"] == "open" and row["regressed_ns"] == ns(250) and row["event_count"] == 4


def test_many_issues_updated_in_one_commit(store: Store) -> None:
    bugs = [f"Error{i}" for i in range(7)]
    send(store, *(ev(100, exc_type=b) for b in bugs))
    send(
        store,
        *(ev(200 + i, "2.0", exc_type=b) for i, b in enumerate(bugs)),
        ev(300, exc_type="Error0"),
    )
    rows = issues(store)
    by_type = {r["exc_type"]: r for r in rows}
    assert len(rows) == 7 and by_type["Error0"]["event_count"] == 3
    assert (
        by_type["Error0"]["last_seen_ns"] == ns(300) and by_type["Error0"]["last_release"] == "1.0"
    )
    assert by_type["Error6"]["event_count"] == 2 and by_type["Error6"]["last_release"] == "2.0"


def test_an_event_sent_twice_is_stored_and_counted_once(store: Store) -> None:
    e = ev(100)
    send(store, e)
    twin, other = ev(100), ev(101)
    twin.event_id = e.event_id
    rec = LogRecord(ns(100), ns(100), None, 0, 17, "ERROR", "kept", "shop", "prod", "1.0")
    send(store, twin, other, twin, logs=[rec])  # stored already, and twice in the commit
    assert issue(store)["event_count"] == 2
    assert [r[14] for r in figures(store)] == [2]
    assert [r[11] for r in store.logs.search(1, *EVERYTHING, limit=10)] == ["kept"]


def test_events_and_logs_stored_with_json_columns(store: Store) -> None:
    e = ev(
        100,
        exceptions=[{"type": "ValueError", "value": "boom", "frames": [{"function": "f"}]}],
        user={"id": "u1"},
        tags={"k": "v"},
        trace_id=bytes(range(16)),
        span_id=7,
    )
    rec = LogRecord(
        time_ns=ns(100),
        observed_ns=ns(100),
        trace_id=bytes(range(16)),
        span_id=7,
        severity_number=17,
        severity_text="ERROR",
        body="boom",
        service="shop",
        environment="prod",
        release="1.0",
        logger="app",
        attributes={"a": 1},
        resource={"service.name": "shop"},
        event_id=e.event_id,
    )
    send(store, e, logs=[rec])
    found = store.issues.event(1, e.event_id)
    assert found is not None
    row = dict(zip(EVENT_KEYS, found, strict=True))
    assert row["user_key"] == "id:u1" and row["user_data"] == '{"id":"u1"}'
    assert row["tags"] == '{"k":"v"}' and '"function":"f"' in row["exceptions"]
    assert bytes(row["trace_id"]) == bytes(range(16)) and row["span_id"] == 7
    assert row["breadcrumbs"] is None and row["issue_id"] == issue(store)["id"]
    (log_row,) = store.logs.search(1, *EVERYTHING, limit=10)
    log = dict(zip(LOG_KEYS, log_row, strict=True))
    assert log["event_id"] == e.event_id and log["attributes"] == '{"a":1}'
    assert log["logger"] == "app" and log["severity_number"] == 17


def test_retention_deletes_old_events_and_logs_but_keeps_issues(duck: DuckDBStore) -> None:
    store = duck  # DuckDB's upkeep job (ClickHouse: a TTL from the wall clock)
    old, new = ev(100), ev(10 * 86_400)
    logs = [
        LogRecord(ns(t), ns(t), None, 0, 9, "INFO", f"log {t}", "shop", "prod", "1.0")
        for t in (100, 10 * 86_400)
    ]
    send(store, old, new, logs=logs)
    store.write(lambda con: enforce_retention(con, ns(11 * 86_400), 7, 30))
    assert store.read("SELECT event_id FROM error_events") == [(new.event_id,)]
    assert store.read("SELECT body FROM logs") == [(f"log {10 * 86_400}",)]
    assert store.read("SELECT event_count FROM issues") == [(2,)]


def test_queue_full_is_refused_at_once(tmp_path: Path) -> None:
    # DuckDB only: it holds the writer busy with a DuckDB writer task.
    s = DuckDBStore(tmp_path / "q.duckdb", commit_interval_ms=0, queue_max_events=2).start()
    try:
        release = threading.Event()
        s.submit_write(lambda con: release.wait(30))  # the writer is busy
        first = s.submit_events(EventWrite(1, [ev(1), ev(2)], []))
        with pytest.raises(QueueFull):
            s.submit_events(EventWrite(1, [ev(3)], []))
        release.set()
        assert first.result(30) == 2
        assert s.submit_events(EventWrite(1, [ev(4)], [])).result(30) == 1
        assert s.read("SELECT count(*) FROM error_events") == [(3,)]
    finally:
        s.close()
