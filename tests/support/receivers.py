"""Real HTTP receivers on loopback sockets for the alert-notification tests (a
Slack-like, webhook or PagerDuty-like endpoint), and Debian's real Alertmanager.

``Receiver`` records every POST (path, headers, JSON body) and answers from a script of
statuses (``answers``: e.g. ``[503, 503]`` then 200s), so a channel can be down then up.
``start_alertmanager(root)`` runs ``prometheus-alertmanager`` on free ports with a temp
config and storage (install: ``scripts/install_alertmanager.sh``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """A running receiver; ``url`` is its base, ``received`` what it accepted (2xx)
    and ``attempts`` every request."""

    server: ThreadingHTTPServer
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    attempts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def receiver() -> Iterator[Receiver]:
    """An HTTP receiver on a free loopback port."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = state["rec"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec.attempts += 1
            status, headers = rec.answers.pop(0) if rec.answers else (200, {})
            if 200 <= status < 300:
                rec.received.append(Received(self.path, dict(self.headers), json.loads(body)))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["rec"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["rec"]
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Alertmanager:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v2/alerts", timeout=10)
        r.raise_for_status()
        result: list[dict[str, Any]] = r.json()
        return result


@contextmanager
def alertmanager(root: Path) -> Iterator[Alertmanager]:
    """Debian's Alertmanager on free loopback ports, its config and storage in ``root``."""
    binary = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
    if not Path(binary).exists():
        raise RuntimeError("install prometheus-alertmanager: scripts/install_alertmanager.sh")
    config = root / "alertmanager.yml"
    # JSON is YAML: one receiver that sends nowhere.
    config.write_text(json.dumps({"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}))
    port, cluster = free_port(), free_port()
    log_path = root / "alertmanager.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={root / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--cluster.listen-address=127.0.0.1:{cluster}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    am = Alertmanager(proc, port, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{am.url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager did not start: {log_path.read_text()}")
            time.sleep(0.1)
        yield am
    finally:
        proc.terminate()
        proc.wait(timeout=10)
