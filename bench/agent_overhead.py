"""Agent overhead: CPU microseconds per request of a Flask app, with and without tracing.

The app answers each request with 3 SQLite queries. Each request is a real WSGI call
(``app(environ, start_response)``, the body consumed), the way gunicorn calls the app,
minus the socket. Three setups, each in its own process (a tracer provider is global):

- ``none``: no tracing at all;
- ``otel``: the plain OpenTelemetry setup: TracerProvider + BatchSpanProcessor +
  OTLPSpanExporter + FlaskInstrumentor + SQLite3Instrumentor, defaults everywhere;
- ``heron``: ``heron.init()`` (which also traces the SQLite queries, and installs error
  capture and the logging handler).

Both traced setups export to a real ``heron serve`` started here, so encoding and sending
spans is part of the cost: CPU is ``time.process_time()`` (all threads of the process,
so the exporter thread counts), and each round ends with a flush inside the timed
region. On Linux with 2+ CPUs the server and the measured process are pinned to
different CPUs. Several rounds per process, several processes per setup in ABCABC
order; the table shows the median round. Run: ``python bench/agent_overhead.py [--quick]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

MODES = ("none", "otel", "heron")
KEY = "hk_bench_agent_overhead_0123456789"
TOKEN = "ht_bench_agent_overhead_0123456789abcdef"
WARMUP = 500

# ------------------------------------------------------------------ worker (one setup)


def build_app() -> Any:
    import sqlite3

    from flask import Flask

    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL)")
    db.execute("CREATE INDEX orders_user ON orders (user_id)")
    db.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"user{i}") for i in range(1000)])
    db.executemany(
        "INSERT INTO orders VALUES (?, ?, ?)", [(i, i % 1000, i * 0.5) for i in range(10_000)]
    )
    app = Flask("bench")

    @app.get("/users/<int:uid>")
    def user(uid: int) -> dict[str, Any]:
        # Through a cursor: OpenTelemetry's contrib SQLite3Instrumentor traces cursors, not
        # Connection.execute(), and both setups must trace the same 3 queries.
        cur = db.cursor()
        name = cur.execute("SELECT name FROM users WHERE id = ?", (uid,)).fetchone()[0]
        count = cur.execute("SELECT count(*) FROM orders WHERE user_id = ?", (uid,)).fetchone()[0]
        total = cur.execute("SELECT sum(total) FROM orders WHERE user_id = ?", (uid,)).fetchone()[0]
        return {"name": name, "orders": count, "total": total}

    return app


def setup_tracing(mode: str, endpoint: str) -> Callable[[], object]:
    """Configure ``mode``; return its flush function."""
    if mode == "otel":
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": "bench-otel"}))
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers={"x-heron-key": KEY})
            )
        )
        trace.set_tracer_provider(provider)
        FlaskInstrumentor().instrument()
        SQLite3Instrumentor().instrument()  # heron traces the app's queries too: same work
        return provider.force_flush
    if mode == "heron":
        import heron

        heron.init(service="bench-heron", endpoint=endpoint, key=KEY)
        return lambda: heron.flush(30)
    return lambda: None


def wsgi_requests(app: Any, n: int) -> Iterable[None]:
    template = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "bench",
        "HTTP_USER_AGENT": "bench/1.0",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(status)

    for i in range(n):
        environ = dict(template, PATH_INFO=f"/users/{i % 1000}", **{"wsgi.input": io.BytesIO()})
        body = app(environ, start_response)
        for _ in body:
            pass
        if hasattr(body, "close"):
            body.close()
        yield None


def worker(mode: str, endpoint: str, requests: int, rounds: int) -> dict[str, Any]:
    pin(0, 0)
    flush = setup_tracing(mode, endpoint)
    app = build_app()
    for _ in wsgi_requests(app, WARMUP):
        pass
    flush()
    per_request_us = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in wsgi_requests(app, requests):
            pass
        flush()
        per_request_us.append((time.process_time() - started) / requests * 1e6)
    result: dict[str, Any] = {"mode": mode, "per_request_us": per_request_us}
    if mode == "heron":
        import heron

        result["heron_stats"] = heron.stats().__dict__
    return result


# ------------------------------------------------------------------ driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(pid: int, cpu: int) -> None:
    """Keep the server and the measured process off each other's CPU (Linux, >= 2 CPUs)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        os.sched_setaffinity(pid, {cpus[cpu]})


def start_heron(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
    env.update(HERON_INGEST_KEY=KEY, HERON_API_TOKEN=TOKEN)
    proc = subprocess.Popen(
        [sys.executable, "-m", "heron", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pin(proc.pid, -1)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("heron serve did not start")


def run_worker(mode: str, url: str, requests: int, rounds: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            mode,
            "--endpoint",
            url,
            "--requests",
            str(requests),
            "--rounds",
            str(rounds),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {mode} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def spans_received(url: str) -> dict[str, int]:
    import httpx

    r = httpx.get(
        f"{url}/api/v1/services",
        params={"from": "-1h"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    return {s["service"]: s["requests"] for s in r.json().get("services", [])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=MODES)
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=3, help="processes per setup")
    parser.add_argument("--quick", action="store_true", help="1000 requests × 3 rounds")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.endpoint, args.requests, args.rounds)))
        return 0
    if args.quick:
        args.requests, args.rounds = 1000, 3

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import machine, machine_line, print_table, write_json

    samples: dict[str, list[float]] = {m: [] for m in MODES}
    heron_stats = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_heron(Path(tmp))
        try:
            for _ in range(args.processes):
                for mode in MODES:
                    result = run_worker(mode, url, args.requests, args.rounds)
                    samples[mode].extend(result["per_request_us"])
                    heron_stats.extend([result["heron_stats"]] if "heron_stats" in result else [])
            time.sleep(1.0)  # let the last commits land
            received = spans_received(url)
        finally:
            proc.terminate()
            proc.wait(30)

    base = statistics.median(samples["none"])
    rows, doc_modes = [], {}
    for mode in MODES:
        median = statistics.median(samples[mode])
        row = {
            "median_us": median,
            "min_us": min(samples[mode]),
            "max_us": max(samples[mode]),
            "overhead_us": median - base,
            "ratio_vs_none": median / base,
            "rounds": len(samples[mode]),
            "per_round_us": samples[mode],
            "spans_received": received.get(f"bench-{mode}", 0),
        }
        doc_modes[mode] = row
        rows.append(
            [
                mode,
                median,
                row["min_us"],
                row["max_us"],
                row["overhead_us"],
                f"{row['ratio_vs_none']:.2f}x",
                row["spans_received"],
            ]
        )
    m = machine()
    print(machine_line(m))
    total = args.processes * (WARMUP + args.requests * args.rounds)
    print_table(
        f"Agent overhead: CPU µs per request (Flask + 3 SQLite queries; {total:,} requests "
        "per setup, exported to a real heron serve)",
        ["setup", "median µs/req", "min", "max", "overhead µs", "vs none", "spans at Heron"],
        rows,
    )
    write_json(
        "agent_overhead",
        {
            "benchmark": "agent_overhead",
            "machine": m,
            "requests_per_round": args.requests,
            "rounds_per_process": args.rounds,
            "processes_per_setup": args.processes,
            "requests_per_setup": total,
            "modes": doc_modes,
            "heron_stats": heron_stats,
            "heron_vs_otel": doc_modes["heron"]["median_us"] / doc_modes["otel"]["median_us"],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
