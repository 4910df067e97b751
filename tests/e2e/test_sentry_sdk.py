"""The unmodified sentry-sdk, pointed at ``heron serve`` by its DSN, over a real socket."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import brotli
import duckdb
import httpx
import orjson

from tests.conftest import HeronProcess

APP = Path(__file__).parent / "apps" / "sentry_app.py"
APP_LINES = APP.read_text().splitlines()


def dsn(h: HeronProcess, key: str | None = None, project: int | None = None) -> str:
    """The DSN ``heron serve`` printed at start (as a user copies it), or one built with
    another key or project."""
    if key is None and project is None:
        printed = re.search(r"Sentry DSN:\s+(\S+)", h.log())
        assert printed is not None, h.log()
        assert printed.group(1) == f"http://{h.key}@127.0.0.1:{h.port}/1"
        return printed.group(1)
    return f"http://{key or h.key}@127.0.0.1:{h.port}/{project or 1}"


def run_app(h: HeronProcess, mode: str, **env: str) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, str(APP), dsn(h), mode],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    return proc.returncode, [x for x in proc.stdout.split() if x]


def read_db(h: HeronProcess, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(h.data_dir / "heron.duckdb"), read_only=True)
    try:
        res = con.execute(sql)
        names = [d[0] for d in res.description or []]
        return [dict(zip(names, row, strict=True)) for row in res.fetchall()]
    finally:
        con.close()


def line_of(text: str) -> int:
    return next(i for i, line in enumerate(APP_LINES, 1) if text in line)


def test_errors_and_messages_become_issues(heron_server: HeronProcess) -> None:
    rc, ids = run_app(heron_server, "errors")
    assert rc == 1  # the uncaught KeyError ends the app
    assert len(ids) == 3 and all(len(i) == 32 for i in ids)
    heron_server.stop()
    events = read_db(heron_server, "SELECT * FROM error_events ORDER BY time_ns")
    assert [e["event_id"] for e in events[:3]] == ids
    assert len(events) == 4
    first, second, message, uncaught = events
    for e in events:
        assert (e["release"], e["environment"], e["source"]) == ("shop@1.2.3", "staging", "sentry")
        # The service is the release's package; server_name (the host) is a tag.
        assert e["service"] == "shop" and json.loads(e["tags"])["server_name"]
        assert e["sdk"].startswith("sentry.python") and e["platform"] == "python"
    # The same bug with different order ids: one issue.
    assert first["issue_id"] == second["issue_id"]
    assert first["exc_type"] == "ValueError" and first["message"] == "card declined for order 17"
    assert first["handled"] is True and first["culprit"] == "__main__ in charge"
    frames = json.loads(first["exceptions"])[-1]["frames"]
    assert [f["function"] for f in frames] == ["handle", "charge"]
    assert frames[-1]["lineno"] == line_of('raise ValueError(f"card declined')
    assert (
        frames[-1]["context_line"].strip()
        == 'raise ValueError(f"card declined for order {order_id}")'
    )
    assert frames[-1]["in_app"] is True and frames[-1]["vars"]["order_id"] == "17"
    assert frames[0]["lineno"] == line_of("        charge(order_id)")
    # The message.
    assert message["exc_type"] is None and message["level"] == "warning"
    assert message["message"] == "cache warmed in 35 ms"
    assert message["issue_id"] not in (first["issue_id"], uncaught["issue_id"])
    # The uncaught exception, sent by sentry's excepthook.
    assert uncaught["exc_type"] == "KeyError" and uncaught["handled"] is False
    assert json.loads(uncaught["exceptions"])[-1]["frames"][-1]["function"] == "explode"
    issues = {i["id"]: i for i in read_db(heron_server, "SELECT * FROM issues")}
    assert len(issues) == 3
    bug = issues[first["issue_id"]]
    assert bug["event_count"] == 2 and bug["status"] == "open"
    assert bug["title"] == "ValueError: card declined for order 17"
    assert bug["first_release"] == bug["last_release"] == "shop@1.2.3"
    assert issues[uncaught["issue_id"]]["title"] == "KeyError: 'missing_key'"


def post(
    h: HeronProcess,
    body: bytes,
    key: str | None = None,
    path: str = "/api/1/envelope/",
    **headers: str,
) -> httpx.Response:
    auth = f"Sentry sentry_version=7, sentry_key={key or h.key}"
    return httpx.post(
        f"{h.url}{path}", content=body, headers={"X-Sentry-Auth": auth, **headers}, timeout=30
    )


def envelope(event_id: str, message: str) -> bytes:
    event = orjson.dumps({"event_id": event_id, "message": message, "level": "info"})
    return b"\n".join([b"{}", orjson.dumps({"type": "event", "length": len(event)}), event, b""])


def test_bad_inputs_and_encodings_over_a_socket(heron_server: HeronProcess) -> None:
    h = heron_server
    r = post(h, b"\x89PNG garbage \x00\x01")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = post(h, b'{}\n{"type":"event"}\n{broken')
    assert r.status_code == 400 and "event is not valid JSON" in r.json()["error"]
    assert httpx.get(f"{h.url}/healthz").status_code == 200
    r = post(h, envelope("0" * 32, "x"), key="hk_not_a_key")
    assert r.status_code == 401
    r = post(h, envelope("0" * 32, "x"), path="/api/7/envelope/")
    assert r.status_code == 403
    r = httpx.post(f"{h.url}/api/1/envelope/", content=envelope("0" * 32, "x"))
    assert r.status_code == 401
    sent = {}
    for i, (encoding, compress) in enumerate(
        [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress)]
    ):
        eid = f"{i + 1:032x}"
        r = post(
            h, compress(envelope(eid, f"compressed {encoding}")), **{"Content-Encoding": encoding}
        )
        assert r.status_code == 200 and r.json() == {"id": eid}
        sent[eid] = f"compressed {encoding}"
    h.stop()
    rows = read_db(h, "SELECT event_id, message FROM error_events")
    assert {r["event_id"]: r["message"] for r in rows} == sent


CANARIES = {
    "header": "CANARYhdr7f3a91",
    "cookie": "CANARYcookie2b8e",
    "query": "CANARYquery5d1c",
    "form": "CANARYform9a0f",
    "local": "CANARYlocal3e7b",
    "local2": "CANARYlocaltwo44",
    "crumb": "CANARYcrumb8c2d",
    "crumb2": "CANARYcrumbtwo61",
    "extra": "CANARYextra0e4a",
    "message": "CANARYmessage7d",
}


def test_secret_canaries_never_reach_the_database(heron_server: HeronProcess) -> None:
    rc, ids = run_app(heron_server, "canaries", CANARIES=json.dumps(CANARIES))
    assert rc == 0 and len(ids) == 2
    heron_server.stop()
    rows = read_db(heron_server, "SELECT * FROM error_events")
    assert sorted(r["event_id"] for r in rows) == sorted(ids)
    dumped = json.dumps(rows + read_db(heron_server, "SELECT * FROM logs"), default=str)
    assert "CONTROL_visible_marker" in dumped  # the search does see stored text
    request = json.loads(next(r["request"] for r in rows if r["exc_type"]))
    assert request["headers"]["X-Request-Id"] == "req-visible-1" and request["data"]["qty"] == "2"
    for name, canary in CANARIES.items():
        assert canary not in dumped, name
    assert "4111 1111 1111 1111" not in dumped
    files = [p for p in heron_server.data_dir.iterdir() if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for name, canary in CANARIES.items():
            assert canary.encode() not in data, (name, path)
