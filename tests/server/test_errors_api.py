"""The error-tracking and logs API over in-process ASGI, with the real lifespan and store,
on every backend of ``tests/server/backends.py`` (same seed, same assertions).

Seed: tests/server/errors_seed.py (five issues, their events, logs and one trace).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.store.clickhouse.logs import like_contains as ch_like_contains
from heron.server.store.duckdb.logs import like_contains

from . import errors_seed
from .backends import BACKENDS
from .ingest_client import app_store
from .test_api import AUTH, NOW_NS, TOKEN, Api

PASSWORD = "errors-api-password"


class ErrorsApi(Api):
    ids: dict[str, int]
    seed: errors_seed.Seed

    def post(self, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        headers = {**(AUTH if auth else {}), **kw.pop("headers", {})}
        return self.portal.call(lambda: self.client.post(path, headers=headers, **kw))


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[ErrorsApi]:
    data = tmp_path_factory.mktemp(f"errors-api-{request.param}")
    config = Config(
        data_dir=str(data),
        api_token=TOKEN,
        ingest_key="hk_errors_api_key_0123",
        admin_password=PASSWORD,
    )
    store = app_store(request.param, data, chdb_dir)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        seed = errors_seed.build(NOW_NS)
        ids = errors_seed.insert(store, seed)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        a = ErrorsApi(portal, client, app)
        a.ids, a.seed = ids, seed
        try:
            yield a
        finally:
            portal.call(client.aclose)


def issues(api: ErrorsApi, **params: Any) -> list[dict[str, Any]]:
    return api.ok("/api/v1/issues", **params)["issues"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/issues",
        "/api/v1/issues/1",
        "/api/v1/issues/1/events",
        f"/api/v1/events/{1:032x}",
        "/api/v1/logs",
        f"/api/v1/traces/{1:032x}/logs",
    ],
)
def test_every_route_requires_the_api_token(api: ErrorsApi, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = api.get(path, auth=False, headers=headers)
        assert r.status_code == 401, (headers, r.text)
    assert api.get(path).status_code in (200, 404)


# ------------------------------------------------------------------------- issues


def test_issue_list_default_range_and_fields(api: ErrorsApi) -> None:
    body = api.ok("/api/v1/issues")
    assert (body["sort"], body["status"], body["service"]) == ("last_seen", None, None)
    got = body["issues"]
    titles = [i["title"] for i in got]
    t = api.seed.titles()
    # Last hour: the ignored message (three hours ago) is out; newest last-seen first.
    assert titles == [t["zero"], t["xss"], t["value"], t["timeout"]]
    zero = got[0]
    assert zero["id"] == api.ids["zero"]
    assert (zero["events"], zero["event_count"], zero["users"]) == (5, 5, 3)
    assert zero["releases"] == ["1.0", "2.0"] and zero["environments"] == ["prod"]
    assert zero["services"] == ["shop"]
    assert (zero["first_release"], zero["last_release"]) == ("1.0", "2.0")
    assert (zero["status"], zero["regressed"], zero["level"]) == ("open", False, "error")
    assert zero["culprit"] == "shop.views in list_orders"
    assert zero["exc_type"] == "ZeroDivisionError"
    assert zero["last_seen_ns"] == max(
        e.time_ns for e in api.seed.events if e.explicit_fingerprint == ["zero"]
    )
    timeout = next(i for i in got if i["id"] == api.ids["timeout"])
    assert timeout["regressed"] is True and timeout["users"] == 0
    value = next(i for i in got if i["id"] == api.ids["value"])
    assert (value["status"], value["resolved_release"]) == ("resolved", "1.0")


def test_issue_filters_and_sorts(api: ErrorsApi) -> None:
    t = api.seed.titles()
    assert [i["title"] for i in issues(api, status="resolved")] == [t["value"]]
    assert [i["title"] for i in issues(api, service="inventory")] == [t["value"]]
    assert [i["title"] for i in issues(api, environment="staging")] == [t["value"]]
    by_release = issues(api, release="2.0")
    assert [i["title"] for i in by_release] == [t["zero"], t["timeout"]]
    # Counted under the filter: two of the five ZeroDivisionErrors are from 2.0.
    assert by_release[0]["events"] == 2 and by_release[0]["users"] == 1
    assert [i["events"] for i in issues(api, sort="events")] == [5, 3, 2, 1]
    assert [i["users"] for i in issues(api, sort="users")][0] == 3
    first = issues(api, sort="first_seen")
    assert [i["first_seen_ns"] for i in first] == sorted(
        (i["first_seen_ns"] for i in first), reverse=True
    )
    assert [i["title"] for i in issues(api, **{"from": "-4h"}, status="ignored")] == [t["slow"]]
    assert len(issues(api, limit=2)) == 2
    assert issues(api, service="nope") == []


@pytest.mark.parametrize(
    "params",
    [{"sort": "bogus"}, {"status": "closed"}, {"limit": 0}, {"from": "yesterday"}],
)
def test_issue_list_bad_params(api: ErrorsApi, params: dict[str, Any]) -> None:
    r = api.get("/api/v1/issues", params=params)
    assert r.status_code == 400 and r.json()["error"], r.text


def test_issue_detail(api: ErrorsApi) -> None:
    body = api.ok(f"/api/v1/issues/{api.ids['zero']}", step_s=300)
    assert body["issue"]["title"] == "ZeroDivisionError: division by zero"
    assert body["step_s"] == 300
    assert sum(p["events"] for p in body["series"]) == 5
    assert all(p["t"] % 300 == 0 for p in body["series"])
    assert body["by_release"] == [{"value": "1.0", "events": 3}, {"value": "2.0", "events": 2}]
    assert body["by_environment"] == [{"value": "prod", "events": 5}]
    assert body["by_service"] == [{"value": "shop", "events": 5}]
    tags = {t["key"]: t["values"] for t in body["tags"]}
    assert tags["browser"] == [
        {"value": "Firefox", "events": 3},
        {"value": "Chrome", "events": 2},
    ]
    latest = body["latest"]
    assert latest["event_id"] == api.seed.latest_zero_event
    assert latest["trace_id"] == api.seed.trace_with_logs
    assert latest["span_id"] == "0000000000000001"


def test_json_columns_come_back_as_json(api: ErrorsApi) -> None:
    latest = api.ok(f"/api/v1/issues/{api.ids['zero']}")["latest"]
    chain = latest["exceptions"]
    assert isinstance(chain, list) and [e["type"] for e in chain] == [
        "KeyError",
        "ZeroDivisionError",
    ]
    frames = chain[1]["frames"]
    assert [f["in_app"] for f in frames] == [False, True]
    assert frames[1]["vars"] == {"total": "10", "count": "0", "password": "[Filtered]"}
    assert frames[1]["pre_context"] == ["def handler(x):", "    y = x + 1"]
    assert chain[1]["mechanism"] == {"type": "flask", "handled": False}
    assert isinstance(latest["breadcrumbs"], list) and latest["breadcrumbs"][0]["data"] == {
        "status_code": 200
    }
    assert latest["request"]["headers"]["Authorization"] == "[Filtered]"
    assert latest["user"] == {}  # the newest event is anonymous
    assert latest["tags"] == {"browser": "Firefox", "region": "eu"}
    assert latest["contexts"]["runtime"] == {"name": "CPython", "version": "3.12.3"}
    assert latest["extra"] == {"order_count": 0}
    assert latest["handled"] is False


def test_issue_detail_unknown_and_bad(api: ErrorsApi) -> None:
    r = api.get("/api/v1/issues/999999")
    assert r.status_code == 404 and "999999" in r.json()["error"]
    assert api.get("/api/v1/issues/abc").status_code == 400
    assert api.get("/api/v1/issues/0").status_code == 400
    assert api.get(f"/api/v1/issues/{api.ids['zero']}", params={"step_s": 5}).status_code == 400


def test_issue_detail_outside_range_keeps_latest_event(api: ErrorsApi) -> None:
    body = api.ok(f"/api/v1/issues/{api.ids['slow']}")  # its one event is 3 h old
    assert body["issue"]["events"] == 0 and body["issue"]["event_count"] == 1
    assert body["latest"]["message"] == "Payment provider slow"
    assert body["latest"]["exceptions"] == [] and body["latest"]["trace_id"] is None


# ------------------------------------------------------------------------- events


def test_issue_events_pages(api: ErrorsApi) -> None:
    path = f"/api/v1/issues/{api.ids['zero']}/events"
    first = api.ok(path, limit=2)
    assert first["issue_id"] == api.ids["zero"] and len(first["events"]) == 2
    seen = [e["event_id"] for e in first["events"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.ok(path, limit=2, cursor=cursor)
        seen += [e["event_id"] for e in page["events"]]
        cursor = page["next_cursor"]
    expected = sorted(
        (e for e in api.seed.events if e.explicit_fingerprint == ["zero"]),
        key=lambda e: -e.time_ns,
    )
    assert seen == [e.event_id for e in expected]
    e0 = first["events"][0]
    assert (e0["release"], e0["transaction"], e0["user_key"]) == ("2.0", "GET /orders", None)
    assert first["events"][1]["user_key"] == "id:u3"
    assert api.get("/api/v1/issues/999999/events").status_code == 404
    assert api.get(path, params={"cursor": "garbage"}).status_code == 400


def test_event_by_id(api: ErrorsApi) -> None:
    eid = api.seed.latest_zero_event
    body = api.ok(f"/api/v1/events/{eid}")
    assert body["event_id"] == eid and body["issue_id"] == api.ids["zero"]
    assert body["source"] == "sentry" and body["sdk"] == "sentry.python/2.75.0"
    dashed = f"{eid[:8]}-{eid[8:12]}-{eid[12:16]}-{eid[16:20]}-{eid[20:]}".upper()
    assert api.ok(f"/api/v1/events/{dashed}")["event_id"] == eid
    assert api.get(f"/api/v1/events/{'f' * 32}").status_code == 404
    assert api.get("/api/v1/events/nothex").status_code == 400


# ------------------------------------------------------------------------- status


def test_status_changes(api: ErrorsApi) -> None:
    iid = api.ids["timeout"]
    r = api.post(f"/api/v1/issues/{iid}/status", json={"status": "resolved", "release": "2.1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["resolved_release"], body["regressed"]) == (
        "resolved",
        "2.1",
        False,
    )
    assert body["status_changed_ns"] == NOW_NS
    r = api.post(f"/api/v1/issues/{iid}/status", json={"status": "resolved"})
    assert r.json()["resolved_release"] == "2.0"  # default: the issue's last release
    r = api.post(f"/api/v1/issues/{iid}/status", json={"status": "ignored"})
    assert r.json()["status"] == "ignored"
    assert [i["id"] for i in issues(api, status="ignored")] == [iid]
    r = api.post(f"/api/v1/issues/{iid}/status", json={"status": "open"})
    body = r.json()
    assert (body["status"], body["resolved_release"], body["regressed"]) == ("open", None, False)
    assert body["regressed_ns"] is None  # reopening by hand is not a regression


def test_status_change_errors_and_auth(api: ErrorsApi) -> None:
    iid = api.ids["zero"]
    path = f"/api/v1/issues/{iid}/status"
    assert api.post(path, json={"status": "closed"}).status_code == 400
    assert api.post(path, json={}).status_code == 400
    assert api.post(path, content=b"not json").status_code == 400
    assert api.post("/api/v1/issues/999999/status", json={"status": "open"}).status_code == 404
    assert api.post(path, auth=False, json={"status": "resolved"}).status_code == 401
    assert api.ok(f"/api/v1/issues/{iid}")["issue"]["status"] == "open"


def test_status_change_with_a_session_needs_the_csrf_token(api: ErrorsApi) -> None:
    page = api.get("/login", auth=False, headers={"accept": "text/html"}).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    r = api.post(
        "/login",
        auth=False,
        data={"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert r.status_code == 303
    try:
        iid = api.ids["xss"]
        path = f"/api/v1/issues/{iid}/status"
        assert api.get("/api/v1/issues", auth=False).status_code == 200  # session reads
        r = api.post(path, auth=False, json={"status": "ignored"})
        assert r.status_code == 403, r.text
        assert api.ok(f"/api/v1/issues/{iid}")["issue"]["status"] == "open"
        ui = api.get("/issues", auth=False, headers={"accept": "text/html"}).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', ui)
        assert csrf
        r = api.post(
            path, auth=False, json={"status": "ignored"}, headers={"x-csrf-token": csrf[1]}
        )
        assert r.status_code == 200 and r.json()["status"] == "ignored"
        r = api.post(path, auth=False, json={"status": "open"}, headers={"x-csrf-token": csrf[1]})
        assert r.json()["status"] == "open"
    finally:
        api.client.cookies.clear()


# ------------------------------------------------------------------------- logs


def logs(api: ErrorsApi, **params: Any) -> list[dict[str, Any]]:
    return api.ok("/api/v1/logs", **params)["logs"]  # type: ignore[no-any-return]


def test_logs_search(api: ErrorsApi) -> None:
    got = logs(api)
    times = [line["time_ns"] for line in got]
    assert times == sorted(times, reverse=True)
    assert "long ago" not in [line["body"] for line in got]  # 200 minutes ago
    assert len(got) == 20  # 3 in the trace + 5 + 12 batch lines
    assert {line["body"] for line in logs(api, severity="error")} == {
        "division by zero while listing orders",
        "out of memory",
        errors_seed.XSS_LOG,
    }
    assert [line["body"] for line in logs(api, severity="fatal")] == ["out of memory"]
    assert [line["severity"] for line in logs(api, severity="21")] == ["fatal"]
    assert {line["service"] for line in logs(api, service="inventory")} == {"inventory"}
    assert [line["body"] for line in logs(api, text="ORDERS FOR")] == ["listing orders for u3"]
    assert len(logs(api, environment="staging")) == 0


def test_logs_text_is_literal(api: ErrorsApi) -> None:
    # % and _ are wildcards in LIKE: escaped, they match only themselves.
    assert [line["body"] for line in logs(api, text="100% done_")] == [errors_seed.LITERAL_LOG]
    assert [line["body"] for line in logs(api, text="100%")] == [errors_seed.LITERAL_LOG]
    assert logs(api, text="'; DROP TABLE logs; --") == []
    assert len(logs(api)) == 20
    assert like_contains("a%b_c\\") == "%a\\%b\\_c\\\\%"
    assert ch_like_contains("a%b_c\\") == "%a\\%b\\_c\\\\%"


def test_logs_link_to_trace_and_issue(api: ErrorsApi) -> None:
    trace = api.seed.trace_with_logs
    got = logs(api, trace_id=trace)
    assert len(got) == 3 and all(line["trace_id"] == trace for line in got)
    error = next(line for line in got if line["severity"] == "error")
    assert error["event_id"] == api.seed.latest_zero_event
    assert error["issue_id"] == api.ids["zero"]
    assert error["span_id"] == "0000000000000001"
    assert error["attributes"] == {"exception.type": "ZeroDivisionError"}
    assert all(line["issue_id"] is None for line in got if line is not error)


def test_logs_pages_neither_skip_nor_repeat(api: ErrorsApi) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"service": "batch", "limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = api.ok("/api/v1/logs", **params)
        seen += [line["body"] for line in body["logs"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [f"batch line {i:02d}" for i in range(11, -1, -1)]


@pytest.mark.parametrize(
    "params",
    [
        {"severity": "loud"},
        {"severity": "99"},
        {"trace_id": "xyz"},
        {"limit": 5000},
        {"cursor": "a:b"},
    ],
)
def test_logs_bad_params(api: ErrorsApi, params: dict[str, Any]) -> None:
    r = api.get("/api/v1/logs", params=params)
    assert r.status_code == 400, r.text


def test_trace_logs(api: ErrorsApi) -> None:
    trace = api.seed.trace_with_logs
    body = api.ok(f"/api/v1/traces/{trace}/logs")
    assert body["trace_id"] == trace
    assert [line["severity_text"] for line in body["logs"]] == ["INFO", "WARNING", "ERROR"]
    assert api.ok(f"/api/v1/traces/{'ab' * 16}/logs")["logs"] == []
    assert api.get("/api/v1/traces/nothex/logs").status_code == 400
