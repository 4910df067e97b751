"""The writer's issue logic (contract §4): grouping into issues, counters, resolve and
regressions, ignored issues, releases first seen, logs linked to events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server.analyze.grouping import assign
from heron.server.model import ErrorEvent, LogRecord
from heron.server.model.write import EventWrite
from heron.server.store.base import QueueFull
from heron.server.store.duckdb.upkeep import enforce_retention
from heron.server.store.duckdb_store import DuckDBStore

S = 10**9


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
    yield s
    s.close()


_n = 0


def ev(t: int, release: str = "1.0", message: str = "boom", **kw: Any) -> ErrorEvent:
    global _n
    _n += 1
    e = ErrorEvent(
        event_id=f"{_n:032x}",
        time_ns=t * S,
        received_ns=t * S,
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


def send(store: DuckDBStore, *events: ErrorEvent, logs: list[LogRecord] | None = None) -> None:
    store.submit_events(EventWrite(1, list(events), logs or [])).result(30)


def issue(store: DuckDBStore, issue_id: int | None = None) -> dict[str, Any]:
    rows = store.read_dicts("SELECT * FROM issues ORDER BY id")
    return rows[-1] if issue_id is None else next(r for r in rows if r["id"] == issue_id)


def set_status(
    store: DuckDBStore, issue_id: int, status: str, release: str | None, at: int
) -> None:
    """What the read side's resolve/ignore actions write (contract §4)."""

    def run(con: Any) -> None:
        con.execute(
            "UPDATE issues SET status = ?, resolved_release = ?, status_changed_ns = ? "
            "WHERE id = ?",
            [status, release, at * S, issue_id],
        )

    store.write(run)


def test_same_bug_one_issue_with_counters(store: DuckDBStore) -> None:
    send(store, ev(100, "1.0", "order 17 failed"), ev(90, "1.1", "order 4242 failed"))
    send(store, ev(120, "1.2", "order 5 failed", level="fatal"))
    send(store, ev(110, "1.3", "other bug"))
    rows = store.read_dicts("SELECT * FROM issues ORDER BY id")
    assert len(rows) == 2
    first = rows[0]
    assert first["event_count"] == 3
    assert (first["first_seen_ns"], first["last_seen_ns"]) == (90 * S, 120 * S)
    assert first["first_release"] == "1.1"  # of its first event in time
    assert first["last_release"] == "1.2" and first["level"] == "fatal"
    assert first["title"] == "ValueError: order 4242 failed"  # its first event's
    assert first["status"] == "open" and first["resolved_release"] is None
    events = store.read("SELECT issue_id, count(*) FROM error_events GROUP BY 1 ORDER BY 1")
    assert events == [(first["id"], 3), (rows[1]["id"], 1)]
    releases = store.read("SELECT release, first_seen_ns FROM releases ORDER BY first_seen_ns")
    assert releases == [("1.1", 90 * S), ("1.0", 100 * S), ("1.3", 110 * S), ("1.2", 120 * S)]


def test_resolved_without_release_reopens_on_a_newer_event(store: DuckDBStore) -> None:
    send(store, ev(100, release=""))
    iid = issue(store)["id"]
    set_status(store, iid, "resolved", "", at=200)
    send(store, ev(150, release=""))  # older than the resolution: stays resolved
    assert issue(store)["status"] == "resolved"
    send(store, ev(250, release=""))
    row = issue(store)
    assert row["status"] == "open" and row["regressed_ns"] == 250 * S
    assert row["resolved_release"] is None and row["event_count"] == 3


def test_resolved_in_a_release_reopens_only_in_a_later_release(store: DuckDBStore) -> None:
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
    assert row["status"] == "open" and row["regressed_ns"] == 500 * S
    assert row["last_release"] == "2.1"


def test_resolved_in_an_unknown_release_falls_back_to_time(store: DuckDBStore) -> None:
    send(store, ev(100, "1.0"))
    iid = issue(store)["id"]
    set_status(store, iid, "resolved", "9.9-never-seen", at=200)
    send(store, ev(150, "1.0"))
    assert issue(store)["status"] == "resolved"
    send(store, ev(250, "1.0"))
    assert issue(store)["status"] == "open"


def test_ignored_stays_ignored_but_counts(store: DuckDBStore) -> None:
    send(store, ev(100, "1.0"))
    iid = issue(store)["id"]
    set_status(store, iid, "ignored", None, at=200)
    send(store, ev(300, "3.0"), ev(301, "3.0"))
    row = issue(store)
    assert row["status"] == "ignored" and row["event_count"] == 3
    assert row["last_seen_ns"] == 301 * S and row["last_release"] == "3.0"


def test_regression_within_one_batch_counts_every_event(store: DuckDBStore) -> None:
    send(store, ev(100, ""))
    iid = issue(store)["id"]
    set_status(store, iid, "resolved", "", at=200)
    send(store, ev(260, ""), ev(250, ""), ev(150, ""))
    row = issue(store)
    assert row["status"] == "open" and row["regressed_ns"] == 250 * S and row["event_count"] == 4


def test_many_issues_updated_in_one_commit(store: DuckDBStore) -> None:
    bugs = [f"Error{i}" for i in range(7)]
    send(store, *(ev(100, exc_type=b) for b in bugs))
    send(
        store,
        *(ev(200 + i, "2.0", exc_type=b) for i, b in enumerate(bugs)),
        ev(300, exc_type="Error0"),
    )
    rows = store.read_dicts("SELECT exc_type, event_count, last_seen_ns, last_release FROM issues")
    by_type = {r["exc_type"]: r for r in rows}
    assert len(rows) == 7 and by_type["Error0"]["event_count"] == 3
    assert (
        by_type["Error0"]["last_seen_ns"] == 300 * S and by_type["Error0"]["last_release"] == "1.0"
    )
    assert by_type["Error6"]["event_count"] == 2 and by_type["Error6"]["last_release"] == "2.0"


def test_events_and_logs_stored_with_json_columns(store: DuckDBStore) -> None:
    e = ev(
        100,
        exceptions=[{"type": "ValueError", "value": "boom", "frames": [{"function": "f"}]}],
        user={"id": "u1"},
        tags={"k": "v"},
        trace_id=bytes(range(16)),
        span_id=7,
    )
    rec = LogRecord(
        time_ns=100 * S,
        observed_ns=100 * S,
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
    row = store.read_dicts("SELECT * FROM error_events")[0]
    assert row["user_key"] == "id:u1" and row["user_data"] == '{"id":"u1"}'
    assert row["tags"] == '{"k":"v"}' and '"function":"f"' in row["exceptions"]
    assert bytes(row["trace_id"]) == bytes(range(16)) and row["span_id"] == 7
    assert row["breadcrumbs"] is None and row["issue_id"] == issue(store)["id"]
    log = store.read_dicts("SELECT * FROM logs")[0]
    assert log["event_id"] == e.event_id and log["attributes"] == '{"a":1}'
    assert log["logger"] == "app" and log["severity_number"] == 17


def test_retention_deletes_old_events_and_logs_but_keeps_issues(store: DuckDBStore) -> None:
    old, new = ev(100), ev(10 * 86_400)
    logs = [
        LogRecord(t * S, t * S, None, 0, 9, "INFO", f"log {t}", "shop", "prod", "1.0")
        for t in (100, 10 * 86_400)
    ]
    send(store, old, new, logs=logs)
    store.write(lambda con: enforce_retention(con, 11 * 86_400 * S, 7, 30))
    assert store.read("SELECT event_id FROM error_events") == [(new.event_id,)]
    assert store.read("SELECT body FROM logs") == [(f"log {10 * 86_400}",)]
    assert store.read("SELECT event_count FROM issues") == [(2,)]


def test_queue_full_is_refused_at_once(tmp_path: Path) -> None:
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
