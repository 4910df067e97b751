"""Conformance for error tracking and logs: the same seed (tests/server/errors_seed.py)
stored in DuckDB and in each other backend gives the same answers, compared value for
value through the public query functions (issues list for every sort, status and
filter, issue detail, trends, event pages, event by id, log search pages, a trace's
logs, filter choices)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import pytest

from heron.server import query
from heron.server.query import LogQuery, TimeRange

from . import errors_seed
from .backends import BACKENDS, open_store
from .test_api import NOW_NS

PROJECT = errors_seed.PROJECT
HOUR_NS = 3600 * 10**9
RANGES = [
    TimeRange(NOW_NS - HOUR_NS, NOW_NS),
    TimeRange(NOW_NS - 4 * HOUR_NS, NOW_NS),
    TimeRange(NOW_NS - 8 * 60 * 10**9, NOW_NS - 60 * 10**9),
]


def plain(value: Any) -> Any:
    """Dataclasses as dicts, without the status-change times (the seed sets those from
    the wall clock as it stores each backend)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "status_changed_ns"}
    return value


def _seeded(kind: str, tmp: Path, chdb_dir: Path) -> Any:
    store = open_store(kind, tmp, chdb_dir)
    errors_seed.insert(store, errors_seed.build(NOW_NS))
    return store


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path) -> Iterator[Any]:
    store = _seeded("duckdb", tmp_path_factory.mktemp("errors-ref"), chdb_dir)
    yield store
    store.close()


@pytest.fixture(scope="module", params=[b for b in BACKENDS if b != "duckdb"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Any]:
    store = _seeded(request.param, tmp_path_factory.mktemp(request.param), chdb_dir)
    yield store
    store.close()


def same(backend: Any, reference: Any, fn: Any, *args: Any, **kw: Any) -> Any:
    got = fn(backend, PROJECT, *args, **kw)
    assert plain(got) == plain(fn(reference, PROJECT, *args, **kw)), (fn.__name__, args, kw)
    return got


@pytest.mark.parametrize("sort", ["last_seen", "first_seen", "events", "users"])
@pytest.mark.parametrize("status", [None, "open", "resolved", "ignored"])
def test_issue_lists(backend: Any, reference: Any, sort: str, status: str | None) -> None:
    for tr in RANGES:
        same(backend, reference, query.list_issues, tr, status=status, sort=sort)
        same(backend, reference, query.list_issues, tr, status=status, sort=sort, limit=2)
    for filters in ({"service": "shop"}, {"release": "2.0"}, {"environment": "staging"}):
        same(backend, reference, query.list_issues, RANGES[1], sort=sort, **filters)


def test_issue_pages_events_and_trends(backend: Any, reference: Any) -> None:
    issues = same(backend, reference, query.list_issues, RANGES[1])
    assert len(issues) == 5
    ids = [i.id for i in issues]
    same(backend, reference, query.issue_trends, RANGES[1], ids, 600, now_ns=NOW_NS)
    for iid in [*ids, 999]:
        for tr in RANGES:
            same(backend, reference, query.issue_detail, iid, tr, step_s=300)
            same(backend, reference, query.issue_detail, iid, tr, environment="prod")
        cursor = None
        while True:
            page = same(backend, reference, query.issue_events, iid, limit=2, cursor=cursor)
            cursor = page.next_cursor
            if cursor is None:
                break
        same(backend, reference, query.issue_events, iid, time_range=RANGES[0], limit=50)
        assert query.issue_exists(backend, PROJECT, iid) == (iid != 999)
    for event in errors_seed.build(NOW_NS).events:
        same(backend, reference, query.get_event, event.event_id)
    same(backend, reference, query.get_event, "f" * 32)
    for tr in RANGES:
        same(backend, reference, query.error_services, tr)
        same(backend, reference, query.error_releases, tr)
    assert query.has_errors(backend, PROJECT) and not query.has_errors(backend, PROJECT + 1)


@pytest.mark.parametrize(
    "q",
    [
        LogQuery(),
        LogQuery(limit=3),
        LogQuery(service="batch", limit=5),
        LogQuery(min_severity=17),
        LogQuery(text="ORDERS"),
        LogQuery(text="100% done_"),
        LogQuery(environment="staging"),
    ],
    ids=repr,
)
def test_log_search_pages(backend: Any, reference: Any, q: LogQuery) -> None:
    for tr in RANGES:
        assert pages(backend, tr, q) == pages(reference, tr, q)
        same(backend, reference, query.log_services, tr)


def pages(store: Any, tr: TimeRange, q: LogQuery) -> list[Any]:
    """Every page of a search, following the store's own cursors (positions differ
    between backends, the pages must not)."""
    out = []
    cursor = None
    while True:
        page = query.search_logs(store, PROJECT, tr, LogQuery(**{**asdict(q), "cursor": cursor}))
        out.append(plain(page.logs))
        cursor = page.next_cursor
        if cursor is None:
            return out


def test_trace_logs(backend: Any, reference: Any) -> None:
    seed = errors_seed.build(NOW_NS)
    trace = bytes.fromhex(seed.trace_with_logs)
    lines = same(backend, reference, query.trace_logs, trace)
    assert [line.severity_text for line in lines] == ["INFO", "WARNING", "ERROR"]
    assert same(backend, reference, query.trace_logs, bytes(16)) == []
