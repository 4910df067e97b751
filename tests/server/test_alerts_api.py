"""Alerting through the JSON API (in-process ASGI, the real app and lifespan, DuckDB):
rules, channels (masked secrets, SSRF), silences, alerts with acks and mutes, history,
the notification log, SLOs with their generated rules, rule files and the starter set.
The alert engine is off here: instances are written as the evaluator would write them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.model.alerting import fingerprint
from heron.server.store.alerting import HistoryRow, InstanceRow, NotificationRow
from heron.server.store.duckdb_store import DuckDBStore

NS = 1_000_000_000
NOW_NS = 1_700_000_000 * NS
TOKEN = "ht_alerts_test_token_0123456789ab"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RULE: dict[str, Any] = {
    "name": "Checkout slow",
    "severity": "critical",
    "condition": {"kind": "red", "figure": "p95_ms", "service": "checkout", "threshold": 800},
    "for": "2m",
    "channels": ["ops log"],
    "labels": {"team": "shop"},
}


@dataclass
class Api:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    store: DuckDBStore

    def call(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        headers = {**(AUTH if auth else {}), **kw.pop("headers", {})}
        return self.portal.call(lambda: self.client.request(method, path, headers=headers, **kw))

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        r = self.call(method, path, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    def error(self, method: str, path: str, status: int, **kw: Any) -> str:
        r = self.call(method, path, **kw)
        assert r.status_code == status, r.text
        message: str = r.json()["error"]
        return message


ApiFactory = Callable[..., Api]


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[ApiFactory]:
    stack: list[Any] = []

    def make(**settings: Any) -> Api:
        config = Config(
            data_dir=str(tmp_path),
            api_token=TOKEN,
            ingest_key="hk_alerts_test_key",
            alerts_enabled=False,
            **settings,
        )
        store = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
        clock = iter(range(NOW_NS, NOW_NS + 10**6 * NS, NS))
        app = create_app(
            config, store=store, clock=lambda: next(clock), maintenance_interval_s=3600
        )
        portal_cm = anyio.from_thread.start_blocking_portal()
        portal = portal_cm.__enter__()
        life = portal.wrap_async_context_manager(app.router.lifespan_context(app))
        life.__enter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://heron")
        stack.append((portal_cm, life, client, portal))
        return Api(portal, client, store)

    yield make
    for portal_cm, life, client, portal in reversed(stack):
        portal.call(client.aclose)
        life.__exit__(None, None, None)
        portal_cm.__exit__(None, None, None)


@pytest.fixture
def api(make_api: ApiFactory) -> Api:
    a = make_api()
    a.ok(
        "POST", "/api/v1/alerts/channels", 201, json={"name": "ops log", "config": {"type": "log"}}
    )
    return a


def test_rule_crud_versions_and_enable(api: Api) -> None:
    made = api.ok("POST", "/api/v1/alerts/rules", 201, json=RULE)
    assert (made["name"], made["version"], made["source"], made["read_only"]) == (
        "Checkout slow",
        1,
        "api",
        False,
    )
    assert made["for"] == 120 and made["condition"]["window"] == 300
    assert made["status"] is None and made["missing_channels"] == []
    rid = made["id"]
    assert api.ok("GET", f"/api/v1/alerts/rules/{rid}") == made
    assert [r["id"] for r in api.ok("GET", "/api/v1/alerts/rules")["rules"]] == [rid]

    # What a GET answers can be sent back; its version guards the update.
    v2 = api.ok("PUT", f"/api/v1/alerts/rules/{rid}", json={**made, "for": "5m"})
    assert (v2["version"], v2["for"]) == (2, 300)
    stale = api.error("PUT", f"/api/v1/alerts/rules/{rid}", 409, json={**made, "for": 60})
    assert "now version 2" in stale

    off = api.ok("POST", f"/api/v1/alerts/rules/{rid}/disable")
    assert (off["enabled"], off["version"]) == (False, 3)
    assert api.ok("POST", f"/api/v1/alerts/rules/{rid}/enable")["enabled"] is True

    assert api.ok("DELETE", f"/api/v1/alerts/rules/{rid}", 204) is None
    assert api.call("GET", f"/api/v1/alerts/rules/{rid}").status_code == 404
    assert api.call("DELETE", f"/api/v1/alerts/rules/{rid}").status_code == 404
    assert api.call("POST", f"/api/v1/alerts/rules/{rid}/enable").status_code == 404


def test_invalid_rules_are_400_naming_the_field(api: Api) -> None:
    bad_threshold = {**RULE, "condition": {**RULE["condition"], "threshold": "high"}}
    assert "condition.threshold" in api.error(
        "POST", "/api/v1/alerts/rules", 400, json=bad_threshold
    )
    assert "for:" in api.error("POST", "/api/v1/alerts/rules", 400, json={**RULE, "for": "soon"})
    assert "typo" in api.error("POST", "/api/v1/alerts/rules", 400, json={**RULE, "typo": 1})
    unknown = api.error("POST", "/api/v1/alerts/rules", 400, json={**RULE, "channels": ["nope"]})
    assert "channels.0: no channel named 'nope'" in unknown
    slo_rule = {**RULE, "condition": {"kind": "slo_burn", "slo_id": 99, "alert": "page"}}
    assert "condition.slo_id: no SLO with id 99" in api.error(
        "POST", "/api/v1/alerts/rules", 400, json=slo_rule
    )
    api.ok("POST", "/api/v1/alerts/rules", 201, json=RULE)
    assert "exists already" in api.error("POST", "/api/v1/alerts/rules", 409, json=RULE)
    assert api.ok("GET", "/api/v1/alerts/rules")["rules"][0]["version"] == 1


def test_changes_need_auth(api: Api) -> None:
    assert api.call("GET", "/api/v1/alerts/rules", auth=False).status_code == 401
    assert api.call("POST", "/api/v1/alerts/rules", auth=False, json=RULE).status_code == 401
    assert api.call("GET", "/api/v1/slos", auth=False).status_code == 401


def test_channel_secrets_are_masked_and_kept(api: Api) -> None:
    slack = {"name": "slack", "config": {"type": "slack", "url": "https://hooks.slack.com/s/T/B/x"}}
    made = api.ok("POST", "/api/v1/alerts/channels", 201, json=slack)
    assert made["config"] == {"type": "slack", "url": "••••"}
    cid = made["id"]
    renamed = api.ok("PUT", f"/api/v1/alerts/channels/{cid}", json={**made, "name": "slack-ops"})
    assert renamed["name"] == "slack-ops" and renamed["config"]["url"] == "••••"
    stored = api.store.state.get_alert_config(1, "channel", cid)
    assert stored is not None
    assert json.loads(stored.spec)["config"]["url"] == "https://hooks.slack.com/s/T/B/x"

    hook = {
        "name": "hook",
        "config": {
            "type": "webhook",
            "url": "https://hooks.example.com/alerts",
            "headers": {"Authorization": "Bearer s3cret"},
        },
    }
    h = api.ok("POST", "/api/v1/alerts/channels", 201, json=hook)
    assert h["config"]["headers"] == {"Authorization": "••••"}
    api.ok("PUT", f"/api/v1/alerts/channels/{h['id']}", json=h)
    row = api.store.state.get_alert_config(1, "channel", h["id"])
    assert row is not None
    assert json.loads(row.spec)["config"]["headers"] == {"Authorization": "Bearer s3cret"}
    listed = api.ok("GET", "/api/v1/alerts/channels")["channels"]
    assert "s3cret" not in json.dumps(listed) and "hooks.slack.com" not in json.dumps(listed)


def test_channel_urls_are_checked_against_ssrf(make_api: ApiFactory) -> None:
    api = make_api()
    loopback = {"name": "local", "config": {"type": "webhook", "url": "http://127.0.0.1:9/x"}}
    assert "config.url" in api.error("POST", "/api/v1/alerts/channels", 400, json=loopback)
    metadata = {"name": "meta", "config": {"type": "webhook", "url": "http://169.254.169.254/"}}
    assert "config.url" in api.error("POST", "/api/v1/alerts/channels", 400, json=metadata)
    smtp = {
        "name": "mail",
        "config": {"type": "email", "host": "127.0.0.1", "from": "a@b.c", "to": ["x@y.z"]},
    }
    assert "config.host" in api.error("POST", "/api/v1/alerts/channels", 400, json=smtp)
    assert api.ok("GET", "/api/v1/alerts/channels")["channels"] == []


def test_allowed_hosts_permit_loopback(make_api: ApiFactory) -> None:
    api = make_api(alert_allowed_hosts="127.0.0.1")
    loopback = {"name": "local", "config": {"type": "webhook", "url": "http://127.0.0.1:9/x"}}
    assert api.ok("POST", "/api/v1/alerts/channels", 201, json=loopback)["name"] == "local"


def test_a_channel_in_use_is_not_renamed_or_deleted(api: Api) -> None:
    api.ok("POST", "/api/v1/alerts/rules", 201, json=RULE)
    ch = api.ok("GET", "/api/v1/alerts/channels")["channels"][0]
    gone = api.error("DELETE", f"/api/v1/alerts/channels/{ch['id']}", 409)
    assert "rule 'Checkout slow'" in gone
    moved = api.error("PUT", f"/api/v1/alerts/channels/{ch['id']}", 409, json={**ch, "name": "x"})
    assert "rule 'Checkout slow'" in moved
    rule = api.ok("GET", "/api/v1/alerts/rules")["rules"][0]
    api.ok("PUT", f"/api/v1/alerts/rules/{rule['id']}", json={**rule, "channels": []})
    api.ok("DELETE", f"/api/v1/alerts/channels/{ch['id']}", 204)


def test_channel_test_send_is_logged(api: Api) -> None:
    ch = api.ok("GET", "/api/v1/alerts/channels")["channels"][0]
    sent = api.ok("POST", f"/api/v1/alerts/channels/{ch['id']}/test")
    assert (sent["kind"], sent["status"], sent["channel_id"]) == ("test", "sent", ch["id"])
    log = api.ok("GET", "/api/v1/alerts/notifications")["notifications"]
    assert [(n["id"], n["kind"], n["status"], n["channel"]) for n in log] == [
        (sent["id"], "test", "sent", "ops log")
    ]
    assert api.call("POST", "/api/v1/alerts/channels/999/test").status_code == 404


def _firing(rule_id: int, labels: dict[str, str], since_ns: int) -> InstanceRow:
    return InstanceRow(
        rule_id=rule_id,
        fingerprint=fingerprint(labels),
        project_id=1,
        labels=json.dumps(labels),
        annotations=json.dumps({"summary": "p95 1.2 s", "link": "/service?service=checkout"}),
        state="firing",
        value=1200.0,
        active_since_ns=since_ns,
        fired_ns=since_ns + 120 * NS,
        resolved_ns=0,
        last_eval_ns=NOW_NS,
        last_true_ns=NOW_NS,
    )


def test_alerts_ack_silence_and_history(api: Api) -> None:
    rule = api.ok("POST", "/api/v1/alerts/rules", 201, json=RULE)
    labels = {"service": "checkout", "team": "shop", "alertname": "Checkout slow"}
    labels["severity"] = "critical"
    inst = _firing(rule["id"], labels, NOW_NS - 600 * NS)
    history = [
        HistoryRow(0, 1, rule["id"], inst.fingerprint, inst.labels, "pending", 900.0, NOW_NS - 600 * NS),
        HistoryRow(0, 1, rule["id"], inst.fingerprint, inst.labels, "firing", 1200.0, NOW_NS - 480 * NS),
    ]  # fmt: skip
    api.store.state.save_evaluation([inst], [], history, [])

    alerts = api.ok("GET", "/api/v1/alerts")["alerts"]
    assert len(alerts) == 1
    a = alerts[0]
    assert (a["rule"], a["state"], a["severity"], a["value"]) == (
        "Checkout slow",
        "firing",
        "critical",
        1200.0,
    )
    assert a["labels"] == labels and a["link"] == "/service?service=checkout"
    assert (a["muted"], a["acked_by"]) == (None, None)
    assert api.ok("GET", "/api/v1/alerts?state=pending")["alerts"] == []

    acked = api.ok("POST", f"/api/v1/alerts/{rule['id']}/{inst.fingerprint}/ack")
    assert acked["acked_by"] == "api token"
    assert api.ok("GET", "/api/v1/alerts")["alerts"][0]["acked_by"] == "api token"
    assert api.call("POST", f"/api/v1/alerts/{rule['id']}/{'0' * 16}/ack").status_code == 404

    silence = {
        "matchers": [{"label": "service", "value": "check.*", "op": "=~"}],
        "starts": "2023-11-14T00:00:00Z",
        "ends": "2023-11-16T00:00:00Z",
        "comment": "deploying",
    }
    s = api.ok("POST", "/api/v1/alerts/silences", 201, json=silence)
    assert (s["state"], s["created_by"]) == ("active", "api token")
    muted = api.ok("GET", "/api/v1/alerts")["alerts"][0]["muted"]
    assert muted == f"silenced by {s['id']}"

    hist = api.ok("GET", f"/api/v1/alerts/history?rule_id={rule['id']}")["history"]
    assert [(h["state"], h["value"], h["rule"]) for h in hist] == [
        ("firing", 1200.0, "Checkout slow"),
        ("pending", 900.0, "Checkout slow"),
    ]


def test_silences_expire_and_list_in_order(api: Api) -> None:
    body = {
        "matchers": [{"label": "service", "value": "checkout"}],
        "starts": "2023-11-14T00:00:00Z",
        "ends": "2023-11-20T00:00:00Z",
    }
    active = api.ok("POST", "/api/v1/alerts/silences", 201, json=body)
    later = {**body, "starts": "2023-11-18T00:00:00Z"}
    pending = api.ok("POST", "/api/v1/alerts/silences", 201, json=later)
    assert pending["state"] == "pending"
    listed = api.ok("GET", "/api/v1/alerts/silences")["silences"]
    assert [s["id"] for s in listed] == [active["id"], pending["id"]]
    expired = api.ok("DELETE", f"/api/v1/alerts/silences/{pending['id']}")
    assert expired["state"] == "expired"
    assert api.ok("GET", f"/api/v1/alerts/silences/{pending['id']}")["state"] == "expired"
    bad = {**body, "ends": "2023-11-01T00:00:00Z"}
    assert "ends must be after starts" in api.error(
        "POST", "/api/v1/alerts/silences", 400, json=bad
    )
    assert api.call("DELETE", "/api/v1/alerts/silences/999").status_code == 404


def test_notification_log_pages_and_filters(api: Api) -> None:
    ch = api.ok("GET", "/api/v1/alerts/channels")["channels"][0]
    rows = [
        NotificationRow(0, 1, ch["id"], "g1", "firing", "{}", status, 1, NOW_NS, err, NOW_NS, 0)
        for status, err in (("failed", "HTTP 500"), ("pending", ""), ("failed", "timeout"))
    ]
    ids = api.store.state.save_dispatch([], [], rows)
    failed = api.ok("GET", "/api/v1/alerts/notifications?status=failed")["notifications"]
    assert [(n["id"], n["last_error"]) for n in failed] == [
        (ids[2], "timeout"),
        (ids[0], "HTTP 500"),
    ]
    page = api.ok("GET", f"/api/v1/alerts/notifications?before_id={ids[2]}&limit=1")
    assert [n["id"] for n in page["notifications"]] == [ids[1]]
    assert page["notifications"][0]["next_attempt"] is not None


def test_slo_generates_read_only_burn_rules(api: Api) -> None:
    slo_body = {"name": "Checkout available", "service": "checkout", "objective": 99.5}
    slo = api.ok("POST", "/api/v1/slos", 201, json={**slo_body, "channels": ["ops log"]})
    assert slo["objective"] == 99.5 and len(slo["rule_ids"]) == 2
    status = slo["status"]
    assert (status["total"], status["sli"], status["objective"]) == (0, None, 0.995)
    assert status["budget_remaining"] == 1.0 and status["burn_rates"]["1h"] is None
    rules = {r["id"]: r for r in api.ok("GET", "/api/v1/alerts/rules")["rules"]}
    gen = [rules[i] for i in slo["rule_ids"]]
    assert sorted(r["name"] for r in gen) == [
        "Checkout available — fast burn",
        "Checkout available — slow burn",
    ]
    assert all(r["source"] == f"slo:{slo['id']}" and r["read_only"] for r in gen)
    assert "SLO" in api.error("PUT", f"/api/v1/alerts/rules/{gen[0]['id']}", 409, json=RULE)
    assert api.call("DELETE", f"/api/v1/alerts/rules/{gen[0]['id']}").status_code == 409

    listed = api.ok("GET", "/api/v1/slos")["slos"]
    assert [s["id"] for s in listed] == [slo["id"]] and "budget_remaining" in listed[0]["status"]
    off = api.ok("PUT", f"/api/v1/slos/{slo['id']}", json={**slo_body, "alerts": False})
    assert off["rule_ids"] == [] and off["version"] == 2
    on = api.ok("PUT", f"/api/v1/slos/{slo['id']}", json=slo_body)
    assert len(on["rule_ids"]) == 2
    assert api.error("POST", "/api/v1/slos", 400, json={**slo_body, "sli": "latency"})
    api.ok("DELETE", f"/api/v1/slos/{slo['id']}", 204)
    assert api.ok("GET", "/api/v1/alerts/rules")["rules"] == []
    assert api.call("GET", f"/api/v1/slos/{slo['id']}").status_code == 404


def test_preview_answers_series_and_events(api: Api) -> None:
    p = api.ok("POST", "/api/v1/alerts/rules/preview?hours=2", json=RULE)
    assert p["op"] == ">" and p["threshold"] == 800 and p["step_s"] >= 60
    assert p["series"] == [] and p["events"] == []  # no data stored
    assert "condition" in api.error("POST", "/api/v1/alerts/rules/preview", 400, json={"name": "x"})
    # A condition that cannot run (no such metric): 400 with the reason, not a 500.
    nope = {"name": "x", "condition": {"kind": "metric", "metric": "nope", "threshold": 1}}
    err = api.error("POST", "/api/v1/alerts/rules/preview", 400, json=nope)
    assert "condition: no metric named 'nope'" in err


GOOD_FILE = """
[[channel]]
name = "file hook"
[channel.config]
type = "log"

[[rule]]
name = "Orders stalled"
severity = "warning"
channels = ["file hook"]
[rule.condition]
kind = "absence"
target = "service"
service = "orders"
"""


def test_rule_files_load_read_only_and_bad_files_keep_rules(
    make_api: ApiFactory, tmp_path: Path
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "orders.toml").write_text(GOOD_FILE)
    api = make_api(alert_rules_path=str(rules_dir), alert_starter_rules="off")
    loaded = api.ok("POST", "/api/v1/alerts/rules/reload")
    assert loaded["errors"] == []
    assert [(r["name"], r["source"], r["read_only"]) for r in loaded["rules"]] == [
        ("Orders stalled", "file:orders.toml", True)
    ]
    rid = loaded["rules"][0]["id"]
    assert "orders.toml" in api.error("PUT", f"/api/v1/alerts/rules/{rid}", 409, json=RULE)

    (rules_dir / "orders.toml").write_text(
        GOOD_FILE.replace('severity = "warning"', "severity = 5")
    )
    again = api.ok("POST", "/api/v1/alerts/rules/reload")
    assert len(again["errors"]) == 1 and "orders.toml" in again["errors"][0]
    assert "severity" in again["errors"][0]
    assert [(r["id"], r["severity"]) for r in again["rules"]] == [(rid, "warning")]

    (rules_dir / "orders.toml").unlink()
    assert api.ok("POST", "/api/v1/alerts/rules/reload")["rules"] == []
    assert api.ok("GET", "/api/v1/alerts/channels")["channels"] == []


def test_starter_rules_are_created_once(make_api: ApiFactory) -> None:
    api = make_api(alert_starter_rules="disabled")
    api.ok("POST", "/api/v1/alerts/rules/reload")
    rules = api.ok("GET", "/api/v1/alerts/rules")["rules"]
    assert len(rules) == 6
    assert {r["source"] for r in rules} == {"starter"} and not any(r["enabled"] for r in rules)
    assert {r["channels"][0] for r in rules} == {"server log"}
    thresholds = sorted((r["condition"]["kind"], r["condition"]["threshold"]) for r in rules)
    assert thresholds == [
        ("metric", 0.2),
        ("metric", 0.85),
        ("metric", 0.9),
        ("red", 5),
        ("red", 2000),
        ("rum", 4000),
    ]
    first = rules[0]
    assert "disable it" in api.error("DELETE", f"/api/v1/alerts/rules/{first['id']}", 409)
    assert api.ok("POST", f"/api/v1/alerts/rules/{first['id']}/enable")["enabled"] is True
    api.ok("POST", "/api/v1/alerts/rules/reload")
    again = api.ok("GET", "/api/v1/alerts/rules")["rules"]
    assert [(r["id"], r["enabled"]) for r in again] == [
        (r["id"], r["id"] == first["id"]) for r in rules
    ]


# --------------------------------------------------------- web-vitals rules (rum)
RUM_RULE: dict[str, Any] = {
    "name": "Checkout LCP",
    "condition": {"kind": "rum", "vital": "LCP", "by": "page", "threshold": "4000"},
}


def test_rum_rules_are_checked_and_previewed(api: Api) -> None:
    made = api.ok("POST", "/api/v1/alerts/rules", 201, json=RUM_RULE)
    cond = made["condition"]
    assert (cond["vital"], cond["figure"], cond["by"], cond["threshold"]) == (
        "LCP",
        "p75",
        "page",
        4000.0,
    )
    assert (cond["min_samples"], cond["window"]) == (20, 300)
    url = "/api/v1/alerts/rules"

    def bad(**changes: Any) -> str:
        body = {**RUM_RULE, "name": "bad", "condition": {**RUM_RULE["condition"], **changes}}
        return api.error("POST", url, 400, json=body)

    assert "condition.vital: Input should be 'LCP'" in bad(vital="lcp")
    assert "condition.figure" in bad(figure="p99")
    assert "condition: Value error, poor_share is for web vitals" in bad(
        vital="load", figure="poor_share"
    )
    assert "condition.by: Input should be 'page', 'browser', 'device' or 'app'" in bad(by="os")
    assert "condition.device" in bad(device="watch")
    assert "condition.min_samples" in bad(min_samples=-3)
    assert "condition.threshold" in bad(threshold="slow")
    assert "condition.vitals: Extra inputs are not permitted" in bad(vitals="CLS")
    assert [r["name"] for r in api.ok("GET", url)["rules"]] == ["Checkout LCP"]

    p = api.ok("POST", "/api/v1/alerts/rules/preview?hours=1", json=RUM_RULE)
    assert (p["op"], p["threshold"]) == (">", 4000)
    assert p["series"] == [] and p["events"] == []  # no RUM data stored


RUM_FILE = """
[[rule]]
name = "Mobile INP"
severity = "critical"
[rule.condition]
kind = "rum"
vital = "INP"
figure = "poor_share"
device = "mobile"
by = "browser"
window = "15m"
threshold = 10
min_samples = 50
"""


def test_rum_rules_load_from_a_toml_file(make_api: ApiFactory, tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "web.toml").write_text(RUM_FILE)
    api = make_api(alert_rules_path=str(rules_dir), alert_starter_rules="off")
    loaded = api.ok("POST", "/api/v1/alerts/rules/reload")
    assert loaded["errors"] == []
    (rule,) = loaded["rules"]
    assert (rule["name"], rule["source"], rule["severity"]) == (
        "Mobile INP",
        "file:web.toml",
        "critical",
    )
    assert rule["condition"] == {
        "kind": "rum",
        "vital": "INP",
        "figure": "poor_share",
        "app": None,
        "environment": None,
        "page": None,
        "browser": None,
        "device": "mobile",
        "by": "browser",
        "min_samples": 50,
        "window": 900,
        "op": ">",
        "threshold": 10.0,
    }
    (rules_dir / "web.toml").write_text(RUM_FILE.replace('vital = "INP"', 'vital = "TTI"'))
    again = api.ok("POST", "/api/v1/alerts/rules/reload")
    assert len(again["errors"]) == 1 and "web.toml" in again["errors"][0]
    assert "condition.vital" in again["errors"][0]
    assert [r["id"] for r in again["rules"]] == [rule["id"]]  # the previous rule stays
