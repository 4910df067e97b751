"""Alert notifications end to end below the evaluator: instances written to a real DuckDB
state store (as the evaluator would), the dispatcher's decisions under a fake clock, the
outbox delivered to real receivers on loopback sockets (webhook, Slack-like,
PagerDuty-like), aiosmtpd, and Debian's real Alertmanager."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg import sql

from heron.server.alerting.notify import (
    Deliverer,
    Dispatcher,
    UnsafeUrl,
    check_url,
    muted,
    send_test,
)
from heron.server.config import Config
from heron.server.model.alerting import fingerprint, instance_labels, parse_rule
from heron.server.store.alerting import InstanceRow
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.postgres.state import PostgresState
from heron.server.store.state import STATE_TABLES
from tests.server.postgres import POSTGRES_URL, drop_schema, fresh_schema
from tests.support.receivers import Receiver, alertmanager, free_port, receiver

S = 10**9
P = 1
T0 = 1_800_000_000 * S
CONFIG = dataclasses.replace(Config(), alert_allowed_hosts="127.0.0.1")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def postgres_state() -> Iterator[PostgresState]:
    schema = fresh_schema()
    state = PostgresState(POSTGRES_URL, schema=schema)
    yield state
    state.close()
    drop_schema(schema)


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store whose ``state`` is DuckDB's or PostgreSQL's (emptied for each test)."""
    if request.param == "duckdb":
        s = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
        yield s
        s.close()
        return
    pg: PostgresState = request.getfixturevalue("postgres_state")
    tables = [t for t in STATE_TABLES if t.startswith(("alert_", "notification"))]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
        con.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                sql.SQL(", ").join(sql.Identifier(pg.schema, t) for t in tables)
            )
        )
    yield SimpleNamespace(state=pg)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def channel(store: Any, name: str, config: dict[str, Any]) -> int:
    spec = json.dumps({"name": name, "config": config})
    return int(store.state.create_alert_config(P, "channel", name, spec, "api", T0).id)


def rule(store: Any, name: str, **spec: Any) -> int:
    data = {"name": name, "condition": {"kind": "red", "figure": "p95_ms", "threshold": 100}}
    data.update(spec)
    body = parse_rule(data).to_json()
    return int(store.state.create_alert_config(P, "rule", name, body, "api", T0).id)


def put(
    store: Any, rule_id: int, state: str, at: int, service: str = "checkout", **kw: Any
) -> InstanceRow:
    """Write one instance as the evaluator would (labels from the stored rule)."""
    row = store.state.get_alert_config(P, "rule", rule_id)
    labels = instance_labels(parse_rule(json.loads(row.spec)), {"service": service})
    fp = fingerprint(labels)
    link = f"http://heron.test/service?service={service}"
    inst = InstanceRow(
        rule_id, fp, P, json.dumps(labels), json.dumps({"summary": f"slow {service}", "link": link}),
        state, 250.0, at, at if state != "pending" else 0,
        at if state == "resolved" else 0, at, at, **kw,
    )  # fmt: skip
    store.state.save_evaluation([inst], [], [], [])
    return inst


def cycle(store: Any, clock: Clock, at_s: float, config: Config = CONFIG) -> int:
    """One dispatch + delivery at T0 + at_s; returns the notifications queued."""
    clock.now = T0 + int(at_s * S)
    queued = Dispatcher(store, public_url="http://heron.test", clock=clock).run(clock.now)
    Deliverer(store, config=config, clock=clock).deliver_due(clock.now)
    return queued


def log(store: Any) -> list[Any]:
    return list(reversed(store.state.list_notifications(P)))


# ------------------------------------------------------------------ grouping and timing
def test_group_wait_interval_repeat_and_resolve(store: Any, hook: Receiver) -> None:
    clock = Clock()
    channel(store, "hook", {"type": "webhook", "url": hook.url + "/in", "headers": {"X-K": "s3"}})
    rid = rule(store, "Slow", channels=["hook"], group_wait=30, group_interval=60,
               repeat_interval=600)  # fmt: skip
    put(store, rid, "firing", T0)
    assert cycle(store, clock, 0) == 0  # group_wait
    assert cycle(store, clock, 29) == 0
    assert cycle(store, clock, 30) == 1
    assert len(hook.received) == 1
    got = hook.received[0]
    assert got.path == "/in" and got.headers["X-K"] == "s3"
    body = got.body
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "hook"
    assert body["groupLabels"] == {"alertname": "Slow"}
    assert body["commonLabels"]["service"] == "checkout"
    (alert,) = body["alerts"]
    assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["annotations"]["summary"] == "slow checkout"
    assert alert["generatorURL"] == "http://heron.test/service?service=checkout"
    assert cycle(store, clock, 60) == 0  # unchanged, repeat not due
    put(store, rid, "firing", T0 + 70 * S, service="cart")  # a new alert in the group
    assert cycle(store, clock, 80) == 0  # group_interval from the last send (30 + 60)
    assert cycle(store, clock, 90) == 1
    assert len(hook.received[-1].body["alerts"]) == 2
    assert cycle(store, clock, 600) == 0
    assert cycle(store, clock, 690) == 1  # repeat_interval after the last send
    assert hook.received[-1].body["status"] == "firing"
    put(store, rid, "resolved", T0 + 700 * S)
    put(store, rid, "resolved", T0 + 700 * S, service="cart")
    assert cycle(store, clock, 710) == 0  # group_interval after 690
    assert cycle(store, clock, 750) == 1
    resolved = hook.received[-1].body
    assert resolved["status"] == "resolved"
    assert {a["status"] for a in resolved["alerts"]} == {"resolved"}
    assert resolved["alerts"][0]["endsAt"].startswith("2027-01-15T08:")
    assert cycle(store, clock, 900) == 0
    assert store.state.notification_groups() == []  # told everything: dropped
    assert [n.status for n in log(store)] == ["sent"] * 4


def test_restart_neither_resends_nor_forgets(store: Any, hook: Receiver) -> None:
    clock = Clock()
    channel(store, "hook", {"type": "webhook", "url": hook.url})
    rid = rule(store, "Slow", channels=["hook"], group_wait=0, group_interval=60)
    put(store, rid, "firing", T0)
    assert cycle(store, clock, 0) == 1
    for at in (1, 10, 50):  # a new Dispatcher each time: a restarted server
        assert cycle(store, clock, at) == 0
    put(store, rid, "resolved", T0 + 55 * S)
    assert cycle(store, clock, 60) == 1
    assert [r.body["status"] for r in hook.received] == ["firing", "resolved"]


def test_pending_and_short_lived_alerts_send_nothing(store: Any, hook: Receiver) -> None:
    clock = Clock()
    channel(store, "hook", {"type": "webhook", "url": hook.url})
    rid = rule(store, "Slow", channels=["hook"], group_wait=30)
    inst = put(store, rid, "pending", T0)
    assert cycle(store, clock, 0) == 0
    put(store, rid, "firing", T0 + 5 * S)
    assert cycle(store, clock, 10) == 0  # group_wait running
    store.state.save_evaluation([], [(rid, inst.fingerprint)], [], [])  # gone before the wait
    assert cycle(store, clock, 40) == 0
    assert hook.attempts == 0
    assert store.state.notification_groups() == []


def test_flapping_input_is_no_storm(store: Any, hook: Receiver) -> None:
    clock = Clock()
    channel(store, "hook", {"type": "webhook", "url": hook.url})
    rid = rule(store, "Flappy", channels=["hook"], group_wait=0, group_interval=300)
    sent = 0
    for step in range(60):  # firing and resolved every 10 s for 10 minutes
        put(store, rid, "firing" if step % 2 == 0 else "resolved", T0 + step * 10 * S)
        sent += cycle(store, clock, step * 10)
    assert sent == 3  # at 0, 300 and 600 s: one per group_interval
    assert len(hook.received) == 3


def test_deleted_rule_tells_its_alerts_resolved(store: Any, hook: Receiver) -> None:
    clock = Clock()
    channel(store, "hook", {"type": "webhook", "url": hook.url})
    rid = rule(store, "Slow", channels=["hook"], group_wait=0)
    put(store, rid, "firing", T0)
    assert cycle(store, clock, 0) == 1
    assert store.state.delete_alert_config(P, "rule", rid)
    assert cycle(store, clock, 10) == 1
    body = hook.received[-1].body
    assert body["status"] == "resolved"
    assert body["alerts"][0]["labels"]["alertname"] == "Slow"
    assert cycle(store, clock, 20) == 0
    assert store.state.notification_groups() == []


# ------------------------------------------------------------------ delivery and retries
def test_channel_down_then_up_delivers_once(store: Any, hook: Receiver) -> None:
    clock = Clock()
    hook.answers = [(503, {}), (503, {}), (502, {})]
    channel(store, "hook", {"type": "webhook", "url": hook.url})
    rid = rule(store, "Slow", channels=["hook"], group_wait=0, repeat_interval=60)
    put(store, rid, "firing", T0)
    assert cycle(store, clock, 0) == 1
    (row,) = log(store)
    assert row.status == "pending" and row.attempts == 1 and "HTTP 503" in row.last_error
    assert row.next_attempt_ns == T0 + 5 * S
    assert cycle(store, clock, 4) == 0 and hook.attempts == 1  # not due yet
    # While it waits, a due repeat adds nothing to the outbox (no backlog).
    assert cycle(store, clock, 5) == 0 and hook.attempts == 2
    assert log(store)[0].next_attempt_ns == T0 + 15 * S  # 5 s, doubling
    assert cycle(store, clock, 120) == 0 and hook.attempts == 3
    assert cycle(store, clock, 140) == 0 and hook.attempts == 4
    assert len(hook.received) == 1
    (row,) = log(store)
    assert row.status == "sent" and row.attempts == 4 and row.sent_ns == T0 + 140 * S
    assert cycle(store, clock, 200) == 1  # the repeat, now the channel is up
    assert len(hook.received) == 2


def test_retry_after_is_honoured_and_retries_end(store: Any, hook: Receiver) -> None:
    clock = Clock()
    hook.answers = [(429, {"Retry-After": "120"})] + [(500, {})] * 20
    config = dataclasses.replace(CONFIG, alert_retry_max_s=300)
    channel(store, "hook", {"type": "slack", "url": hook.url})
    rid = rule(store, "Slow", channels=["hook"], group_wait=0)
    put(store, rid, "firing", T0)
    cycle(store, clock, 0, config)
    assert log(store)[0].next_attempt_ns == T0 + 120 * S
    for at in range(120, 400, 5):
        cycle(store, clock, at, config)
    (row,) = log(store)
    assert row.status == "failed" and "HTTP 500" in row.last_error
    assert 3 <= row.attempts <= 6


def test_a_client_error_fails_at_once(store: Any, hook: Receiver) -> None:
    clock = Clock()
    hook.answers = [(404, {})]
    channel(store, "hook", {"type": "webhook", "url": hook.url})
    put(store, rule(store, "Slow", channels=["hook"], group_wait=0), "firing", T0)
    cycle(store, clock, 0)
    (row,) = log(store)
    assert row.status == "failed" and row.attempts == 1 and "HTTP 404" in row.last_error


# ------------------------------------------------------------------ silences, inhibition
def test_silence_mutes_and_its_end_lets_the_alert_through(store: Any, hook: Receiver) -> None:
    clock = Clock()
    channel(store, "hook", {"type": "webhook", "url": hook.url})
    rid = rule(store, "Slow", channels=["hook"], group_wait=0)
    silence = {
        "matchers": [{"label": "service", "value": "check.*", "op": "=~"}],
        "starts": "2027-01-15T08:00:00Z",
        "ends": "2027-01-15T08:10:00Z",  # T0 is 08:00:00
    }
    sid = store.state.create_alert_config(P, "silence", "s1", json.dumps(silence), "api", T0).id
    inst = put(store, rid, "firing", T0)
    rows = store.state.list_alert_config(None, "rule")
    silences = store.state.list_alert_config(None, "silence")
    assert muted([inst], rows, silences, T0) == {(rid, inst.fingerprint): f"silenced by {sid}"}
    assert muted([inst], rows, silences, T0 + 600 * S) == {}
    assert cycle(store, clock, 0) == 0 and cycle(store, clock, 300) == 0
    assert cycle(store, clock, 600) == 1
    assert hook.received[0].body["alerts"][0]["labels"]["service"] == "checkout"


def test_firing_critical_inhibits_warnings_of_its_group(store: Any, hook: Receiver) -> None:
    clock = Clock()
    channel(store, "hook", {"type": "webhook", "url": hook.url})
    crit = rule(store, "Down", severity="critical", group="svc", channels=["hook"], group_wait=0)
    warn = rule(store, "Slow", severity="warning", group="svc", channels=["hook"], group_wait=0)
    other = rule(store, "Other", severity="warning", channels=["hook"], group_wait=0)
    c = put(store, crit, "firing", T0)
    w = put(store, warn, "firing", T0)
    w2 = put(store, warn, "firing", T0, service="cart")  # another service: not inhibited
    o = put(store, other, "firing", T0)  # no inhibition group
    m = muted(
        [c, w, w2, o],
        store.state.list_alert_config(None, "rule"),
        store.state.list_alert_config(None, "silence"),
        T0,
    )
    assert m == {(warn, w.fingerprint): "inhibited by Down"}
    assert cycle(store, clock, 0) == 3
    sent = sorted(
        (a["labels"]["alertname"], a["labels"]["service"])
        for r in hook.received
        for a in r.body["alerts"]
    )
    assert sent == [("Down", "checkout"), ("Other", "checkout"), ("Slow", "cart")]


# ------------------------------------------------------------------ escalation
def test_unacked_critical_escalates_once(store: Any, hook: Receiver) -> None:
    clock = Clock()
    channel(store, "hook", {"type": "webhook", "url": hook.url + "/team"})
    channel(store, "pager", {"type": "webhook", "url": hook.url + "/pager"})
    spec = {"severity": "critical", "channels": ["hook"], "group_wait": 0,
            "escalate_after": 300, "escalate_to": ["pager"], "repeat_interval": 3600}  # fmt: skip
    rid = rule(store, "Down", **spec)
    acked = rule(store, "Acked", **spec)
    put(store, rid, "firing", T0)
    inst = put(store, acked, "firing", T0)
    assert store.state.ack_alert(P, acked, inst.fingerprint, "ann", T0 + 60 * S)
    assert cycle(store, clock, 0) == 2
    assert cycle(store, clock, 299) == 0
    assert cycle(store, clock, 300) == 1
    assert cycle(store, clock, 900) == 0  # once per firing episode
    pages = [r for r in hook.received if r.path == "/pager"]
    assert len(pages) == 1
    assert pages[0].body["alerts"][0]["labels"]["alertname"] == "Down"
    assert [n.kind for n in log(store)] == ["firing", "firing", "escalation"]


# ------------------------------------------------------------------ channel formats
def test_slack_and_pagerduty_payloads(store: Any, hook: Receiver) -> None:
    clock = Clock()
    channel(store, "slack", {"type": "slack", "url": hook.url + "/slack"})
    pd = {"type": "pagerduty", "url": hook.url + "/pd", "routing_key": "R0UT1NG"}
    channel(store, "pd", pd)
    rid = rule(store, "Slow", severity="critical", channels=["slack", "pd"], group_wait=0,
               group_interval=0)  # fmt: skip
    put(store, rid, "firing", T0)
    assert cycle(store, clock, 0) == 2
    slack = next(r.body for r in hook.received if r.path == "/slack")
    assert slack["text"].startswith("[FIRING] Slow (1 firing)")
    assert slack["blocks"][0]["type"] == "header"
    texts = json.dumps(slack["blocks"])
    assert "250" in texts and "http://heron.test/service?service=checkout" in texts
    trigger = next(r.body for r in hook.received if r.path == "/pd")
    assert trigger["routing_key"] == "R0UT1NG" and trigger["event_action"] == "trigger"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "checkout"
    # The routing key is a secret: added at send time, not kept in the log.
    assert all("R0UT1NG" not in n.payload for n in log(store))
    put(store, rid, "resolved", T0 + 10 * S)
    assert cycle(store, clock, 10) == 2
    resolve = [r.body for r in hook.received if r.path == "/pd"][-1]
    assert resolve == {
        "routing_key": "R0UT1NG",
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


def test_email_over_smtp_with_auth(store: Any) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    got: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(envelope.content)
            return "250 OK"

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = data.login == b"heron" and data.password == b"pw"
        return AuthResult(success=ok, handled=False)  # handled=False: answer 535 itself

    port = free_port()
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=auth,
                      auth_require_tls=False)  # fmt: skip
    smtp.start()
    try:
        clock = Clock()
        cfg = {"type": "email", "host": "127.0.0.1", "port": port, "security": "none",
               "username": "heron", "password": "pw", "from": "heron@x.test",
               "to": ["ops@x.test"]}  # fmt: skip
        mail = channel(store, "mail", cfg)
        rid = rule(store, "Slow <b>", channels=["mail"], group_wait=0)
        put(store, rid, "firing", T0, service="<script>x</script>")
        assert cycle(store, clock, 0) == 1
        assert log(store)[0].status == "sent"
        (raw,) = got
        msg = message_from_bytes(raw)
        assert msg["To"] == "ops@x.test" and msg["Subject"].startswith("[FIRING] Slow <b>")
        parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk()
                 if not p.is_multipart()}  # fmt: skip
        assert "slow <script>x</script>" in parts["text/plain"]
        assert "&lt;script&gt;" in parts["text/html"] and "<script>" not in parts["text/html"]
        # A wrong password: the SMTP server's 535 fails the notification at once.
        bad = dict(cfg, password="nope")
        store.state.update_alert_config(P, "channel", mail, "mail",
                                         json.dumps({"name": "mail", "config": bad}), T0)  # fmt: skip
        row = send_test(
            store, P, store.state.get_alert_config(P, "channel", mail), T0, config=CONFIG
        )
        assert row.status == "failed" and "535" in row.last_error
    finally:
        smtp.stop()


def test_push_to_a_real_alertmanager(store: Any, tmp_path: Path) -> None:
    clock = Clock()
    with alertmanager(tmp_path) as am:
        channel(store, "am", {"type": "alertmanager", "url": am.url})
        rid = rule(store, "Slow", channels=["am"], labels={"team": "shop"})
        now = time.time_ns() - 120 * S  # pushes happen in the past: the resolve has ended
        clock.now = now
        put(store, rid, "firing", now - 60 * S)
        d = Dispatcher(store, public_url="http://heron.test", clock=clock)
        assert d.run(now) == 1
        assert Deliverer(store, config=CONFIG, clock=clock).deliver_due(now) == 1
        (alert,) = am.alerts()
        assert alert["labels"] == {"alertname": "Slow", "severity": "warning",
                                   "service": "checkout", "team": "shop"}  # fmt: skip
        assert alert["status"]["state"] == "active"
        assert alert["generatorURL"] == "http://heron.test/service?service=checkout"
        # Re-pushed each minute while firing (Alertmanager expires what is not re-sent).
        assert d.run(now + 30 * S) == 0
        assert d.run(now + 60 * S) == 1
        assert d.run(now + 61 * S) == 0  # one push at a time per group
        assert Deliverer(store, config=CONFIG, clock=clock).deliver_due(now + 61 * S) == 1
        put(store, rid, "resolved", now + 61 * S)
        assert d.run(now + 62 * S) == 1
        assert Deliverer(store, config=CONFIG, clock=clock).deliver_due(now + 62 * S) == 1
        active = [a for a in am.alerts() if a["status"]["state"] == "active"]
        assert active == []


# ------------------------------------------------------------------ SSRF and test sends
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9093/",
        "http://localhost/hook",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "ftp://example.com/",
    ],
)
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url, "")


def test_allowed_hosts_and_private_networks_pass() -> None:
    check_url("http://10.1.2.3/hook", "")
    check_url("http://127.0.0.1:9093/", "127.0.0.1")
    check_url("http://127.0.0.5:9093/", "127.0.0.0/8")
    check_url("http://localhost:9093/", "localhost")
    check_url("https://no-such-host.invalid/x", "")  # checked again at send time
    with pytest.raises(UnsafeUrl, match="alert_allowed_hosts"):
        check_url("http://127.0.0.1/", "10.0.0.0/8")


def test_send_refuses_loopback_unless_allowed(store: Any, hook: Receiver) -> None:
    cid = channel(store, "hook", {"type": "webhook", "url": hook.url})
    row = store.state.get_alert_config(P, "channel", cid)
    refused = send_test(store, P, row, T0, config=Config())
    assert refused.status == "failed" and "loopback" in refused.last_error
    assert hook.attempts == 0
    ok = send_test(store, P, row, T0 + S, config=CONFIG)
    assert ok.status == "sent" and ok.kind == "test" and ok.sent_ns == T0 + S
    assert hook.received[0].body["alerts"][0]["labels"]["alertname"] == "Heron test notification"
    assert [(n.kind, n.status) for n in log(store)] == [("test", "failed"), ("test", "sent")]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_over_tls(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, security: str
) -> None:
    import ssl
    import subprocess

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this server only
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    got: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append((session.authenticated, envelope.rcpt_tos))
            return "250 OK"

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        return AuthResult(success=data.password == b"pw", handled=False)

    port = free_port()
    tls: dict[str, Any] = (
        {"tls_context": server_ctx, "require_starttls": True}
        if security == "starttls"
        # aiosmtpd does not count implicit TLS as TLS for AUTH: the socket is TLS anyway.
        else {"ssl_context": server_ctx, "auth_require_tls": False}
    )
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=auth, **tls)
    smtp.start()
    try:
        cfg = {"type": "email", "host": "127.0.0.1", "port": port, "security": security,
               "username": "heron", "password": "pw", "from": "heron@x.test",
               "to": ["a@x.test", "b@x.test"]}  # fmt: skip
        cid = channel(store, "mail", cfg)
        row = send_test(
            store, P, store.state.get_alert_config(P, "channel", cid), T0, config=CONFIG
        )
        assert row.status == "sent", row.last_error
        assert got == [(True, ["a@x.test", "b@x.test"])]
    finally:
        smtp.stop()


def test_unknown_channel_is_skipped_and_logged_once(
    store: Any, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    channel(store, "hook", {"type": "webhook", "url": hook.url})
    rid = rule(store, "Slow", channels=["nope", "hook"], group_wait=0)
    put(store, rid, "firing", T0)
    d = Dispatcher(store, public_url="http://heron.test", clock=clock)
    assert d.run(T0) == 1 and d.run(T0 + S) == 0
    warnings = [r.getMessage() for r in caplog.records if "no channel" in r.getMessage()]
    assert warnings == ["alerting: rule 'Slow' names no channel 'nope'; skipped"]


def test_deleted_channel_fails_its_pending_notification(store: Any, hook: Receiver) -> None:
    clock = Clock()
    hook.answers = [(503, {})]
    cid = channel(store, "hook", {"type": "webhook", "url": hook.url})
    put(store, rule(store, "Slow", channels=["hook"], group_wait=0), "firing", T0)
    assert cycle(store, clock, 0) == 1
    assert store.state.delete_alert_config(P, "channel", cid)
    cycle(store, clock, 10)
    (row,) = log(store)
    assert row.status == "failed" and row.last_error == "the channel was deleted"
    assert hook.attempts == 1


def test_webhook_max_alerts_truncates() -> None:
    from heron.server.alerting.notify import build_payload
    from heron.server.model.alerting import parse_channel

    spec = parse_channel({"name": "w", "config": {"type": "webhook", "url": "http://x.test/",
                                                  "max_alerts": 2}})  # fmt: skip
    alerts = [
        {"status": "firing", "labels": {"n": str(i)}, "annotations": {}, "value": 1.0,
         "starts_ns": T0, "ends_ns": 0, "fingerprint": f"{i:016x}", "link": ""}
        for i in range(5)
    ]  # fmt: skip
    n = {"kind": "firing", "status": "firing", "group_key": "1:ab", "group_labels": {},
         "common_labels": {}, "common_annotations": {}, "receiver": "w",
         "external_url": "http://heron.test", "link": "", "title": "T", "alerts": alerts}  # fmt: skip
    body = json.loads(build_payload("firing", spec, n))
    assert body["truncatedAlerts"] == 3 and [a["labels"]["n"] for a in body["alerts"]] == ["0", "1"]
    assert body["alerts"][0]["startsAt"] == "2027-01-15T08:00:00.000Z"
