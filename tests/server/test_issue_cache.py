"""The DuckDB writer's issue cache (``store.events.IssueCache``): issue state kept between
commits must never hide a change made elsewhere.

The cache is warm in every test (an event of the issue was committed first), then the
issue changes outside the event path — a status change through the HTTP API, any other
write on the writer — and the next event's grouping must see the change. Real store,
real routes (in-process ASGI with the real lifespan), no mocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from heron.server.analyze.issues import IssueState
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.events import IssueCache

from .ingest_client import KEY, NOW_NS, TOKEN, Heron, running_heron

S = 10**9
_n = 0


@pytest.fixture
def heron(tmp_path: Path) -> Iterator[Heron]:
    with running_heron(tmp_path) as h:
        yield h


def send(heron: Heron, at_ns: int, release: str = "1.0", exc: str = "ValueError") -> str:
    """One Sentry event (the same bug unless ``exc`` differs) through the envelope route."""
    global _n
    _n += 1
    event_id = f"{_n:032x}"
    event = {
        "event_id": event_id,
        "timestamp": at_ns / S,
        "platform": "python",
        "level": "error",
        "release": release,
        "exception": {"values": [{"type": exc, "value": "card declined"}]},
    }
    body = b"\n".join(
        [
            orjson.dumps({"event_id": event_id}),
            orjson.dumps({"type": "event"}),
            orjson.dumps(event),
        ]
    )
    r = heron.post(
        "/api/1/envelope/",
        body,
        headers={"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={KEY}"},
    )
    assert r.status_code == 200, r.text
    return event_id


def issue_of(heron: Heron, event_id: str) -> dict[str, Any]:
    event = heron.event(event_id)
    assert event is not None
    return heron.issue(event["issue_id"])


def set_status(heron: Heron, issue_id: int, **body: Any) -> dict[str, Any]:
    r = heron.portal.call(
        lambda: heron.client.post(
            f"/api/v1/issues/{issue_id}/status",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_resolve_through_the_api_is_seen_by_the_next_event(heron: Heron) -> None:
    first = issue_of(heron, send(heron, NOW_NS - 100 * S))
    send(heron, NOW_NS - 90 * S)  # the issue is now in the writer's cache
    # Resolved in its last release (1.0), at NOW_NS (the app's clock).
    assert set_status(heron, first["id"], status="resolved")["resolved_release"] == "1.0"
    assert issue_of(heron, send(heron, NOW_NS + 5 * S))["status"] == "resolved"  # 1.0 again
    after = issue_of(heron, send(heron, NOW_NS + 10 * S, "1.1"))
    assert after["id"] == first["id"]
    assert after["status"] == "open" and after["regressed_ns"] == NOW_NS + 10 * S
    assert after["event_count"] == 4
    # The regression is cached too: the next event counts on from it.
    again = issue_of(heron, send(heron, NOW_NS + 20 * S, "1.1"))
    assert again["status"] == "open" and again["event_count"] == 5


def test_ignore_and_reopen_through_the_api_are_seen(heron: Heron) -> None:
    iid = issue_of(heron, send(heron, NOW_NS - 100 * S))["id"]
    set_status(heron, iid, status="ignored")
    row = issue_of(heron, send(heron, NOW_NS + 10 * S))
    assert row["status"] == "ignored" and row["event_count"] == 2
    set_status(heron, iid, status="open")
    row = issue_of(heron, send(heron, NOW_NS + 20 * S))
    assert row["status"] == "open" and row["regressed_ns"] is None and row["event_count"] == 3


def test_resolved_in_a_release_then_an_event_of_a_later_release(heron: Heron) -> None:
    iid = issue_of(heron, send(heron, NOW_NS - 100 * S, "1.0"))["id"]
    send(heron, NOW_NS - 90 * S, "2.0", exc="KeyError")  # 2.0 first seen after 1.0
    set_status(heron, iid, status="resolved", release="1.0")
    row = issue_of(heron, send(heron, NOW_NS - 80 * S, "1.0"))  # the fixed release itself
    assert row["status"] == "resolved" and row["event_count"] == 2
    row = issue_of(heron, send(heron, NOW_NS - 70 * S, "2.0"))
    assert row["status"] == "open" and row["regressed_ns"] == NOW_NS - 70 * S


def test_any_other_write_on_the_writer_is_seen(heron: Heron) -> None:
    """A write task (an import, a repair) may change issues: the cache is dropped."""
    iid = issue_of(heron, send(heron, NOW_NS - 100 * S))["id"]
    store = heron.store
    assert isinstance(store, DuckDBStore)
    store.write(lambda con: con.execute("UPDATE issues SET event_count = 100 WHERE id = ?", [iid]))
    assert issue_of(heron, send(heron, NOW_NS))["event_count"] == 101


def test_more_issues_than_the_cache_holds(tmp_path: Path) -> None:
    """Issues dropped from a full cache are read again, not created twice."""
    with running_heron(tmp_path) as heron:
        store = heron.store
        assert isinstance(store, DuckDBStore)
        store._issue_cache.max_issues = 2  # the bound is the subject
        bugs = [f"Error{i}" for i in range(5)]
        for rnd in range(3):
            ids = [send(heron, NOW_NS + rnd * S, exc=b) for b in bugs]
        rows = [issue_of(heron, e) for e in ids]
        assert len({r["id"] for r in rows}) == 5
        assert [r["event_count"] for r in rows] == [3] * 5
        assert len(store._issue_cache.issues) <= 2


def _state(fp: int) -> IssueState:
    return IssueState(fp, 1, fp, "t", None, "", "error", "open", 0, 0, 1, "", "", None, None, None)


def test_the_cache_drops_its_oldest_entries_past_its_bound() -> None:
    cache = IssueCache(max_issues=3)
    cache.add({(1, fp): _state(fp) for fp in (1, 2, 3)})
    cache.add({(1, 4): _state(4), (1, 5): _state(5)})
    assert list(cache.issues) == [(1, 3), (1, 4), (1, 5)]
    cache.clear()
    assert cache.issues == {}
