"""Database agent overhead: µs per query that tracing adds, for psycopg and sqlite3.

One query at a time on one connection, the way a request handler runs them, measured as
wall time of the query loop (what the code running the queries waits; the exporter
thread competes for the CPU meanwhile) and as CPU time (``time.process_time()``: all
threads of the process, measured after a flush, so encoding and sending every span
counts). Each setup runs in its own process (a tracer provider is global):

- ``none``: the driver alone;
- ``heron``: ``heron.init()`` with its defaults (``record_sql="obfuscated"``), spans
  exported over OTLP/HTTP to a local sink that answers 200 (the server's cost is not
  the agent's);
- ``heron-noexport``: the same with ``OTEL_TRACES_EXPORTER=none``: spans are made and
  ended but never queued or encoded, which isolates the cost on the query's own path;
- ``otel``: the OpenTelemetry contrib instrumentation (``PsycopgInstrumentor`` /
  ``SQLite3Instrumentor``) with the plain SDK pipeline to the same sink, for reference.
  It records statements verbatim, so it does no obfuscation work.

Two statement shapes: ``param`` repeats one parameterized statement (what ORMs and most
code send; heron's parse cache hits), ``literal`` inlines a new value each time (a cache
miss: the obfuscator runs on every query). sqlite3 runs on an in-memory table, psycopg on
the local PostgreSQL (127.0.0.1:5432, user postgres, database test). Several rounds per
process, several processes per setup in ABCABC order; the table shows medians.

Run: ``python bench/db_agent_overhead.py [--quick]``; writes ``bench/out/db_agent_overhead.json``.
"""

# ruff: noqa: S608 - the statements are the benchmark's own

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODES = ("none", "heron", "heron-noexport", "otel")
DRIVERS = ("sqlite3", "psycopg")
SHAPES = ("param", "literal")
PG_CONNINFO = "host=127.0.0.1 port=5432 user=postgres dbname=test"
ROWS = 1000
WARMUP = 1000

# ------------------------------------------------------------------ worker (one setup)


def setup_tracing(mode: str, driver: str, endpoint: str) -> Callable[[], object]:
    """Configure ``mode``; return its flush function."""
    if mode.startswith("heron"):
        import heron

        heron.init(service="bench-db", endpoint=endpoint, instrument=[driver])
        return lambda: heron.flush(30)
    if mode == "otel":
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": "bench-db-otel"}))
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
        )
        trace.set_tracer_provider(provider)
        if driver == "sqlite3":
            from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

            SQLite3Instrumentor().instrument()
        else:
            from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

            PsycopgInstrumentor().instrument()
        return provider.force_flush
    return lambda: None


def open_cursor(driver: str) -> tuple[Any, str]:
    """A cursor on a ``users`` table of ROWS rows, and the driver's placeholder."""
    if driver == "sqlite3":
        import sqlite3

        con = sqlite3.connect(":memory:")
        con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"u{i}") for i in range(ROWS)])
        return con.cursor(), "?"
    import psycopg

    conn = psycopg.connect(PG_CONNINFO, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE users (id int PRIMARY KEY, name text)")
    cur.executemany("INSERT INTO users VALUES (%s, %s)", [(i, f"u{i}") for i in range(ROWS)])
    return cur, "%s"


def run_queries(cur: Any, mark: str, shape: str, n: int, start: int) -> None:
    sql = f"SELECT id, name FROM users WHERE id = {mark}"
    if shape == "param":
        for i in range(start, start + n):
            cur.execute(sql, (i % ROWS,))
            cur.fetchall()
    else:
        for i in range(start, start + n):
            cur.execute(f"SELECT id, name FROM users WHERE id = {i % ROWS} AND name <> 'x{i}'")
            cur.fetchall()


def worker(
    mode: str, driver: str, shape: str, endpoint: str, n: int, rounds: int
) -> dict[str, Any]:
    flush = setup_tracing(mode, driver, endpoint)
    cur, mark = open_cursor(driver)  # after init: the connection is the app's, traced
    run_queries(cur, mark, shape, WARMUP, 0)
    flush()
    wall_us, cpu_us = [], []
    for r in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        run_queries(cur, mark, shape, n, (r + 1) * n)  # literal: new statements each round
        wall_us.append((time.perf_counter() - wall) / n * 1e6)  # what the queries' caller waits
        flush()
        cpu_us.append((time.process_time() - cpu) / n * 1e6)  # everything, export included
    result: dict[str, Any] = {"wall_us": wall_us, "cpu_us": cpu_us}
    if mode == "heron":
        import heron

        result["heron_stats"] = heron.stats().__dict__
    return result


# ------------------------------------------------------------------ driver


class Sink:
    """A loopback OTLP/HTTP endpoint that accepts and discards every export."""

    def __init__(self) -> None:
        self.requests = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_worker(mode: str, driver: str, shape: str, url: str, n: int, rounds: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
    env["OTEL_BSP_MAX_QUEUE_SIZE"] = str(4 * max(n, WARMUP))  # a round never overflows it
    if mode == "heron-noexport":
        env["OTEL_TRACES_EXPORTER"] = "none"
    argv = [sys.executable, __file__, "--worker", mode, "--driver", driver, "--shape", shape]
    argv += ["--endpoint", url, "--queries", str(n), "--rounds", str(rounds)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"worker {mode}/{driver}/{shape} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--worker", choices=MODES)
    parser.add_argument("--driver", choices=DRIVERS, default="sqlite3")
    parser.add_argument("--shape", choices=SHAPES, default="param")
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--queries", type=int, default=0, help="per round (default per driver)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=3, help="processes per setup")
    parser.add_argument("--quick", action="store_true", help="fewer queries, rounds, processes")
    args = parser.parse_args()
    if args.worker:
        result = worker(
            args.worker, args.driver, args.shape, args.endpoint, args.queries, args.rounds
        )
        print(json.dumps(result))
        return 0
    if args.quick:
        args.rounds, args.processes = 3, 1

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import machine, machine_line, print_table, write_json

    sink = Sink()
    results: dict[str, dict[str, Any]] = {}
    try:
        for driver in DRIVERS:
            n = args.queries or (20_000 if driver == "sqlite3" else 5_000)
            if args.quick:
                n //= 5
            for shape in SHAPES:
                samples: dict[str, dict[str, list[float]]] = {
                    m: {"wall_us": [], "cpu_us": []} for m in MODES
                }
                stats = []
                for _ in range(args.processes):
                    for mode in MODES:
                        r = run_worker(mode, driver, shape, sink.url, n, args.rounds)
                        samples[mode]["wall_us"] += r["wall_us"]
                        samples[mode]["cpu_us"] += r["cpu_us"]
                        stats += [r["heron_stats"]] if "heron_stats" in r else []
                results[f"{driver}/{shape}"] = {
                    "queries_per_round": n,
                    "samples": samples,
                    "heron_stats": stats,
                }
    finally:
        sink.close()

    rows = []
    for key, res in results.items():
        s = res["samples"]
        med = {m: {k: statistics.median(v) for k, v in s[m].items()} for m in MODES}
        res["median"] = med
        for mode in MODES[1:]:
            res[f"{mode}_overhead_wall_us"] = med[mode]["wall_us"] - med["none"]["wall_us"]
            res[f"{mode}_overhead_cpu_us"] = med[mode]["cpu_us"] - med["none"]["cpu_us"]
        rows.append(
            [
                key,
                med["none"]["wall_us"],
                med["heron"]["wall_us"],
                res["heron_overhead_wall_us"],
                res["heron_overhead_cpu_us"],
                res["heron-noexport_overhead_wall_us"],
                med["otel"]["wall_us"],
                res["otel_overhead_wall_us"],
                res["otel_overhead_cpu_us"],
                sum(st["dropped"] for st in res["heron_stats"]),
            ]
        )
    m = machine()
    print(machine_line(m))
    print_table(
        "DB agent overhead per query, µs (median of rounds; overhead = setup − none)",
        [
            "driver/shape",
            "none wall",
            "heron wall",
            "heron +wall",
            "heron +cpu",
            "heron no-export +wall",
            "otel wall",
            "otel +wall",
            "otel +cpu",
            "heron dropped",
        ],
        rows,
    )
    write_json(
        "db_agent_overhead",
        {
            "benchmark": "db_agent_overhead",
            "machine": m,
            "rounds_per_process": args.rounds,
            "processes_per_setup": args.processes,
            "warmup_queries": WARMUP,
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
