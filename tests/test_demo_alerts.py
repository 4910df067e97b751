"""The demo's alerting pieces: its rule file parses with the real rule-file parser and
targets the shop's slow search and failing checkout, and its webhook receiver keeps what
arrives and shows it escaped (alert labels are telemetry)."""

from __future__ import annotations

import httpx

from heron.demo.alerts import AlertSink, rules_toml
from heron.server.alerting.files import parse_rule_file
from heron.server.model.alerting import RedCondition, WebhookChannel


def test_demo_rules_parse_and_target_search_and_checkout() -> None:
    channels, rules = parse_rule_file(rules_toml("http://127.0.0.1:9/hook"))
    assert [c.name for c in channels] == ["demo log", "demo webhook"]
    webhook = channels[1].config
    assert isinstance(webhook, WebhookChannel) and webhook.url == "http://127.0.0.1:9/hook"
    by_name = {r.name: r for r in rules}
    assert set(by_name) == {"Slow search", "Checkout failing"}
    search, checkout = by_name["Slow search"], by_name["Checkout failing"]
    assert isinstance(search.condition, RedCondition)
    assert (search.condition.endpoint, search.condition.figure) == ("GET /search", "p95_ms")
    assert isinstance(checkout.condition, RedCondition)
    assert (checkout.condition.endpoint, checkout.condition.figure) == (
        "POST /checkout",
        "error_rate",
    )
    for rule in rules:
        # Fires within minutes: a minute of "for" on a two-minute window, sent at once.
        assert rule.for_ <= 60 and rule.condition.window <= 120 and rule.group_wait <= 5
        assert rule.channels == ["demo log", "demo webhook"]
    assert checkout.severity == "critical"


def test_sink_keeps_notifications_and_escapes_them() -> None:
    sink = AlertSink().start()
    try:
        hostile = "<script>alert(1)</script>"
        body = {"status": "firing", "alerts": [{"labels": {"alertname": hostile}}]}
        r = httpx.post(sink.url + "/hook", json=body, timeout=5)
        assert r.status_code == 200
        got = httpx.get(sink.url + "/received.json", timeout=5).json()
        assert [(x["path"], x["payload"]) for x in got] == [("/hook", body)]
        page = httpx.get(sink.url + "/", timeout=5)
        assert hostile not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert page.headers["content-security-policy"] == "default-src 'none'"
    finally:
        sink.stop()
