"""Secret canaries: literals planted in queries never reach storage or any API response.

Statements full of planted literals (every quoting style of five dialects, numbers,
comments, sqlcommenter tags, statements cut short, span names that repeat the statement,
``db.query.parameter.*`` attributes, EXPLAIN plans) go through the real OTLP endpoint as
protobuf and as JSON, with default settings. Then no canary may appear in any row of any
table, in the bytes of the DuckDB file or its WAL, or in any read-API response. A control
word stored in the same statements (a table name) proves each search can see a match.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from fastapi import FastAPI
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.store.duckdb_store import DuckDBStore
from tests.ui import rum_seed

NS = 1_000_000_000
MS = 1_000_000
NOW_NS = 1_800_000_030 * NS
TOKEN = "ht_canary_test_token_0123456789"
KEY = "hk_canary_test_key_0123456789"
CONTROL = "ctrlword_orders"  # a table name: kept, so every search must find it

CANARIES = [f"cnry{i:02d}x" for i in range(14)] + ["8675309123", "5551234987"]
C = CANARIES


def plant(template: str) -> str:
    """The template with <CTRL> as the control word and <Cn> as canary n."""
    text = template.replace("<CTRL>", CONTROL)
    for n in reversed(range(len(CANARIES))):
        text = text.replace(f"<C{n}>", CANARIES[n])
    return text


# (db.system.name, statement): each plants canaries where that dialect puts literals.
STATEMENTS: list[tuple[str | None, str]] = [
    (system, plant(template))
    for system, template in [
        ("postgresql", "SELECT * FROM <CTRL> WHERE email = '<C0>@x.org' AND n = <C14>"),
        ("postgresql", "SELECT id FROM <CTRL> WHERE note = E'it\\'s <C1>' AND b = $q$<C2>$q$"),
        ("postgresql", "/*traceparent='00-ab',user='<C3>'*/ UPDATE <CTRL> SET s = 1 -- <C4>"),
        ("mysql", "INSERT INTO <CTRL> (a, b) VALUES (\"<C5>\", 'x\\'<C6>'), (1, 2) # <C4>"),
        ("sqlite", "SELECT * FROM <CTRL> WHERE id IN (<C15>, 7) AND t = '<C7>'"),
        ("mssql", "SELECT TOP 1 * FROM [<CTRL>] WHERE n = N'<C8>'"),
        (None, "SELECT * FROM <CTRL> WHERE k = '<C9>'"),
        ("postgresql", "SELECT * FROM <CTRL> WHERE cut = '<C10> and the statement ends here"),
        ("mysql", "SELECT * FROM <CTRL> WHERE a = 'x' /* cut short <C11>"),
    ]
]
PLAN = plant("Index Scan on <CTRL>\n  Index Cond: (email = '<C12>'::text)\n  Filter: (n > <C14>)")
PARAMETER = C[13]


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def pb_spans(trace: int) -> list[PbSpan]:
    """A request with one span per statement (one repeated six times, an N+1), a plan."""
    tid, root = trace.to_bytes(16, "big"), (trace * 1000).to_bytes(8, "big")
    start = NOW_NS - 60 * NS + trace * MS

    def child(i: int, name: str, attrs: list[KeyValue], dur_ms: int = 120) -> PbSpan:
        return PbSpan(
            trace_id=tid,
            span_id=(trace * 1000 + i).to_bytes(8, "big"),
            parent_span_id=root,
            name=name,
            kind=3,
            start_time_unix_nano=start + i * MS,
            end_time_unix_nano=start + i * MS + dur_ms * MS,
            attributes=attrs,
        )

    spans = [
        PbSpan(
            trace_id=tid,
            span_id=root,
            name="GET /leaky",
            kind=2,
            start_time_unix_nano=start,
            end_time_unix_nano=start + 900 * MS,
            attributes=[kv("http.request.method", "GET"), kv("http.route", "/leaky")],
        )
    ]
    for i, (system, sql) in enumerate([*STATEMENTS, *[STATEMENTS[0]] * 5], start=1):
        attrs = [kv("db.query.text" if i % 2 else "db.statement", sql)]
        if system:
            attrs.append(kv("db.system.name" if i % 3 else "db.system", system))
        attrs += [kv("db.query.parameter.email", PARAMETER), kv("db.response.returned_rows", 1)]
        spans.append(child(i, sql if i % 4 == 1 else "SELECT", attrs))
    plan_attrs = [kv("heron.db.plan", PLAN), kv("heron.db.plan.format", "text")]
    spans.append(child(100, "EXPLAIN SELECT", plan_attrs, dur_ms=2))
    spans[-1].parent_span_id = (trace * 1000 + 1).to_bytes(8, "big")
    return spans


def export(spans: list[PbSpan]) -> ExportTraceServiceRequest:
    resource = Resource(attributes=[kv("service.name", "leaky-shop")])
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )


def as_otlp_json(req: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON of a request (hex ids, integer enums), as SDKs that speak JSON send it."""
    doc = MessageToDict(req, use_integers_for_enums=True)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        s[k] = base64.b64decode(s[k]).hex()
    return json.dumps(doc).encode()


METRIC = "leaky.requests"
METRIC_LABELS = {
    "db.password": C[3],
    "url.full": f"https://shop.example/{CONTROL}?token={C[5]}",
    "note": f"api_key={C[7]}",
}


def metrics_json() -> bytes:
    labels = [{"key": k, "value": {"stringValue": v}} for k, v in METRIC_LABELS.items()]
    point = {"timeUnixNano": str(NOW_NS - 5 * NS), "asDouble": 3.0, "attributes": labels}
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "leaky-shop"}}]}
    metric = {"name": METRIC, "gauge": {"dataPoints": [point]}}
    doc = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [metric]}]}]}
    return json.dumps(doc).encode()


@dataclass
class Server:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    app: FastAPI
    store: DuckDBStore
    db_path: Path
    dashboard_id: str = ""
    alert_ids: dict[str, str] = field(default_factory=dict)
    run_id: str = ""

    def get(self, path: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return self.portal.call(lambda: self.client.get(path, params=params, headers=headers))

    def post(self, body: bytes, content_type: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": content_type}
        return self.portal.call(
            lambda: self.client.post("/v1/traces", content=body, headers=headers)
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("canaries")
    config = Config(data_dir=str(data), api_token=TOKEN, ingest_key=KEY)
    store = DuckDBStore(config.db_path, commit_interval_ms=0)
    app = create_app(config, store=store, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        srv = Server(portal, client, app, store, config.db_path)
        for trace in (1, 2):
            r = srv.post(export(pb_spans(trace)).SerializeToString(), "application/x-protobuf")
            assert r.status_code == 200, r.text
        r = srv.post(as_otlp_json(export(pb_spans(3))), "application/json")
        assert r.status_code == 200, r.text
        # One error event (no canary), so the errors routes have an issue and event to show.
        event = {
            "event_id": "ab" * 16,
            "timestamp": NOW_NS / NS - 5,
            "platform": "python",
            "tags": {"service": "leaky-shop"},
            "exception": {"values": [{"type": "RuntimeError", "value": f"{CONTROL} failed"}]},
        }
        r = portal.call(
            lambda: client.post(
                "/api/1/store/", json=event, params={"sentry_key": KEY, "sentry_version": "7"}
            )
        )
        assert r.status_code == 200, r.text
        # One browser session (no canary: the beacon endpoint scrubs before the store), so
        # the RUM routes have a session to show.
        rum = rum_seed.build(NOW_NS)
        store.submit_rum(rum.write(app.state.ctx.project_id)).result(30)
        # A metric whose labels carry secrets (a password label, a token in a URL): they
        # are scrubbed like span attributes before the series is stored.
        r = portal.call(
            lambda: client.post(
                "/v1/metrics",
                content=metrics_json(),
                headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
            )
        )
        assert r.status_code == 200 and "partialSuccess" not in r.json(), r.text
        board = {
            "title": "Leaky",
            "panels": [
                {"title": "requests", "type": "line", "query": {"metric": METRIC, "agg": "last"}}
            ],
        }
        r = portal.call(
            lambda: client.post(
                "/api/v1/dashboards", json=board, headers={"Authorization": f"Bearer {TOKEN}"}
            )
        )
        assert r.status_code in (200, 201), r.text
        srv.dashboard_id = str(r.json()["id"])
        app.state.maintenance.analyze_once()
        # Alerting: rules over the queries and the errors, an SLO and a silence; one
        # evaluation cycle, so the alerts routes have instances (labels from telemetry).
        auth = {"Authorization": f"Bearer {TOKEN}"}
        made: dict[str, str] = {}
        for kind, path, body in (
            (
                "rule",
                "/api/v1/alerts/rules",
                {
                    "name": "slow sql",
                    "condition": {"kind": "db", "event": "fingerprint_p95", "threshold": 0},
                },
            ),
            (
                "rule2",
                "/api/v1/alerts/rules",
                {"name": "new issue", "condition": {"kind": "error", "event": "new_issue"}},
            ),
            ("slo", "/api/v1/slos", {"name": "shop up", "service": "leaky-shop"}),
            (
                "silence",
                "/api/v1/alerts/silences",
                {
                    "matchers": [{"label": "service", "value": "leaky-shop"}],
                    "starts": "2020-01-01T00:00:00Z",
                    "ends": "2099-01-01T00:00:00Z",
                },
            ),
        ):
            r = portal.call(lambda p=path, b=body: client.post(p, json=b, headers=auth))
            assert r.status_code == 201, r.text
            made[kind] = str(r.json()["id"])
        srv.alert_ids = made
        # Two load-test runs over the spans' minute, the second comparable with the first.
        for name, base in (("base", None), ("run", "base")):
            run = {"name": name, "baseline": base, "start_ns": NOW_NS - 120 * NS}
            r = portal.call(lambda b=run: client.post("/api/v1/loadtests", json=b, headers=auth))
            assert r.status_code == 201, r.text
            srv.run_id = str(r.json()["id"])
            r = portal.call(
                lambda: client.post(
                    f"/api/v1/loadtests/{srv.run_id}/finish", json={"end_ns": NOW_NS}, headers=auth
                )
            )
            assert r.status_code == 200, r.text
        app.state.alert_engine.run_cycle()
        try:
            yield srv
        finally:
            portal.call(client.aclose)


def leaks(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


def test_no_row_of_any_table_holds_a_canary(server: Server) -> None:
    tables = [t for (t,) in server.store.read("SELECT table_name FROM duckdb_tables()")]
    assert {"spans", "rollup_1m", "db_rollup_1m", "n_plus_one", "sql_fingerprints"} <= set(tables)
    seen_control = set()
    for table in tables:
        for row in server.store.read(f'SELECT * FROM "{table}"'):  # noqa: S608 - catalog names
            text = " ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
            assert leaks(text) == [], (table, text)
            if CONTROL in text:
                seen_control.add(table)
    assert {"spans", "sql_fingerprints", "n_plus_one"} <= seen_control
    stored = server.store.read("SELECT count(*) FROM spans WHERE db_fingerprint IS NOT NULL")
    assert stored == [(3 * 14,)]


def test_no_api_response_holds_a_canary(server: Server) -> None:
    fps = [q["fingerprint"] for q in server.get("/api/v1/db/queries").json()["queries"]]
    assert len(fps) == len(STATEMENTS)
    traces = [t["trace_id"] for t in server.get("/api/v1/traces", limit=1000).json()["traces"]]
    assert len(traces) == 3
    (issue,) = server.get("/api/v1/issues").json()["issues"]
    fill = {
        "{service}": "leaky-shop",
        "{fingerprint}": fps[0],
        "{trace_id}": traces[0],
        "{issue_id}": str(issue["id"]),
        "{event_id}": "ab" * 16,
        "{dashboard_id}": server.dashboard_id,
        "{rule_id}": server.alert_ids["rule"],
        "{slo_id}": server.alert_ids["slo"],
        "{silence_id}": server.alert_ids["silence"],
        "{channel_id}": str(server.get("/api/v1/alerts/channels").json()["channels"][0]["id"]),
        "{session_id}": rum_seed.SESSION_DESKTOP,
        "{run_id}": server.run_id,
    }
    alerts = server.get("/api/v1/alerts").json()["alerts"]
    assert {a["labels"]["alertname"] for a in alerts} >= {"slow sql", "new issue"}, alerts
    widest: dict[str, dict[str, Any]] = {
        "/api/v1/traces": {"limit": 1000},
        "/api/v1/db/queries/{fingerprint}": {"samples": 100},
        "/api/v1/db/slow": {"threshold_ms": 0, "limit": 1000},
        "/api/v1/db/slow/calls": {"threshold_ms": 0, "limit": 1000},
        "/api/v1/n-plus-one": {"min_total_ms": 0},
    }
    # Routes that answer only with parameters: the metric with canary labels, by them.
    required: dict[str, dict[str, Any]] = {
        "/api/v1/metrics/labels": {"metric": METRIC},
        "/api/v1/metrics/label-values": {"metric": METRIC, "key": "url.full"},
        "/api/v1/metrics/query": {"metric": METRIC, "agg": "last", "by": ",".join(METRIC_LABELS)},
        "/api/v1/dashboards/default": {"service": "leaky-shop"},
        "/api/v1/rum/page": {"page": "/products/:id"},
    }
    paths = [p for p, ops in server.app.openapi()["paths"].items() if "get" in ops]
    seen_control = False
    for path in paths:
        url = path
        for placeholder, value in fill.items():
            url = url.replace(placeholder, value)
        for params in ({}, widest.get(path, {})):
            params = {**required.get(path, {}), **params}
            r = server.get(url, **params)
            assert r.status_code == 200, (url, r.text)
            assert leaks(r.text) == [], (url, r.text)
            seen_control = seen_control or CONTROL in r.text
    for fp in fps:
        r = server.get(f"/api/v1/db/queries/{fp}", samples=100)
        assert leaks(r.text) == [], r.text
    for trace in traces:
        r = server.get(f"/api/v1/traces/{trace}")
        assert leaks(r.text) == [] and CONTROL in r.text, r.text
    assert seen_control
    calls = server.get("/api/v1/db/slow/calls", threshold_ms=0, limit=1000).json()["queries"]
    assert any(q["plan"] and CONTROL in q["plan"] for q in calls)  # the plan is kept, scrubbed
    groups = server.get("/api/v1/db/slow", threshold_ms=0, limit=1000).json()["groups"]
    assert any(g["plan"] and CONTROL in g["plan"] for g in groups)


def test_no_canary_in_the_database_files(server: Server) -> None:
    """The DuckDB file and its write-ahead log, as bytes, while running and after close."""

    def file_bytes() -> bytes:
        parts = [server.db_path, server.db_path.with_name(server.db_path.name + ".wal")]
        return b"".join(p.read_bytes() for p in parts if p.exists())

    running = file_bytes()
    assert CONTROL.encode() in running
    assert [c for c in CANARIES if c.encode() in running] == []
    server.store.write(lambda con: con.execute("CHECKPOINT"))
    checkpointed = file_bytes()
    assert CONTROL.encode() in checkpointed
    assert [c for c in CANARIES if c.encode() in checkpointed] == []
