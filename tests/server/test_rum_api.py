"""The RUM read API (``/api/v1/rum/*``) over in-process ASGI with the real lifespan, on
each backend of ``tests/server/backends.py``: data put in through ``store.submit_rum``
(tests/ui/rum_seed.py), figures checked, bad parameters answered 400 with a message,
unknown sessions 404, anonymous callers 401."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio.from_thread
import httpx
import pytest

from heron.server.app import create_app
from heron.server.config import Config
from tests.server.backends import BACKENDS, open_store
from tests.ui import rum_seed

from .test_api import NOW_NS, TOKEN, Api

KEY = "hk_rum_api_test_key"
PYTHON_EVENT = {
    "event_id": "cd" * 16,
    "timestamp": NOW_NS / 1e9 - 60,
    "platform": "python",
    "tags": {"service": "shop"},
    "exception": {"values": [{"type": "KeyError", "value": "'sku'"}]},
}


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Api]:
    data: Path = tmp_path_factory.mktemp("rum-api")
    config = Config(data_dir=str(data), api_token=TOKEN, ingest_key=KEY)
    store = open_store(request.param, data, chdb_dir)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        seed = rum_seed.build(NOW_NS)
        assert store.submit_rum(seed.write(app.state.ctx.project_id)).result(30) == len(seed.events)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://heron.test"
        )
        for event in (rum_seed.js_error_event(NOW_NS), PYTHON_EVENT):
            r = portal.call(
                lambda e=event: client.post(
                    "/api/1/store/", json=e, params={"sentry_key": KEY, "sentry_version": "7"}
                )
            )
            assert r.status_code == 200, r.text
        try:
            yield Api(portal, client, app)
        finally:
            portal.call(client.aclose)


def vital(body: dict[str, object], name: str, device: str | None = None) -> dict[str, object]:
    ov = body["overview"]
    assert isinstance(ov, dict)
    vitals = ov["by_device"][device] if device else ov["vitals"]
    return next(v for v in vitals if v["name"] == name)


def test_overview_p75_ratings_shares_and_device_split(api: Api) -> None:
    body = api.ok("/api/v1/rum/overview")
    lcp = vital(body, "LCP")
    assert lcp["count"] == 11
    assert lcp["p75"] == pytest.approx(3000, rel=0.08)
    assert lcp["rating"] == "needs-improvement"
    assert (lcp["good"], lcp["needs_improvement"], lcp["poor"]) == pytest.approx(
        (8 / 11, 1 / 11, 2 / 11)
    )
    assert vital(body, "CLS")["p75"] == pytest.approx(0.3, rel=0.08)
    assert vital(body, "LCP", "mobile")["rating"] == "poor"
    assert vital(body, "LCP", "desktop")["count"] == 9
    assert body["overview"]["views"] == 4
    assert body["overview"]["errors"] == 2
    # loads 800, 1500, 4200 ms: the p75 falls in 4200's bucket
    assert body["overview"]["load_p75_ms"] == pytest.approx(4200, rel=0.08)
    assert sum(body["trend"]["views"]) == 4
    assert body["trend"]["step_s"] == 60 and len(body["trend"]["t"]) == 61
    assert "/checkout" in body["choices"]["page"]
    assert body["from"] and body["page"] is None


def test_filters_apply_to_every_figure(api: Api) -> None:
    body = api.ok("/api/v1/rum/overview", device="mobile", page="/checkout")
    assert vital(body, "LCP")["count"] == 2
    assert body["overview"]["views"] == 1
    assert (body["device"], body["page"]) == ("mobile", "/checkout")
    assert api.ok("/api/v1/rum/overview", browser="Netscape")["overview"]["views"] == 0


def test_pages_breakdown_by_page_browser_device(api: Api) -> None:
    pages = api.ok("/api/v1/rum/pages")["groups"]
    assert pages[0]["value"] == "/products/:id"  # 1 view each: most vital samples first
    by_page = {g["value"]: g for g in pages}
    assert set(by_page) == {"/products/:id", "/cart", "/checkout", rum_seed.XSS_PAGE}
    assert by_page["/checkout"]["load_p75_ms"] == pytest.approx(4200, rel=0.08)
    assert by_page["/products/:id"]["errors"] == 1
    browsers = {g["value"] for g in api.ok("/api/v1/rum/pages", by="browser")["groups"]}
    assert browsers == {"Chrome", "Mobile Safari", "Firefox"}
    devices = api.ok("/api/v1/rum/pages", by="device", limit=1)["groups"]
    assert [g["value"] for g in devices] == ["desktop"]


def test_page_detail(api: Api) -> None:
    d = api.ok("/api/v1/rum/page", page="/products/:id")["detail"]
    assert d["page"] == "/products/:id"
    assert d["resources"][0]["name"] == "https://shop.example/static/hero.jpg"
    assert d["resources"][0]["p75"] == 2300
    assert d["interactions"][0]["target"] == "button#add-to-cart"
    assert d["long_frames"][0]["count"] == 1
    assert d["errors"][0]["target"] == "cart is undefined"
    assert [s["session_id"] for s in d["sessions"]] == [rum_seed.SESSION_DESKTOP]
    assert d["slowest_views"][0]["trace_id"] == rum_seed.PAGE_TRACE
    assert d["overview"]["vitals"][0]["count"] == 8


def test_sessions_and_one_session(api: Api) -> None:
    found = api.ok("/api/v1/rum/sessions")["sessions"]
    assert [s["session_id"] for s in found] == [
        rum_seed.SESSION_XSS,
        rum_seed.SESSION_MOBILE,
        rum_seed.SESSION_DESKTOP,
    ]
    desktop = found[2]
    assert (desktop["views"], desktop["errors"], desktop["user_id"]) == (2, 1, "u-42")
    assert desktop["entry_page"] == "/products/:id"
    assert api.ok("/api/v1/rum/sessions", user="u-42")["sessions"][0]["device"] == "desktop"
    assert api.ok("/api/v1/rum/sessions", limit=1)["sessions"][0]["session_id"] == (
        rum_seed.SESSION_XSS
    )
    tl = api.ok(f"/api/v1/rum/sessions/{rum_seed.SESSION_DESKTOP}")
    kinds = [e["kind"] for e in tl["events"]]
    assert kinds[0] == "view" and kinds.count("vital") == 12 and kinds[-1] == "view"
    times = [e["time_ns"] for e in tl["events"]]
    assert times == sorted(times)
    fetch = next(e for e in tl["events"] if e["kind"] == "fetch")
    assert fetch["trace_id"] == rum_seed.FETCH_TRACE
    assert fetch["attributes"]["status"] == 200
    assert (tl["views"], tl["errors"], tl["user_id"]) == (2, 1, "u-42")


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v1/rum/overview", {"device": "toaster"}, "device must be one of"),
        ("/api/v1/rum/overview", {"from": "yesterday"}, "'from'"),
        ("/api/v1/rum/overview", {"from": "now", "to": "-1h"}, "time range is empty"),
        ("/api/v1/rum/pages", {"by": "country"}, "by must be one of"),
        ("/api/v1/rum/pages", {"limit": "0"}, "limit"),
        ("/api/v1/rum/page", {}, "'page' parameter is required"),
        ("/api/v1/rum/sessions", {"limit": "100000"}, "limit"),
        ("/api/v1/rum/sessions/has%20space", {}, "session id must be"),
        ("/api/v1/rum/sessions/" + "x" * 65, {}, "session id must be"),
        ("/api/v1/rum/overview", {"page": "x" * 3000}, "longer than"),
    ],
)
def test_bad_parameters_are_400_with_a_message(
    api: Api, path: str, params: dict[str, str], message: str
) -> None:
    r = api.get(path, params=params)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert api.get("/api/v1/rum/overview").status_code == 200  # still serving


def test_unknown_session_is_404_and_anonymous_is_401(api: Api) -> None:
    r = api.get("/api/v1/rum/sessions/sessNobody000")
    assert r.status_code == 404 and "sessNobody000" in r.json()["error"]
    for path in ("/api/v1/rum/overview", f"/api/v1/rum/sessions/{rum_seed.SESSION_MOBILE}"):
        assert api.get(path, auth=False).status_code == 401


def test_issues_filter_by_platform(api: Api) -> None:
    everything = api.ok("/api/v1/issues")
    assert {i["title"] for i in everything["issues"]} == {
        "TypeError: cart is undefined",
        "KeyError: 'sku'",
    }
    js = api.ok("/api/v1/issues", platform="javascript")
    assert js["platform"] == "javascript"
    assert [i["title"] for i in js["issues"]] == ["TypeError: cart is undefined"]
    assert [i["title"] for i in api.ok("/api/v1/issues", platform="python")["issues"]] == [
        "KeyError: 'sku'"
    ]
    assert api.ok("/api/v1/issues", platform="cobol")["issues"] == []
