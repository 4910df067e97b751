"""Secrets in span data from a plain OpenTelemetry SDK never reach storage or any page.

The real ``opentelemetry-sdk`` with its OTLP/HTTP exporter sends, to a real ``heron serve``,
spans carrying every case of issue 9: ``url.full`` with ``?token=`` and a password in its
userinfo, ``url.query``, ``http.url`` and ``http.target`` (older names), header attributes
(authorization, cookie, x-api-key, set-cookie), an exception event whose message holds
``password=...``, a span named ``GET /cb?token=...``, a resource attribute and an attribute
under a key from ``scrub_keys``. Then no canary may appear in any read-API response, any
page (trace pages, endpoint tables, database pages...), or the bytes of the data
directory; and what is not a secret (paths, ordinary query parameters, header names) is
still there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.conftest import HeronProcess, make_heron

pytestmark = pytest.mark.e2e

PASSWORD = "span-scrub-admin-pw"
SERVICE = "canary-shop"
C = {
    "name": "SCRTname01q",
    "url_full": "SCRTfull02q",
    "userinfo": "SCRTuser03q",
    "url_query": "SCRTquery04q",
    "http_url": "SCRThttpurl05q",
    "http_target": "SCRTtarget06q",
    "authorization": "SCRTauth07q",
    "cookie": "SCRTcookie08q",
    "api_key": "SCRTapikey09q",
    "set_cookie": "SCRTsetck10q",
    "exception": "SCRTexc11q",
    "resource": "SCRTres12q",
    "configured": "SCRTssn13q",
    "client_url": "SCRTclient14q",
}
# Kept on purpose: each must still be found, which proves every search can see a match.
KEPT = [
    "https://shop.test/cb?token=[Filtered]&page=2",
    "lang=en",
    "login failed password=[Filtered]",
    "http.request.header.authorization",
    "http.request.header.x-api-key",
    "text/html",
]


def leaks(text: str) -> list[str]:
    return [name for name, canary in C.items() if canary in text]


def send_spans(url: str, key: str) -> None:
    resource = Resource.create({"service.name": SERVICE, "app.db_password": C["resource"]})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"x-heron-key": key})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.span_scrub")
    current = {
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "url.full": f"https://alice:{C['userinfo']}@shop.test/cb?token={C['url_full']}&page=2",
        "url.path": "/cb",
        "url.query": f"token={C['url_query']}&page=2",
        "http.request.header.authorization": [f"Bearer {C['authorization']}"],
        "http.request.header.cookie": [f"sessionid={C['cookie']}; theme=dark"],
        "http.request.header.x-api-key": [C["api_key"]],
        "http.request.header.accept": ["text/html"],
        "http.response.header.set-cookie": [f"sid={C['set_cookie']}; HttpOnly"],
        "customer.ssn": C["configured"],
    }
    with tracer.start_as_current_span(
        f"GET /cb?token={C['name']}", kind=SpanKind.SERVER, attributes=current
    ):
        db = {"db.system.name": "sqlite", "db.query.text": "SELECT * FROM orders WHERE id = ?"}
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT, attributes=db):
            pass
        client = {
            "http.request.method": "POST",
            "url.full": f"https://pay.test/v1/charge?access_token={C['client_url']}&amount=5",
        }
        with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes=client):
            pass
    old = {
        "http.method": "GET",
        "http.status_code": 500,
        "http.route": "/legacy",
        "http.url": f"http://shop.test/legacy?api_key={C['http_url']}&lang=en",
        "http.target": f"/legacy?password={C['http_target']}&lang=en",
    }
    with tracer.start_as_current_span("GET /legacy", kind=SpanKind.SERVER, attributes=old) as span:
        try:
            raise ValueError(f"login failed password={C['exception']}")
        except ValueError as e:
            span.record_exception(e)
            span.set_status(Status(StatusCode.ERROR))
    provider.shutdown()


METRIC = "canary.requests"


def send_metrics(url: str, key: str) -> None:
    """A counter from the real OTel metrics SDK whose labels hold secrets."""
    exporter = OTLPMetricExporter(endpoint=f"{url}/v1/metrics", headers={"x-heron-key": key})
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": SERVICE})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    labels = {
        "url.full": f"https://shop.test/cb?token={C['url_full']}&page=2",
        "customer.ssn": C["configured"],
        "http.request.header.x-api-key": C["api_key"],
        "note": f"login failed password={C['exception']}",
    }
    provider.get_meter("tests.span_scrub").create_counter(METRIC).add(3, labels)
    assert reader.force_flush(10_000)
    provider.shutdown()


def sign_in(h: HeronProcess) -> httpx.Client:
    client = httpx.Client(base_url=h.url, headers={"accept": "text/html"}, timeout=30)
    try:
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page
        form = {"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)}
        assert client.post("/login", data=form).status_code == 303
    except BaseException:
        client.close()
        raise
    return client


@pytest.fixture(scope="module")
def heron(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeronProcess]:
    tmp = tmp_path_factory.mktemp("span-scrub")
    h = make_heron(tmp, HERON_ADMIN_PASSWORD=PASSWORD, HERON_SCRUB_KEYS="ssn").start()
    try:
        send_spans(h.url, h.key)
        send_metrics(h.url, h.key)
        # Spans, rollups, the error event and the database analysis (every ~10 s).
        h.wait_for("/api/v1/issues", lambda j: len(j["issues"]) == 1)
        h.wait_for("/api/v1/db/queries", lambda j: len(j["queries"]) == 1, timeout=60)
        h.wait_for("/api/v1/metrics", lambda j: METRIC in {m["name"] for m in j["metrics"]})
        add_alerting(h)
        yield h
    finally:
        h.stop()


# Rules whose alert labels and annotations come from the secret-bearing telemetry: the
# metric grouped by its (scrubbed) URL label, the query's fingerprint p95, the new issue.
ALERT_RULES = [
    {"name": "by url", "interval": "10s", "annotations": {"summary": "{{ labels }}"},
     "condition": {"kind": "metric", "metric": METRIC, "agg": "increase", "by": ["url.full", "note"],
                   "window": "1h", "op": ">=", "threshold": 0}},
    {"name": "slow sql", "interval": "10s", "annotations": {"summary": "{{ labels }} {{ link }}"},
     "condition": {"kind": "db", "event": "fingerprint_p95", "window": "1h", "threshold": -1}},
    {"name": "new issue", "interval": "10s", "annotations": {"description": "{{ labels }}"},
     "condition": {"kind": "error", "event": "new_issue", "window": "1h"}},
]  # fmt: skip


def add_alerting(h: HeronProcess) -> None:
    """The rules above, an SLO and a silence; then wait until the engine fired them all."""
    auth = {"Authorization": f"Bearer {h.token}"}
    slo = {"name": "cb up", "service": SERVICE}
    silence = {
        "matchers": [{"label": "alertname", "value": "by url"}],
        "starts": "2020-01-01T00:00:00Z",
        "ends": "2099-01-01T00:00:00Z",
    }
    for path, body in (
        *(("/api/v1/alerts/rules", rule) for rule in ALERT_RULES),
        ("/api/v1/slos", slo),
        ("/api/v1/alerts/silences", silence),
    ):
        r = httpx.post(f"{h.url}{path}", json=body, headers=auth, timeout=30)
        assert r.status_code == 201, r.text
    names = {r["name"] for r in ALERT_RULES}
    h.wait_for(
        "/api/v1/alerts",
        lambda j: names <= {a["labels"]["alertname"] for a in j["alerts"]},
        timeout=60,
    )


def alert_ids(h: HeronProcess) -> dict[str, str]:
    """An id for each alerting path parameter (the objects ``add_alerting`` made)."""
    first = {
        "{rule_id}": ("/api/v1/alerts/rules", "rules"),
        "{slo_id}": ("/api/v1/slos", "slos"),
        "{silence_id}": ("/api/v1/alerts/silences", "silences"),
        "{channel_id}": ("/api/v1/alerts/channels", "channels"),
    }
    return {k: str(h.api(path).json()[key][0]["id"]) for k, (path, key) in first.items()}


def loadtest_ids(h: HeronProcess) -> tuple[str, str]:
    """Two finished load-test runs (a baseline, then a run) whose windows hold every span
    of the test (made once)."""
    runs = h.api("/api/v1/loadtests", name="scrub").json()["runs"]
    auth = {"Authorization": f"Bearer {h.token}"}
    while len(runs) < 2:
        body = {"name": "scrub", "start_ns": 0, "labels": {"suite": "span-scrub"}}
        run = httpx.post(f"{h.url}/api/v1/loadtests", json=body, headers=auth, timeout=10)
        assert run.status_code == 201, run.text
        path = f"/api/v1/loadtests/{run.json()['id']}/finish"
        done = httpx.post(f"{h.url}{path}", json={}, headers=auth, timeout=10)
        assert done.status_code == 200, done.text
        runs = h.api("/api/v1/loadtests", name="scrub").json()["runs"]
    return str(runs[1]["id"]), str(runs[0]["id"])


def ids(h: HeronProcess) -> dict[str, Any]:
    traces = h.api("/api/v1/traces", limit=100).json()["traces"]
    (issue,) = h.api("/api/v1/issues").json()["issues"]
    events = h.api(f"/api/v1/issues/{issue['id']}/events").json()["events"]
    (fp,) = [q["fingerprint"] for q in h.api("/api/v1/db/queries").json()["queries"]]
    return {
        "traces": [t["trace_id"] for t in traces],
        "issue": str(issue["id"]),
        "event": events[0]["event_id"],
        "fingerprint": fp,
    }


def test_endpoints_come_from_names_without_their_query(heron: HeronProcess) -> None:
    r = heron.api(f"/api/v1/services/{SERVICE}/endpoints")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert {e["endpoint"] for e in doc["endpoints"]} == {"GET /cb", "GET /legacy"}
    # The database query is grouped under the endpoint of the request that ran it.
    (query,) = heron.api("/api/v1/db/queries", endpoint="GET /cb").json()["queries"]
    assert query["service"] == SERVICE and "orders" in query["display"]


def test_no_api_response_holds_a_secret(heron: HeronProcess) -> None:
    got = ids(heron)
    assert len(got["traces"]) == 2
    fill = {
        "{service}": SERVICE,
        "{trace_id}": got["traces"][0],
        "{fingerprint}": got["fingerprint"],
        "{issue_id}": got["issue"],
        "{event_id}": got["event"],
        **alert_ids(heron),
        "{run_id}": (runs := loadtest_ids(heron))[1],
    }
    paths = [p for p, ops in heron.api("/openapi.json").json()["paths"].items() if "get" in ops]
    urls = [*paths, *(f"/api/v1/traces/{t}" for t in got["traces"])]
    # Routes that answer only with parameters: the metric with secret labels, by them.
    required: dict[str, dict[str, Any]] = {
        "/api/v1/metrics/labels": {"metric": METRIC},
        "/api/v1/metrics/label-values": {"metric": METRIC, "key": "url.full"},
        "/api/v1/metrics/query": {"metric": METRIC, "agg": "increase", "by": "url.full,note"},
        "/api/v1/dashboards/default": {"service": SERVICE},
        "/api/v1/rum/page": {"page": "/cb"},
        # Every endpoint's figures and reasons, both windows holding the test's spans.
        "/api/v1/loadtests/{run_id}/compare": {"baseline": runs[0]},
    }
    texts = []
    for url in urls:
        needed = required.get(url, {})
        if "{dashboard_id}" in url:
            continue  # no dashboard is saved here (tests/server/test_sql_canaries.py reads one)
        if "{session_id}" in url:
            continue  # no browser session here (tests/server/test_sql_canaries.py reads one)
        for placeholder, value in fill.items():
            url = url.replace(placeholder, value)
        for params in ({}, {"service": SERVICE, "endpoint": "GET /cb", "limit": 100}):
            r = heron.api(url, **{**needed, **params})
            assert r.status_code == 200, (url, params, r.text)
            assert leaks(r.text) == [], (url, r.text)
            texts.append(r.text)
    everything = "\n".join(texts)
    assert [k for k in KEPT if k not in everything] == []


def test_no_page_holds_a_secret(heron: HeronProcess) -> None:
    got = ids(heron)
    base, run = loadtest_ids(heron)
    ui = sign_in(heron)
    pages = [
        "/",
        f"/service?service={SERVICE}",
        f"/endpoint?service={SERVICE}&endpoint=GET%20/cb",
        f"/traces?service={SERVICE}",
        *(f"/traces/{t}" for t in got["traces"]),
        "/issues",
        f"/issues/{got['issue']}",
        "/logs",
        "/db",
        f"/db/query?fp={got['fingerprint']}",
        "/db/slow",
        "/n-plus-one",
        "/map",
        "/alerts",
        "/alerts/rules",
        *(f"/alerts/rules/{r['id']}" for r in heron.api("/api/v1/alerts/rules").json()["rules"]),
        "/alerts/silences",
        "/alerts/notifications",
        "/slos",
        "/rum",
        "/rum/page?page=/cb",
        "/rum/sessions",
        "/analysis",
        f"/analysis?service={SERVICE}",
        "/loadtests",
        f"/loadtests/{run}",
        f"/loadtests/{run}/compare?baseline={base}",
    ]
    try:
        html = [ui.get(path) for path in pages]
    finally:
        ui.close()
    for path, r in zip(pages, html, strict=True):
        assert r.status_code == 200, (path, r.text[:2000])
        assert leaks(r.text) == [], (path, r.text)
    assert "GET /cb" in html[1].text and "page=2" in "".join(r.text for r in html)


def test_no_secret_in_the_data_directory(heron: HeronProcess) -> None:
    heron.stop()
    files = [p for p in Path(heron.data_dir).rglob("*") if p.is_file()]
    data = b"".join(p.read_bytes() for p in files)
    assert SERVICE.encode() in data
    assert [name for name, canary in C.items() if canary.encode() in data] == []
