"""Error tracking and logs end to end, as a user runs them: a Flask app with ``heron.init()``
under a real WSGI server sends to a real ``heron serve``; everything is read back through
the read API (and the database file), the way the UI reads it.

- An exception inside a request becomes an event whose frames, context lines, request and
  trace id are right, and whose id the response announced (``X-Heron-Event-Id``).
- Two requests hitting the same bug are one issue; another bug is another issue.
- The request's log lines are stored with its trace id and listed for the trace.
- Secret canaries planted in headers, cookies, the query string, form data, locals,
  breadcrumbs and log messages appear in no API response and nowhere in the database file.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.helpers import Procs, agent_env, free_port, python
from tests.conftest import HeronProcess

pytestmark = pytest.mark.e2e

CANARIES = {
    "header": "CNRYhdr51c0",
    "auth": "CNRYauth9e2b",
    "cookie": "CNRYcookie7d1",
    "query": "CNRYqs44af",
    "form": "CNRYform0b7e",
    "local": "CNRYlocal6c5d",
    "crumb": "CNRYcrumb2f8a",
    "log": "CNRYlog83e1",
}
CONTROL = "order-lookup-ctl"  # kept on purpose: proves each search can see a match

APP = textwrap.dedent(
    """
    import logging, os
    import heron
    from flask import Flask, request
    from werkzeug.serving import make_server

    heron.init(service="errors-shop", endpoint=os.environ["HERON_URL"], key=os.environ["KEY"],
               environment="e2e", release="2.4.0")
    logging.basicConfig(level=logging.INFO)
    log = logging.getLogger("shop.checkout")
    app = Flask("shop")

    @app.get("/ok")
    def ok():
        log.info("looked up %s", "{control}")
        return "ok"

    def charge(order_id, card):
        api_secret = "{local}"
        log.info("calling payments with password={crumb}")
        return order_id / 0  # the checkout bug: line CHARGE_LINE

    @app.post("/checkout")
    def checkout():
        log.warning("checkout for {control}: token={log}")
        return str(charge(int(request.form.get("order", "1")), request.form.get("password")))

    @app.get("/other")
    def other():
        raise KeyError("{control}")

    make_server("127.0.0.1", int(os.environ["PORT"]), app, threaded=True).serve_forever()
    """
).format(control=CONTROL, **CANARIES)
CHARGE_LINE = "return order_id / 0  # the checkout bug: line CHARGE_LINE"


@pytest.fixture
def app(heron_server: HeronProcess, tmp_path: Path) -> Iterator[str]:
    procs = Procs(tmp_path)
    port = free_port()
    source = tmp_path / "shop_app.py"
    source.write_text(APP)
    env = agent_env(tmp_path, HERON_URL=heron_server.url, KEY=heron_server.key, PORT=str(port))
    proc = procs.start(python(str(source)), env, "shop")
    base = f"http://127.0.0.1:{port}"
    try:
        procs.wait_http(proc, f"{base}/ok")
        yield base
    finally:
        for started, _ in procs.started:
            procs.kill(started)


def checkout(base: str, order: int) -> httpx.Response:
    return httpx.post(
        f"{base}/checkout?page=2&access_token={CANARIES['query']}",
        data={"order": str(order), "password": CANARIES["form"]},
        headers={
            "X-Api-Key": CANARIES["header"],
            "Authorization": f"Bearer {CANARIES['auth']}",
            "Cookie": f"sessionid={CANARIES['cookie']}; theme=dark",
        },
        timeout=10,
    )


def wait_for(fetch: Callable[[], Any], ok: Callable[[Any], bool], what: str) -> Any:
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        last = fetch()
        if last is not None and ok(last):
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within 30 s; last: {last}")


def get(h: HeronProcess, path: str, **params: object) -> Any:
    r = h.api(path, **params)
    return r.json() if r.status_code == 200 else None


def test_flask_errors_and_logs_end_to_end(heron_server: HeronProcess, app: str) -> None:
    h = heron_server
    first, second = checkout(app, 7), checkout(app, 8)
    assert first.status_code == second.status_code == 500
    event_id = first.headers["X-Heron-Event-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", event_id)
    assert second.headers["X-Heron-Event-Id"] != event_id
    assert httpx.get(f"{app}/other", timeout=10).status_code == 500
    assert httpx.get(f"{app}/ok", timeout=10).status_code == 200

    # --- the event, as the UI's issue page reads it
    event = wait_for(lambda: get(h, f"/api/v1/events/{event_id}"), bool, "event")
    assert (event["service"], event["environment"], event["release"]) == (
        "errors-shop",
        "e2e",
        "2.4.0",
    )
    assert event["exc_type"] == "ZeroDivisionError" and event["transaction"] == "POST /checkout"
    (exc,) = event["exceptions"]
    frames = exc["frames"]
    names = [f["function"] for f in frames]
    assert names[-2:] == ["checkout", "charge"], names
    top = frames[-1]
    assert top["context_line"].strip() == CHARGE_LINE and top["in_app"] is True
    source_lines = (h.data_dir.parent / "shop_app.py").read_text().splitlines()
    assert source_lines[top["lineno"] - 1].strip() == CHARGE_LINE
    assert [line.strip() for line in top["pre_context"][-1:]] == [
        f'log.info("calling payments with password={CANARIES["crumb"]}")'.replace(
            CANARIES["crumb"], "[Filtered]"
        )
    ]
    assert event["request"]["method"] == "POST"
    assert event["request"]["url"].endswith("/checkout")
    assert "page=2" in event["request"]["query_string"]
    crumbs = [c.get("message") for c in event["breadcrumbs"]]
    assert any("calling payments" in (m or "") for m in crumbs), crumbs

    # --- its trace: the request's server span, and the request's log lines on it
    trace_id = event["trace_id"]
    trace = wait_for(lambda: get(h, f"/api/v1/traces/{trace_id}"), bool, "trace")
    (server_span,) = [s for s in trace["spans"] if s["kind"] == "server"]
    assert server_span["name"] == "POST /checkout"
    assert event["span_id"] in {s["span_id"] for s in trace["spans"]}
    logs = wait_for(
        lambda: get(h, f"/api/v1/traces/{trace_id}/logs"),
        lambda j: len(j["logs"]) >= 2,
        "trace logs",
    )["logs"]
    bodies = [line["body"] for line in logs]
    assert any(b.startswith(f"checkout for {CONTROL}: token=") for b in bodies), bodies
    assert all(line["trace_id"] == trace_id for line in logs)

    # --- grouping: the two checkouts are one issue, /other another
    issues = wait_for(
        lambda: get(h, "/api/v1/issues"),
        lambda j: sum(i["event_count"] for i in j["issues"]) >= 3,
        "issues",
    )["issues"]
    by_type = {i["exc_type"]: i for i in issues}
    # One issue per bug: the exception the agent reported is not counted again from the
    # exception event on the request's span.
    assert len(issues) == 2 and set(by_type) == {"ZeroDivisionError", "KeyError"}, issues
    assert by_type["ZeroDivisionError"]["event_count"] == 2
    assert by_type["KeyError"]["event_count"] == 1
    assert event["issue_id"] == by_type["ZeroDivisionError"]["id"]

    # --- no canary anywhere a user (or an attacker with the API) can look
    responses = [
        h.api(path, **params)
        for path, params in [
            ("/api/v1/issues", {}),
            (f"/api/v1/issues/{event['issue_id']}", {}),
            (f"/api/v1/issues/{event['issue_id']}/events", {}),
            (f"/api/v1/events/{event_id}", {}),
            (f"/api/v1/events/{second.headers['X-Heron-Event-Id']}", {}),
            ("/api/v1/logs", {"limit": 1000}),
            (f"/api/v1/traces/{trace_id}/logs", {}),
            (f"/api/v1/traces/{trace_id}", {}),
            ("/api/v1/traces", {"limit": 1000}),
        ]
    ]
    texts = [r.text for r in responses]
    assert all(r.status_code == 200 for r in responses), texts
    for text in texts:
        assert [c for c in CANARIES.values() if c in text] == [], text
    assert any(CONTROL in t for t in texts)
    h.stop()
    files = [p for p in h.data_dir.iterdir() if p.is_file()]
    data = b"".join(p.read_bytes() for p in files)
    assert CONTROL.encode() in data
    assert [c for c in CANARIES.values() if c.encode() in data] == []
