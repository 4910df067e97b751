"""The alerting and SLO pages, in-process against the real app on a seeded DuckDB store:
alerts (firing, pending, silenced) with acknowledgement, the rule list and editor with its
preview, read-only file rules, silences created from an alert's labels, channels with a
test send, the notification log with failures, and SLOs sorted by budget remaining.

Alert instances are written through the real store (``save_evaluation``), the way the
evaluator writes them, with telemetry-looking labels that must come out escaped. The
alerting engine is off (``alerts_enabled=False``) so nothing changes them meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from bs4 import BeautifulSoup, Tag

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.model.alerting import fingerprint
from heron.server.model.rum import RumEvent, RumRollups, RumWrite, rate, rollup_rum
from heron.server.store.alerting import InstanceRow, NotificationRow, RuleStatusRow
from tests.ui import seed as seed_data
from tests.ui.conftest import INGEST_KEY, NOW_NS, PASSWORD, Ui
from tests.ui.test_pages import json_block

XSS_LABEL = "<script>alert('label')</script>"
XSS_SUMMARY = "<img src=x onerror=alert(1)>"
MIN = 60 * 1_000_000_000


@pytest.fixture(scope="module")
def aui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """Signed in, seeded, the alerting engine off."""
    tmp: Path = tmp_path_factory.mktemp("alert-ui")
    config = Config(
        data_dir=str(tmp),
        ingest_key=INGEST_KEY,
        admin_password=PASSWORD,
        commit_interval_ms=0,
        alerts_enabled=False,
    )
    app = create_app(config, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://heron.test"
        )
        ui = Ui(portal, client, app, seed_data.build(NOW_NS))
        try:
            assert ui.seed is not None
            ui.ingest(ui.seed.requests())
            ui.sign_in()
            yield ui
        finally:
            portal.call(client.aclose)


def state(ui: Ui) -> Any:
    return ui.app.state.ctx.store.state


def project(ui: Ui) -> int:
    return int(ui.app.state.ctx.project_id)


def csrf(soup: BeautifulSoup) -> str:
    field = soup.find("input", attrs={"name": "csrf_token"})
    assert isinstance(field, Tag)
    return str(field["value"])


def post_form(ui: Ui, page: str, to: str, **data: Any) -> httpx.Response:
    token = csrf(ui.soup(page))
    return ui.post(to, data={"csrf_token": token, **data})


def save_json(ui: Ui, page: str, to: str, spec: dict[str, Any], **extra: str) -> httpx.Response:
    return post_form(ui, page, to, json=json.dumps(spec), **extra)


def location_id(r: httpx.Response) -> int:
    assert r.status_code == 303, r.text[:2000]
    return int(r.headers["location"].split("?")[0].rstrip("/").split("/")[-1])


def make_rule(ui: Ui, name: str, **over: Any) -> int:
    spec = {
        "name": name,
        "severity": "critical",
        "condition": {"kind": "red", "figure": "p95_ms", "threshold": 1, "window": "10m"},
        "channels": [],
        **over,
    }
    return location_id(save_json(ui, "/alerts/rules/new", "/alerts/rules/new", spec))


def put_instance(ui: Ui, rule_id: int, name: str, state_: str, labels: dict[str, str]) -> str:
    full = {**labels, "alertname": name, "severity": "critical"}
    fp = fingerprint(full)
    row = InstanceRow(
        rule_id=rule_id,
        fingerprint=fp,
        project_id=project(ui),
        labels=json.dumps(full),
        annotations=json.dumps({"summary": XSS_SUMMARY, "link": "/service?service=frontend"}),
        state=state_,
        value=2345.5,
        active_since_ns=NOW_NS - 10 * MIN,
        fired_ns=NOW_NS - 5 * MIN if state_ == "firing" else 0,
        resolved_ns=0,
        last_eval_ns=NOW_NS - MIN,
        last_true_ns=NOW_NS - MIN,
    )
    status = RuleStatusRow(rule_id, project(ui), NOW_NS - MIN, 1.5, "", 1)
    state(ui).save_evaluation([row], [], [], [status])
    return fp


def test_nav_and_empty_alerts_page(aui: Ui) -> None:
    soup = aui.soup("/alerts")
    on = soup.select_one("nav.tabs a.on")
    assert on is not None and on.get_text() == "Alerts"
    assert [a.get_text() for a in soup.select("#alert-tabs a")] == [
        "Alerts",
        "Rules",
        "Silences",
        "Channels",
        "Notification log",
    ]
    assert soup.select_one("nav.tabs a[href='/slos']") is not None
    assert aui.anonymous_get("/alerts").status_code == 303


def test_rule_editor_names_the_bad_field_and_keeps_the_text(aui: Ui) -> None:
    bad = {"name": "Broken", "condition": {"kind": "red", "figure": "p42_ms"}}
    r = save_json(aui, "/alerts/rules/new", "/alerts/rules/new", bad)
    assert r.status_code == 400
    soup = BeautifulSoup(r.text, "html.parser")
    error = soup.select_one("#editor-error")
    assert error is not None and "condition.figure" in error.get_text()
    textarea = soup.select_one("#rule-json")
    assert textarea is not None and json.loads(textarea.get_text()) == bad
    r = post_form(aui, "/alerts/rules/new", "/alerts/rules/new", json="{not json")
    assert r.status_code == 400 and "not JSON" in r.text


def test_create_list_edit_disable_delete_a_rule(aui: Ui) -> None:
    rule_id = make_rule(aui, "Slow frontend")
    rows = aui.soup("/alerts/rules").select("#rules tr[data-rule]")
    row = next(r for r in rows if r["data-rule"] == str(rule_id))
    assert row["data-name"] == "Slow frontend"
    assert "not evaluated yet" in row.get_text()
    page = aui.soup(f"/alerts/rules/{rule_id}")
    spec = json.loads(page.select_one("#rule-json").get_text())  # type: ignore[union-attr]
    assert spec["condition"]["figure"] == "p95_ms" and spec["severity"] == "critical"
    # Edit: the version travels with the text.
    edit = aui.soup(f"/alerts/rules/{rule_id}/edit")
    text = json.loads(edit.select_one("#rule-json").get_text())  # type: ignore[union-attr]
    assert text["version"] == 1
    text["severity"] = "warning"
    r = save_json(aui, f"/alerts/rules/{rule_id}/edit", f"/alerts/rules/{rule_id}/edit", text)
    assert location_id(r) == rule_id
    # The same (now stale) version again: a conflict, shown in the editor.
    r = save_json(aui, f"/alerts/rules/{rule_id}/edit", f"/alerts/rules/{rule_id}/edit", text)
    assert r.status_code == 400 and "meanwhile" in r.text
    r = post_form(aui, f"/alerts/rules/{rule_id}", f"/alerts/rules/{rule_id}/disable")
    assert r.status_code == 303
    assert aui.soup(f"/alerts/rules/{rule_id}").select_one("#toggle-rule").get_text() == "Enable"  # type: ignore[union-attr]
    r = post_form(aui, f"/alerts/rules/{rule_id}", f"/alerts/rules/{rule_id}/delete")
    assert r.status_code == 303
    assert aui.get(f"/alerts/rules/{rule_id}").status_code == 404


def test_preview_shows_the_condition_and_when_it_would_have_fired(aui: Ui) -> None:
    spec = {
        "name": "Preview me",
        "condition": {
            "kind": "red",
            "figure": "requests",
            "service": "frontend",
            "window": "5m",
            "op": ">",
            "threshold": 0,
        },
        "interval": "5m",
    }
    r = save_json(aui, "/alerts/rules/new", "/alerts/rules/new", spec, action="preview")
    assert r.status_code == 200, r.text[:2000]
    soup = BeautifulSoup(r.text, "html.parser")
    data = json_block(soup, "preview-data")
    assert data["threshold"] == 0 and data["op"] == ">"
    assert data["t"] and data["series"]
    assert all(len(s["values"]) == len(data["t"]) for s in data["series"])
    assert any(v for s in data["series"] for v in s["values"] if v)  # the seed's requests
    assert data["events"], "requests > 0 held: it would have fired"
    assert "Would have fired at" in soup.select_one("#preview-events").get_text()  # type: ignore[union-attr]
    assert soup.select_one("figure[data-alert-chart=preview]") is not None
    # Nothing was saved by a preview.
    names = [r["data-name"] for r in aui.soup("/alerts/rules").select("#rules tr[data-rule]")]
    assert "Preview me" not in names


def test_preview_of_a_web_vitals_rule_escapes_the_page(aui: Ui) -> None:
    # Real users' LCP on a page whose name is telemetry (escaped wherever it shows).
    page = "/p/<img src=x onerror=alert(2)>"
    events = [
        RumEvent(
            time_ns=NOW_NS - (i % 10) * MIN - 1_000_000_000,
            kind="vital",
            session_id=f"rumalert{i:04d}",
            view_id=f"view{i:04d}",
            page=page,
            url="https://shop.example/p/1",
            name="LCP",
            value=5200.0,
            rating=rate("LCP", 5200.0),
            target="",
            browser="Chrome",
            browser_version="120",
            os="Linux",
            device="mobile",
            app="shop",
            release="1",
            environment="",
        )
        for i in range(40)
    ]
    acc: RumRollups = {}
    rollup_rum(project(aui), events, acc)
    aui.app.state.ctx.store.submit_rum(RumWrite(project(aui), events, acc)).result(30)
    spec = {
        "name": "Slow LCP preview",
        "condition": {"kind": "rum", "vital": "LCP", "by": "page", "threshold": 4000},
    }
    r = save_json(aui, "/alerts/rules/new", "/alerts/rules/new", spec, action="preview")
    assert r.status_code == 200, r.text[:2000]
    assert "<img src=x onerror=alert(2)>" not in r.text
    soup = BeautifulSoup(r.text, "html.parser")
    assert not soup.find_all("img", src="x")
    data = json_block(soup, "preview-data")
    assert (data["op"], data["threshold"], data["error"]) == (">", 4000, "")
    (line,) = data["series"]
    assert line["label"] == f"page={page}"
    assert 4700 < max(v for v in line["values"] if v is not None) < 5700
    assert [e["label"] for e in data["events"]] == [f"page={page}"]
    # Saved, its page (with the preview) answers 200.
    rule_id = make_rule(aui, "Slow LCP", condition=spec["condition"])
    assert aui.get(f"/alerts/rules/{rule_id}").status_code == 200


def test_a_rule_whose_condition_cannot_run_shows_why(aui: Ui) -> None:
    # The starter disk rule on a server that has no host metrics yet: the rule page
    # answers 200 and says why there is no preview (it was a 500).
    rule_id = make_rule(aui, "Disk", condition={"kind": "metric", "metric": "nope", "threshold": 1})
    page = aui.get(f"/alerts/rules/{rule_id}")
    assert page.status_code == 200, page.text[:2000]
    assert "no metric named" in page.text


def test_alerts_page_shows_firing_and_pending_escaped_and_acks(aui: Ui) -> None:
    rule_id = make_rule(aui, "Latency high")
    fp = put_instance(aui, rule_id, "Latency high", "firing", {"service": XSS_LABEL})
    put_instance(aui, rule_id, "Latency high", "pending", {"service": "catalog"})
    r = aui.get("/alerts")
    assert XSS_LABEL not in r.text and XSS_SUMMARY not in r.text
    soup = BeautifulSoup(r.text, "html.parser")
    assert not soup.find_all("img", src="x")
    assert all(not (s.string or "").startswith("alert(") for s in soup.find_all("script"))
    firing = soup.select("#firing tr[data-fingerprint]")
    assert [t["data-fingerprint"] for t in firing] == [fp]
    assert f"service={XSS_LABEL}" in firing[0].get_text()
    assert XSS_SUMMARY in firing[0].get_text()
    assert "2,345.5" in firing[0].get_text() or "2.3k" in firing[0].get_text()
    link = firing[0].select_one("a.link")
    assert link is not None and link["href"].endswith("/service?service=frontend")
    pending = soup.select("#pending tr[data-state=pending]")
    assert len(pending) == 1 and "service=catalog" in pending[0].get_text()
    counts = [d.get_text() for d in soup.select("#alert-counts dd")]
    assert counts[:2] == ["1", "1"]
    r = post_form(aui, "/alerts", "/alerts/ack", rule_id=str(rule_id), fingerprint=fp)
    assert r.status_code == 303
    row = aui.soup("/alerts").select_one(f"#firing tr[data-fingerprint='{fp}']")
    assert row is not None and "acknowledged by admin" in row.get_text()
    assert row.select_one(".ack-button") is None


def test_silence_from_an_alert_then_expire(aui: Ui) -> None:
    rule_id = make_rule(aui, "Errors high")
    fp = put_instance(aui, rule_id, "Errors high", "firing", {"service": "payments"})
    page = f"/alerts/silences/new?rule_id={rule_id}&fingerprint={fp}"
    soup = aui.soup(page)
    spec = json.loads(soup.select_one("#spec-json").get_text())  # type: ignore[union-attr]
    assert {(m["label"], m["value"]) for m in spec["matchers"]} == {
        ("alertname", "Errors high"),
        ("service", "payments"),
        ("severity", "critical"),
    }
    assert spec["created_by"] == "admin"
    r = post_form(aui, page, "/alerts/silences/new", json=json.dumps(spec))
    assert r.status_code == 303, r.text[:2000]
    rows = aui.soup("/alerts/silences").select("#silences tr[data-silence]")
    active = [r for r in rows if r["data-state"] == "active"]
    assert len(active) == 1 and "service=payments" in active[0].get_text()
    alerts = aui.soup("/alerts")
    silenced = alerts.select_one(f"#silenced tr[data-fingerprint='{fp}']")
    assert silenced is not None and "silenced" in silenced.get_text()
    assert alerts.select_one(f"#firing tr[data-fingerprint='{fp}']") is None
    sid = active[0]["data-silence"]
    r = post_form(aui, "/alerts/silences", f"/alerts/silences/{sid}/expire")
    assert r.status_code == 303
    row = aui.soup("/alerts/silences").select_one(f"tr[data-silence='{sid}']")
    assert row is not None and row["data-state"] == "expired"
    # A silence that does not validate: the field is named.
    bad = {**spec, "ends": spec["starts"]}
    r = post_form(aui, page, "/alerts/silences/new", json=json.dumps(bad))
    assert r.status_code == 400 and "ends must be after starts" in r.text


def test_file_rules_are_read_only(aui: Ui) -> None:
    spec = {"name": "From a file", "condition": {"kind": "red", "figure": "error_rate"}}
    row = state(aui).create_alert_config(
        project(aui), "rule", "From a file", json.dumps(spec), "file", NOW_NS
    )
    soup = aui.soup(f"/alerts/rules/{row.id}")
    assert soup.select_one("#read-only") is not None
    assert soup.select_one("#edit-rule") is None and soup.select_one("#delete-rule") is None
    edit = aui.soup(f"/alerts/rules/{row.id}/edit")
    assert edit.select_one("#save") is None
    r = save_json(aui, f"/alerts/rules/{row.id}/edit", f"/alerts/rules/{row.id}/edit", spec)
    assert r.status_code == 400
    assert state(aui).get_alert_config(project(aui), "rule", row.id).version == 1


def test_channels_test_send_and_notification_log(aui: Ui) -> None:
    r = save_json(
        aui,
        "/alerts/channels/new",
        "/alerts/channels/new",
        {"name": "ops log", "config": {"type": "log"}},
    )
    assert r.status_code == 303, r.text[:2000]
    soup = aui.soup("/alerts/channels")
    row = soup.select_one("#channels tr[data-name='ops log']")
    assert row is not None
    cid = int(row["data-channel"])  # type: ignore[arg-type]
    r = post_form(aui, "/alerts/channels", f"/alerts/channels/{cid}/test")
    assert r.status_code == 200
    result = BeautifulSoup(r.text, "html.parser").select_one("#test-result")
    assert result is not None and result.get_text() == "Test notification to ops log: sent"
    # A failed delivery, as the deliverer records one.
    state(aui).save_dispatch(
        [],
        [],
        [
            NotificationRow(
                0,
                project(aui),
                cid,
                "g1",
                "firing",
                json.dumps({"text": "CPU high"}),
                "failed",
                7,
                0,
                "HTTP 503 from hooks.example",
                NOW_NS - MIN,
                0,
            )
        ],
    )
    log = aui.soup("/alerts/notifications")
    kinds = [r["data-kind"] for r in log.select("#notifications tbody tr")]
    assert "test" in kinds and "firing" in kinds
    failed = aui.soup("/alerts/notifications?status=failed").select("#notifications tbody tr")
    assert len(failed) == 1 and "failed" in (failed[0].get("class") or [])
    assert "HTTP 503 from hooks.example" in failed[0].get_text()
    assert "CPU high" in failed[0].get_text() and "ops log" in failed[0].get_text()
    assert aui.get("/alerts/notifications?status=bogus").status_code == 400
    # A slack channel's URL is a secret: masked on the page.
    r = save_json(
        aui,
        "/alerts/channels/new",
        "/alerts/channels/new",
        {
            "name": "team slack",
            "config": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/secret123"},
        },
    )
    assert r.status_code == 303, r.text[:2000]
    page = aui.get("/alerts/channels").text
    assert "secret123" not in page and "team slack" in page


def test_slos_sorted_by_budget_with_burn_rates_and_burndown(aui: Ui) -> None:
    ids = []
    for name, objective in (("Frontend loose", 50.0), ("Frontend strict", 99.99)):
        spec = {"name": name, "service": "frontend", "objective": objective, "window_days": 7}
        ids.append(location_id(save_json(aui, "/slos/new", "/slos/new", spec)))
    rows = aui.soup("/slos").select("#slos tr[data-slo]")
    names = [r["data-name"] for r in rows]
    assert names.index("Frontend strict") < names.index("Frontend loose")  # least budget first
    soup = aui.soup(f"/slos/{ids[1]}")
    rates = soup.select("#burn-rates td[data-window]")
    assert [td["data-window"] for td in rates] == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    burndown = json_block(soup, "burndown-data")
    assert len(burndown["t"]) == len(burndown["values"]) and burndown["t"]
    # The chart spans the SLO's whole window, which starts with the whole budget.
    assert burndown["hi"] - burndown["lo"] == 7 * 86400 and burndown["hi"] == NOW_NS // 10**9
    assert (burndown["t"][0], burndown["values"][0]) == (burndown["lo"], 100.0)
    assert burndown["t"][-1] == burndown["hi"] and len(burndown["t"]) >= 2  # up to now
    assert burndown["t"] == sorted(burndown["t"])
    rules = [a.get_text() for a in soup.select("#slo-rules a")]
    assert rules == ["Frontend strict — fast burn", "Frontend strict — slow burn"]
    # Once its rules were evaluated (one healthy, one broken), the page still renders.
    rule_ids = [int(a["href"].rsplit("/", 1)[1]) for a in soup.select("#slo-rules a")]  # type: ignore[union-attr]
    state(aui).save_evaluation(
        [],
        [],
        [],
        [
            RuleStatusRow(rule_ids[0], project(aui), NOW_NS, 1.0, "", 0),
            RuleStatusRow(rule_ids[1], project(aui), NOW_NS, 1.0, "the SLO went away", 0),
        ],
    )
    page = aui.get(f"/slos/{ids[1]}")
    assert page.status_code == 200, page.text[:2000]
    badges = BeautifulSoup(page.text, "html.parser").select("#slo-rules .badge")
    assert [b["title"] for b in badges] == ["the SLO went away"]
    r = save_json(
        aui, "/slos/new", "/slos/new", {"name": "x", "service": "frontend", "sli": "latency"}
    )
    assert r.status_code == 400 and "threshold_ms" in r.text
    r = post_form(aui, f"/slos/{ids[0]}", f"/slos/{ids[0]}/delete")
    assert r.status_code == 303 and aui.get(f"/slos/{ids[0]}").status_code == 404
