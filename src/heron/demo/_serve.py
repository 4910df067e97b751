"""Process entry point shared by the demo apps: agent setup, serving, clean shutdown.

Each app runs in its own process (``python -m heron.demo.shop ...``) started by the
runner. It binds an ephemeral loopback port, announces it through ``--ready-file``, and on
SIGTERM/SIGINT (or when its parent disappears) stops serving and shuts the agent down so
buffered spans are flushed before the process exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from heron._version import __version__

AGENT_SHUTDOWN_TIMEOUT_S = 5.0
EXPLAIN_THRESHOLD_MS = 100.0  # the slow query log's default threshold too


def parse_args(argv: Sequence[str] | None, description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--db", required=True, type=Path, help="SQLite file (re-seeded on start)")
    p.add_argument("--ready-file", required=True, type=Path, help="receives the bound port")
    p.add_argument("--heron-url", required=True, help="Heron OTLP endpoint")
    p.add_argument("--key", required=True, help="Heron ingest key")
    p.add_argument("--port", type=int, default=0, help="port to bind (default: any free one)")
    p.add_argument("--inventory-url", help="demo-inventory base URL (shop only)")
    p.add_argument("--browser-key", help="Heron browser key for the pages' RUM SDK (shop only)")
    return p.parse_args(argv)


def serve_app(service: str, args: argparse.Namespace, build: Callable[[], Any]) -> int:
    """Init the agent, build the WSGI app with ``build()``, serve until told to stop."""
    import heron

    # The apps log at INFO: heron.init() sends records as OTLP logs (with their trace).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    heron.init(
        service=service,
        endpoint=args.heron_url,
        key=args.key,
        environment="demo",
        release=__version__,
        # The demo apps live inside the heron package, whose frames are not "in app".
        in_app_include=["heron.demo", "__main__"],
        # The shop's search takes ~150 ms on SQLite: below the default 500 ms, so the
        # demo lowers the threshold to show SQLite's plan of it in the slow query log.
        explain_threshold_ms=EXPLAIN_THRESHOLD_MS,
    )
    server = make_server("127.0.0.1", args.port, build(), threaded=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines
    stop = _install_stop_handlers(server)
    _write_ready(args.ready_file, server.server_port)
    try:
        server.serve_forever()
    finally:
        stop.set()
        server.server_close()
        heron.shutdown(timeout=AGENT_SHUTDOWN_TIMEOUT_S)
    return 0


def _install_stop_handlers(server: BaseWSGIServer) -> threading.Event:
    stopping = threading.Event()

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            # shutdown() waits for serve_forever(), which runs on this (main) thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = os.getppid()

    def watch_parent() -> None:
        # If the runner dies without stopping us, do not linger as an orphan.
        while not stopping.wait(1.0):
            if os.getppid() != parent:
                stop()

    threading.Thread(target=watch_parent, name="demo-parent-watch", daemon=True).start()
    return stopping


def _write_ready(path: Path, port: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(port))
    tmp.replace(path)  # atomic: the runner never reads a half-written port
