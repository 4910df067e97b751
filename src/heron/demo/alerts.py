"""The demo's alerting: a rule set that fires within minutes on the shop's slow search
and failing checkout, and a local webhook receiver with a page showing what arrived.

The runner writes :func:`rules_toml` to the data dir and points ``alert_rules_path`` at
it, and starts an :class:`AlertSink` on a loopback port before the server (its address is
allowed past the outgoing-URL check with ``alert_allowed_hosts``). Notifications go to the
server log (channel ``demo log``) and to the sink (channel ``demo webhook``).
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
MAX_KEPT = 200
MAX_BODY = 1 << 20


def rules_toml(webhook_url: str) -> str:
    """The demo's channels and rules (the TOML rule-file format of docs/alerting.md)."""
    return f"""# Written by `heron demo`: alert rules that fire within minutes on the demo shop.

[[channel]]
name = "demo log"
config = {{ type = "log" }}

[[channel]]
name = "demo webhook"
config = {{ type = "webhook", url = {json.dumps(webhook_url)} }}

[[rule]]
name = "Slow search"
severity = "warning"
for = "1m"
interval = "15s"
group_wait = "5s"
channels = ["demo log", "demo webhook"]
condition = {{ kind = "red", figure = "p95_ms", per = "endpoint", service = "demo-shop", endpoint = "GET /search", window = "2m", op = ">", threshold = 100 }}
annotations = {{ summary = "{{{{ labels.endpoint }}}} p95 is {{{{ value|round(0) }}}} ms (over {{{{ threshold }}}} ms)", description = "The shop's search runs correlated subqueries over an unindexed table." }}

[[rule]]
name = "Checkout failing"
severity = "critical"
for = "1m"
interval = "15s"
group_wait = "5s"
channels = ["demo log", "demo webhook"]
condition = {{ kind = "red", figure = "error_rate", per = "endpoint", service = "demo-shop", endpoint = "POST /checkout", window = "2m", op = ">", threshold = 5 }}
annotations = {{ summary = "checkout error rate {{{{ value|round(1) }}}} % (over {{{{ threshold }}}} %)", description = "Declined cards and out-of-stock reservations end in a 500." }}
"""


# Created through the API at start: checkout fails often (~25 %), search is slow.
DEMO_SLOS: list[dict[str, Any]] = [
    {
        "name": "Checkout availability",
        "service": "demo-shop",
        "endpoint": "POST /checkout",
        "objective": 99.0,
        "window_days": 7,
        "channels": ["demo log", "demo webhook"],
    },
    {
        "name": "Search under 300 ms",
        "service": "demo-shop",
        "endpoint": "GET /search",
        "sli": "latency",
        "threshold_ms": 300,
        "objective": 95.0,
        "window_days": 7,
        "channels": ["demo log"],
    },
]


class AlertSink:
    """A webhook receiver on a loopback port: keeps the last notifications in memory,
    shows them at ``/`` (escaped: alert labels are telemetry) and as JSON at
    ``/received.json``."""

    def __init__(self, host: str = HOST, port: int = 0) -> None:
        self.host = host
        self.received: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="demo-alert-sink", daemon=True
        )

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://{self.host}:{port}"

    def start(self) -> AlertSink:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, path: str, body: bytes) -> None:
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        with self.lock:
            self.received.append({"at": time.time(), "path": path, "payload": payload})

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)

    def page(self) -> str:
        rows = []
        for item in reversed(self.snapshot()):
            when = time.strftime("%H:%M:%S", time.localtime(item["at"]))
            p = item["payload"]
            status = p.get("status", "") if isinstance(p, dict) else ""
            alerts = p.get("alerts", []) if isinstance(p, dict) else []
            names = ", ".join(
                str(a.get("annotations", {}).get("summary") or a.get("labels", {}).get("alertname"))
                for a in alerts
                if isinstance(a, dict)
            )
            body = json.dumps(p, indent=2)
            rows.append(
                f"<tr><td>{when}</td><td>{html.escape(str(status))}</td>"
                f"<td>{html.escape(names)}</td><td><details><summary>payload</summary>"
                f"<pre>{html.escape(body)}</pre></details></td></tr>"
            )
        table = (
            "".join(rows)
            or '<tr><td colspan="4">Nothing yet: rules fire after ~2 minutes.</td></tr>'
        )
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta http-equiv="refresh" content="10"><title>Demo webhook receiver</title></head>'
            "<body><h1>Notifications received by the demo webhook</h1>"
            "<table><thead><tr><th>At</th><th>Status</th><th>Alerts</th><th></th></tr></thead>"
            f"<tbody>{table}</tbody></table></body></html>"
        )


def _handler(sink: AlertSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                self._send(413, "text/plain", b"too large")
                return
            sink.add(self.path, self.rfile.read(length))
            self._send(200, "application/json", b"{}")

        def do_GET(self) -> None:
            if self.path.startswith("/received.json"):
                body = json.dumps(sink.snapshot()).encode()
                self._send(200, "application/json", body)
            else:
                self._send(200, "text/html; charset=utf-8", sink.page().encode())

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.send_header("content-security-policy", "default-src 'none'")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the page shows what arrived

    return Handler
