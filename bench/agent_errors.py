"""Agent cost of error capture and logging: CPU µs per captured exception and per log record.

Each setup runs in its own process (heron and sentry-sdk both install process-wide hooks)
and sends to a real loopback HTTP sink that answers 200, so building, scrubbing,
serialising and sending are all counted: CPU is ``time.process_time()`` (every thread,
the exporter's included), each round ends with a flush inside the timed region.

- ``heron_exc_locals`` / ``heron_exc_nolocals``: ``heron.capture_exception`` of an
  exception raised 10 frames deep, local variables on (the default) / off;
- ``sentry_exc_locals`` / ``sentry_exc_nolocals``: ``sentry_sdk.capture_exception`` of the
  same exception (sentry-sdk's real HTTP transport to the same sink);
- ``heron_log`` / ``heron_log_error``: ``logger.info`` (one OTLP log record) and
  ``logger.exception`` (a log record carrying an event) through heron's handler;
- ``null_log``: ``logger.info`` to a ``NullHandler``, the floor of ``logging`` itself.

Run: ``python bench/agent_errors.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from common import machine, machine_line, print_table, write_json

MODES = (
    "heron_exc_locals",
    "heron_exc_nolocals",
    "sentry_exc_locals",
    "sentry_exc_nolocals",
    "heron_log",
    "heron_log_error",
    "null_log",
)


def deep(n: int, user_id: int, password: str) -> None:
    order = {"id": user_id, "items": [1, 2, 3], "note": "x" * 50}
    if n == 0:
        raise ValueError(f"order {order['id']} failed")
    deep(n - 1, user_id, password)


def raised() -> BaseException:
    try:
        deep(8, 42, "hunter2")  # + raised() + the top frame: ~10 frames
    except ValueError as e:
        return e
    raise AssertionError


def setup(mode: str, url: str) -> Any:
    """Configure the mode's agent; return a function doing one unit of work, and a flush."""
    import logging

    if mode.startswith("heron"):
        import heron

        heron.init(
            service="bench",
            endpoint=url,
            instrument=[],
            include_locals=mode != "heron_exc_nolocals",
        )
        log = logging.getLogger("bench")
        log.setLevel(logging.INFO)
        if mode == "heron_log":
            return lambda: log.info("order %s shipped", 42), heron.flush
        if mode == "heron_log_error":

            def log_error() -> None:
                try:
                    deep(8, 42, "hunter2")
                except ValueError:
                    log.exception("order failed")

            return log_error, heron.flush
        return lambda: heron.capture_exception(raised()), heron.flush
    if mode.startswith("sentry"):
        import sentry_sdk

        port = url.rsplit(":", 1)[1]
        sentry_sdk.init(
            dsn=f"http://key@127.0.0.1:{port}/1",
            include_local_variables=mode == "sentry_exc_locals",
            default_integrations=False,
        )
        return lambda: sentry_sdk.capture_exception(raised()), lambda: sentry_sdk.flush(10)
    log = logging.getLogger("bench")
    log.setLevel(logging.INFO)
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return lambda: log.info("order %s shipped", 42), lambda: None


def worker(mode: str, url: str, n: int, rounds: int) -> None:
    work, flush = setup(mode, url)
    for _ in range(max(50, n // 10)):  # warm-up
        work()
    flush()
    results = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            work()
        flush()
        results.append((time.process_time() - start) / n * 1e6)
    print(json.dumps({"mode": mode, "us": results}))


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.url, args.n, args.rounds)
        return 0
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{sink.server_address[1]}"
    rounds = 2 if args.quick else args.rounds
    results: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(1 if args.quick else 2):  # ABCABC: processes interleaved
        for mode in MODES:
            n = (200 if "exc" in mode or "error" in mode else 5000) * (1 if args.quick else 5)
            cmd = [sys.executable, __file__, "--worker", mode, "--url", url, "--n", str(n)]
            done = subprocess.run(
                [*cmd, "--rounds", str(rounds)], capture_output=True, text=True, timeout=600
            )
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            results[mode] += json.loads(done.stdout.strip().splitlines()[-1])["us"]
    sink.shutdown()
    medians = {m: statistics.median(v) for m, v in results.items()}
    rows = [[m, medians[m], min(v), max(v), len(v)] for m, v in results.items()]
    m = machine()
    print(machine_line(m))
    print_table(
        "Agent cost of error capture and logs: CPU µs per call (sent to a loopback sink)",
        ["setup", "median µs", "min", "max", "rounds"],
        rows,
    )
    write_json(
        "agent_errors",
        {
            "benchmark": "agent_errors",
            "machine": m,
            "median_us": medians,
            "rounds_us": results,
            "heron_vs_sentry_exc_locals": medians["heron_exc_locals"]
            / medians["sentry_exc_locals"],
            "heron_log_over_null_us": medians["heron_log"] - medians["null_log"],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
