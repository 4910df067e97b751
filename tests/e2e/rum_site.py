"""A loopback web site for the RUM SDK's browser tests and benchmark.

``Site`` is a real HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, its own thread)
that serves pages registered by the test, the built ``rum.js``/``rum.mjs``/
``rum-react.mjs``, a deliberately slow image, and ``/api/ping`` (recording the path and
request headers it saw). It also receives beacons at ``POST /rum/v1/events`` and keeps their raw
bodies, so a second ``Site`` on another port is a cross-origin RUM endpoint.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from heron.server.ingest.rum_sdk import VENDOR

GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@dataclass
class Beacon:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(self.raw))


@dataclass
class Page:
    html: str
    headers: dict[str, str] = field(default_factory=dict)


class Site:
    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.beacons: list[Beacon] = []
        self.pings: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Site:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def page(self, path: str, html: str, **headers: str) -> str:
        self.pages[path] = Page(html, headers)
        return self.origin + path

    def events(self, app: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(envelope, event) of every event beaconed by ``app``, in arrival order."""
        with self.lock:
            bodies = [b.body for b in self.beacons]
        return [(b, e) for b in bodies if b.get("app") == app for e in b["events"]]

    def wait(self, app: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 10):
        """Poll until ``done(events of app)``; return the (envelope, event) pairs."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.events(app)
            if done([e for _, e in got]) or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self, status: int, body: bytes, ctype: str, **extra: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Cache-Control", "no-store")
            for k, v in extra.items():
                self.send_header(k.replace("_", "-"), v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def ping(self) -> dict[str, str]:
            """The request's headers (lower-case names), and its path as ``:path``."""
            return {":path": self.path, **{k.lower(): v for k, v in self.headers.items()}}

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path in site.pages:
                page = site.pages[url.path]
                self.answer(200, page.html.encode(), "text/html; charset=utf-8", **page.headers)
            elif url.path in ("/rum.js", "/rum.mjs", "/rum-react.mjs"):
                self.answer(200, (VENDOR / url.path[1:]).read_bytes(), "text/javascript")
            elif url.path == "/slow.gif":
                time.sleep(float(query.get("delay", ["1.2"])[0]))
                self.answer(200, GIF, "image/gif")
            elif url.path == "/api/ping":
                with site.lock:
                    site.pings.append(self.ping())
                self.answer(200, b'{"ok":true}', "application/json")
            else:
                self.answer(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if urlsplit(self.path).path == "/rum/v1/events":
                headers = {k.lower(): v for k, v in self.headers.items()}
                with site.lock:
                    site.beacons.append(Beacon(self.path, headers, raw))
                self.answer(202, b"", "text/plain")
            elif urlsplit(self.path).path == "/api/ping":
                with site.lock:
                    site.pings.append(self.ping())
                self.answer(200, b'{"ok":true}', "application/json")
            else:
                self.answer(404, b"not found", "text/plain")

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "traceparent, content-type")
            self.send_header("Access-Control-Allow-Methods", "GET, POST")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
