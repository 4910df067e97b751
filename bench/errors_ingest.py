"""Error-event ingest benchmark: events/s acknowledged by ``heron serve``.

Starts ``heron serve`` as a subprocess on 127.0.0.1 (fresh data directory per run), then
N client processes POST pre-built bodies over keep-alive connections for a fixed time:

* ``sentry``: Sentry envelopes as sentry-python sends them (one event per envelope,
  brotli-compressed), realistic events (exception with 12 frames with context lines and
  local variables, 20 breadcrumbs, request headers, tags, contexts), ~4 KB of JSON each,
  from 8 distinct bugs so issues are upserted, not only created;
* ``otlp-logs``: OTLP/HTTP protobuf ``ExportLogsServiceRequest`` of ``--records``
  ERROR records each (half carry Heron's ``heron.event``, half only ``exception.*``
  attributes with a Python traceback), so every record is a log row *and* an event;
* ``traces``: the same server's span rate for 512-span ``/v1/traces`` bodies (the
  ``bench/ingest.py`` generator), a same-run baseline for comparing the two paths.

Sentry tracing (``sentry_payloads.py``: the same trace of ``--spans`` spans per request,
a fresh trace id each time): ``sentry-tx`` (sentry-sdk 2.x ``transaction`` envelopes,
brotli), ``sentry-spans`` (3.x span v2 envelopes, brotli) and ``otlp-json`` (the same
spans as OTLP JSON on ``/v1/traces``, the baseline). Their unit is spans:

    python bench/errors_ingest.py --modes otlp-json,sentry-tx,sentry-spans --clients 4 \
        --duration 10 --spans 50 --out sentry_ingest

Every request gets fresh event ids. After each run the server is stopped and the DuckDB
file opened: stored events must be ≥ acknowledged events (ack only after commit).

    python bench/errors_ingest.py --clients 4,16 --duration 10
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
import sentry_payloads
from ingest import KEY, ProcessMonitor, Server, build_bodies, fresh_body

ID_PLACEHOLDER = sentry_payloads.TRACE_ID.encode()
TRACING_MODES = {
    "sentry-tx": sentry_payloads.transaction_envelope,
    "sentry-spans": sentry_payloads.span_items_envelope,
    "otlp-json": sentry_payloads.otlp_json,
}
SPAN_MODES = ("traces", *TRACING_MODES)
BUGS = [
    ("ValueError", "card declined for order {n}", "charge"),
    ("KeyError", "'sku-{n}'", "price_of"),
    ("ZeroDivisionError", "division by zero", "average"),
    ("TimeoutError", "upstream timed out after {n} ms", "fetch_stock"),
    ("psycopg.errors.UniqueViolation", "duplicate key value (id)=({n})", "insert_order"),
    ("PermissionError", "user {n} may not refund", "refund"),
    ("AttributeError", "'NoneType' object has no attribute 'email'", "notify"),
    ("RuntimeError", "cart {n} is locked", "checkout"),
]


# ----------------------------------------------------------------------- payloads


def sentry_event(rng: random.Random, bug: int) -> dict[str, Any]:
    exc_type, template, func = BUGS[bug]
    n = rng.randint(1, 99_999)
    frames = [
        {
            "filename": f"shop/{name}.py",
            "abs_path": f"/srv/app/shop/{name}.py",
            "module": f"shop.{name}",
            "function": fn,
            "lineno": rng.randint(10, 400),
            "context_line": f"    result = {fn}(request, order_id)",
            "pre_context": ["", f"def {fn}(request, order_id):", "    log.debug('start')"],
            "post_context": ["    return result", "", ""],
            "in_app": i >= 4,
            "vars": {"order_id": str(n), "request": "<Request 'POST /checkout'>", "retries": "2"},
        }
        for i, (name, fn) in enumerate(
            [("wsgi", "__call__"), ("app", "dispatch"), ("app", "full_dispatch"), ("views", "view")]
            + [("views", f"step_{k}") for k in range(7)]
            + [("orders", func)]
        )
    ]
    return {
        "event_id": ID_PLACEHOLDER.decode(),
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "logger": "shop.orders",
        "server_name": "web-3",
        "release": "shop@2.14.1",
        "environment": "production",
        "transaction": "POST /checkout",
        "exception": {
            "values": [
                {
                    "type": exc_type,
                    "value": template.format(n=n),
                    "mechanism": {"type": "flask", "handled": False},
                    "stacktrace": {"frames": frames},
                }
            ]
        },
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": time.time() - 1,
                    "type": "default",
                    "category": "query" if k % 2 else "httplib",
                    "level": "info",
                    "message": f"SELECT * FROM orders WHERE id = %s -- {k}",  # noqa: S608 - text
                    "data": {"duration_ms": k},
                }
                for k in range(20)
            ]
        },
        "request": {
            "method": "POST",
            "url": "https://shop.example/checkout",
            "query_string": "step=2",
            "headers": {
                "Host": "shop.example",
                "User-Agent": c.USER_AGENTS[0],
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            "data": {"cart": str(n), "qty": "2"},
        },
        "user": {"id": str(rng.randint(1, 5000))},
        "tags": {"service": "shop-web", "region": "eu-west-1"},
        "contexts": {
            "trace": {"trace_id": os.urandom(16).hex(), "span_id": os.urandom(8).hex()},
            "runtime": {"name": "CPython", "version": "3.12.3"},
            "os": {"name": "Linux"},
        },
        "sdk": {"name": "sentry.python.flask", "version": "2.75.0"},
    }


def sentry_bodies(client_idx: int, n_bodies: int) -> list[bytes]:
    import orjson

    rng = random.Random(client_idx)
    out = []
    for j in range(n_bodies):
        event = orjson.dumps(sentry_event(rng, j % len(BUGS)))
        header = orjson.dumps(
            {"event_id": ID_PLACEHOLDER.decode(), "sent_at": "2026-01-01T00:00:00Z"}
        )
        item = orjson.dumps({"type": "event", "length": len(event)})
        out.append(b"\n".join([header, item, event]) + b"\n")
    return out  # compressed per request by the client (ids change), as sentry-python does


def logs_bodies(client_idx: int, n_bodies: int, records: int) -> list[bytes]:
    import orjson
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    rng = random.Random(client_idx)
    out = []
    for _ in range(n_bodies):
        req = ExportLogsServiceRequest()
        rl = req.resource_logs.add()
        c._add_attrs(rl.resource.attributes, c.resource_attrs("checkout", 0))
        sl = rl.scope_logs.add()
        sl.scope.name = "shop.orders"
        for k in range(records):
            bug = rng.randrange(len(BUGS))
            exc_type, template, func = BUGS[bug]
            message = template.format(n=rng.randint(1, 99_999))
            r = sl.log_records.add()
            r.time_unix_nano = r.observed_time_unix_nano = c.now_ns()
            r.severity_number, r.severity_text = 17, "ERROR"
            r.body.string_value = f"request failed: {message}"
            r.trace_id, r.span_id = os.urandom(16), os.urandom(8)
            attrs: dict[str, Any] = {
                "code.function.name": func,
                "code.file.path": "/srv/app/shop/orders.py",
                "code.line.number": 120 + bug,
                "exception.type": exc_type,
                "exception.message": message,
                "exception.stacktrace": "Traceback (most recent call last):\n"
                + "".join(
                    f'  File "/srv/app/shop/views.py", line {40 + i}, in step_{i}\n'
                    f"    step_{i + 1}(request)\n"
                    for i in range(8)
                )
                + f'  File "/srv/app/shop/orders.py", line {120 + bug}, in {func}\n'
                f"    raise {exc_type}(msg)\n{exc_type}: {message}\n",
            }
            if k % 2 == 0:
                event = sentry_event(rng, bug)
                event["event_id"] = f"{k:02x}" + ID_PLACEHOLDER.decode()[2:]
                event["sdk"] = {"name": "heron", "version": "0.1.0"}
                attrs["heron.event"] = orjson.dumps(event).decode()
            c._add_attrs(r.attributes, attrs)
        out.append(req.SerializeToString())
    return out


# ----------------------------------------------------------------------- clients


def client_main(
    idx: int, port: int, args: dict[str, Any], ready: Any, go: Any, results: Any
) -> None:
    """One client: a keep-alive connection posting bodies until the deadline."""
    import brotli

    mode = args["mode"]
    sentry_headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "br",
        "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=bench/1, sentry_key={KEY}",
    }
    if mode == "sentry":
        templates: list[Any] = sentry_bodies(idx, args["bodies"])
        path, per_request, headers = "/api/1/envelope/", 1, sentry_headers
    elif mode in TRACING_MODES:
        templates = [TRACING_MODES[mode](args["spans"])]
        path, per_request = "/api/1/envelope/", args["spans"]
        headers = sentry_headers
        if mode == "otlp-json":
            path, headers = "/v1/traces", {"Content-Type": "application/json", "x-heron-key": KEY}
    elif mode == "otlp-logs":
        templates = logs_bodies(idx, args["bodies"], args["records"])
        path, per_request = "/v1/logs", args["records"]
        headers = {"Content-Type": "application/x-protobuf", "x-heron-key": KEY}
    else:
        templates = build_bodies(idx, args["bodies"], 512)
        path, per_request = "/v1/traces", 512
        headers = {"Content-Type": "application/x-protobuf", "x-heron-key": KEY}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ready.set()
    go.wait()
    while time.time() < args["start_at"].value:
        time.sleep(0.001)
    ok = unavailable = failed = 0
    latencies: list[float] = []
    seq = 0
    while time.time() < args["end_at"].value:
        template = templates[seq % len(templates)]
        if mode == "traces":
            body = fresh_body(template, idx, seq)
        else:
            fresh = f"{0x80 | idx:02x}{seq:014x}".encode()
            body = template.replace(ID_PLACEHOLDER[16:], fresh)
            if mode in ("sentry", "sentry-tx", "sentry-spans"):
                body = brotli.compress(body, quality=4)
        seq += 1
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.perf_counter() - t0)
        if resp.status == 200:
            ok += 1
        elif resp.status in (429, 503):
            unavailable += 1
            time.sleep(0.05)
        else:
            failed += 1
            if failed == 1:
                print(f"client {idx}: HTTP {resp.status}", file=sys.stderr, flush=True)
    results.put(
        {
            "ok": ok,
            "items": ok * per_request,
            "unavailable": unavailable,
            "failed": failed,
            "finished": time.time(),
            "latencies": latencies,
        }
    )
    conn.close()


def run_load(
    port: int, mode: str, n_clients: int, args: argparse.Namespace, mon: ProcessMonitor
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    start_at, end_at = ctx.Value("d", 0.0), ctx.Value("d", 0.0)
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(n_clients)]
    results = ctx.Queue()
    shared = {
        "mode": mode,
        "bodies": args.bodies,
        "records": args.records,
        "spans": args.spans,
        "start_at": start_at,
        "end_at": end_at,
    }
    procs = [
        ctx.Process(target=client_main, args=(i, port, shared, readies[i], go, results))
        for i in range(n_clients)
    ]
    for p in procs:
        p.start()
    for r in readies:
        if not r.wait(300):
            raise RuntimeError("client did not get ready")
    start_at.value = time.time() + 0.5
    end_at.value = start_at.value + args.duration
    go.set()
    while time.time() < start_at.value:
        time.sleep(0.001)
    cpu0, t0 = mon.cpu(), time.time()
    rows = [results.get(timeout=args.duration + 300) for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r["finished"] for r in rows) - t0
    lat = [x for r in rows for x in r["latencies"]]
    items = sum(r["items"] for r in rows)
    return {
        "mode": mode,
        "clients": n_clients,
        "elapsed_s": elapsed,
        "ok_requests": sum(r["ok"] for r in rows),
        "items": items,
        "items_per_s": items / elapsed,
        "unavailable": sum(r["unavailable"] for r in rows),
        "failed": sum(r["failed"] for r in rows),
        "latency_p50_ms": c.percentile(lat, 0.5) * 1000,
        "latency_p95_ms": c.percentile(lat, 0.95) * 1000,
        "server_cpu_cores": (mon.cpu() - cpu0) / elapsed,
    }


def stored(db_path: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return {
            t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # noqa: S608 - fixed names
            for t in ("error_events", "logs", "issues", "spans")
        }
    finally:
        con.close()


def _sides(args: argparse.Namespace, round_no: int) -> list[tuple[str, str | None]]:
    """The servers of one round: this tree, and with ``--baseline-src`` the baseline
    too, their order alternating from round to round (load drifts)."""
    if not args.baseline_src:
        return [("new", None)]
    sides: list[tuple[str, str | None]] = [("new", None), ("old", args.baseline_src)]
    return sides if round_no % 2 else sides[::-1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    runs = []
    for round_no in range(args.rounds):
        for n in args.clients:
            for mode in args.modes:
                for side, src in _sides(args, round_no):
                    load = _one_run(args, mode, n, src)
                    load["side"], load["round"] = side, round_no
                    runs.append(load)
                    print(
                        f"{side:3} {mode:10} clients={n:3} {load['items_per_s']:>10,.0f} "
                        f"items/s p50={load['latency_p50_ms']:.1f} ms "
                        f"load={load['loadavg_before']:.2f} stored={load['stored']}",
                        flush=True,
                    )
    rows = [
        [
            r["side"],
            r["mode"],
            "spans" if r["mode"] in SPAN_MODES else "events",
            r["clients"],
            r["items_per_s"],
            r["ok_requests"] / r["elapsed_s"],
            r["latency_p50_ms"],
            r["latency_p95_ms"],
            r["server_cpu_cores"],
            r["server_peak_rss_mib"],
            r["unavailable"],
            "yes" if r["stored_ok"] else "NO",
        ]
        for r in runs
    ]
    text = c.print_table(
        f"Error ingest ({args.duration:g} s per run; otlp-logs: {args.records} records/request)",
        [
            "side",
            "mode",
            "unit",
            "clients",
            "items/s",
            "req/s",
            "p50 ms",
            "p95 ms",
            "server cores",
            "peak RSS MiB",
            "429/503",
            "all stored",
        ],
        rows,
    )
    doc = {"machine": m, "args": vars(args), "runs": runs, "table": text}
    if args.baseline_src:
        doc["ratios"] = _print_side_ratios(runs)
    if any(r["mode"] in TRACING_MODES for r in runs):
        _print_ratios(runs)
    c.write_json(args.out, doc)
    return doc


def _one_run(args: argparse.Namespace, mode: str, n: int, src: str | None) -> dict[str, Any]:
    """One server (fresh data directory, from ``src`` if given) under one load."""
    work = Path(tempfile.mkdtemp(prefix="heron-bench-errors-"))
    server = Server(work, src=src).start()
    assert server.proc is not None
    mon = ProcessMonitor(server.proc.pid).start()
    loadavg = os.getloadavg()[0]
    try:
        load = run_load(server.port, mode, n, args, mon)
    finally:
        server.stop()
        load["server_peak_rss_mib"] = mon.stop() / 2**20
    counts = stored(server.db_path)
    table = "spans" if mode in SPAN_MODES else "error_events"
    load["stored"] = counts
    load["stored_ok"] = counts[table] >= load["items"]
    load["loadavg_before"] = loadavg
    shutil.rmtree(work, ignore_errors=True)
    return load


def _print_side_ratios(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode and client count: the median over rounds of each side, and new/old."""
    out: dict[str, Any] = {}
    rows = []
    for mode, n in sorted({(r["mode"], r["clients"]) for r in runs}):
        med = {}
        for side in ("old", "new"):
            vals = [r for r in runs if (r["mode"], r["clients"], r["side"]) == (mode, n, side)]
            med[side] = {
                k: statistics.median(r[k] for r in vals)
                for k in ("items_per_s", "latency_p50_ms", "latency_p95_ms", "server_cpu_cores")
            }
        ratio = med["new"]["items_per_s"] / med["old"]["items_per_s"]
        out[f"{mode}/{n}"] = {**med, "new_over_old": ratio}
        rows.append(
            [
                mode,
                n,
                med["old"]["items_per_s"],
                med["new"]["items_per_s"],
                f"{ratio:.2f}x",
                med["old"]["latency_p50_ms"],
                med["new"]["latency_p50_ms"],
                med["old"]["server_cpu_cores"],
                med["new"]["server_cpu_cores"],
            ]
        )
    c.print_table(
        "Old (--baseline-src) vs new, medians over rounds",
        [
            "mode",
            "clients",
            "old items/s",
            "new items/s",
            "new/old",
            "old p50 ms",
            "new p50 ms",
            "old cores",
            "new cores",
        ],
        rows,
    )
    return out


def _print_ratios(runs: list[dict[str, Any]]) -> None:
    """Sentry tracing spans/s relative to OTLP JSON with the same clients (same run)."""
    base = {r["clients"]: r["items_per_s"] for r in runs if r["mode"] == "otlp-json"}
    for r in runs:
        if r["mode"] in ("sentry-tx", "sentry-spans") and r["clients"] in base:
            r["vs_otlp_json"] = r["items_per_s"] / base[r["clients"]]
            print(f"{r['mode']:12} clients={r['clients']}: {r['vs_otlp_json']:.2f}x otlp-json")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[4, 16])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument(
        "--modes", type=lambda s: s.split(","), default=["sentry", "otlp-logs", "traces"]
    )
    p.add_argument("--records", type=int, default=50, help="log records per OTLP request")
    p.add_argument("--bodies", type=int, default=16, help="distinct bodies per client")
    p.add_argument("--spans", type=int, default=50, help="spans per trace (tracing modes)")
    p.add_argument("--out", default="errors_ingest", help="name of the JSON in bench/out/")
    p.add_argument(
        "--baseline-src",
        help="also run a server from this source tree (e.g. `git archive BASE src`), "
        "alternating with this tree's, and print new/old ratios",
    )
    p.add_argument("--rounds", type=int, default=1, help="runs of each side per setting")
    run(p.parse_args())


if __name__ == "__main__":
    main()
