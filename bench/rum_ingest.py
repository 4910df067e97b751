"""RUM beacon ingest: beacons/s acknowledged by ``heron serve`` at ``POST /rum/v1/events``.

Starts ``heron serve`` as a subprocess on 127.0.0.1 (fresh data directory, rate limits
off, one allowed origin), then drives it from one client process: asyncio, raw HTTP/1.1
over ``--connections`` keep-alive connections, each sending prebuilt requests and
reading each answer before the next (as browsers' keep-alive connections do). The
beacons are realistic: a page view with navigation timing and a traceparent, its five
web vitals with attribution, a slow resource, a slow interaction, a long animation frame
and a traced fetch (10 events, ~4 KB); one beacon in ten also carries a JavaScript error
with a Chrome stack. Session, view and trace ids differ between the 256 prebuilt bodies,
which are cycled (a body sent again is stored again: RUM events are appended).

Same-run baseline, same client and connections: ``GET /healthz`` (HTTP + routing only),
so the beacon rate can be read against what the server's HTTP stack can do at all.

After the run the server is stopped and its DuckDB file opened: stored RUM events must
equal acknowledged beacons × events per beacon (acknowledged only after the commit).

    python bench/rum_ingest.py --duration 10 --connections 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
from ingest import Server

BROWSER_KEY = "hb_bench_browser_key_0123456789"
ORIGIN = "https://shop.bench.example"
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BODIES = 256
STACK = (
    "TypeError: Cannot read properties of undefined (reading 'price')\n"
    "    at addToCart (https://shop.bench.example/static/app.3f2a1b.js:120:17)\n"
    "    at HTMLButtonElement.<anonymous> (https://shop.bench.example/static/app.3f2a1b.js:88:9)\n"
    "    at dispatch (https://cdn.bench.example/vendor.js:2:300)"
)


def beacon(i: int, now_ms: float) -> dict[str, Any]:
    """A realistic beacon: 10 events of one page view (11 with an error, 1 in 10)."""
    session, view = f"sess{i:012d}", f"v{i:06d}"
    trace = f"{i + 1:032x}"  # nonzero: an all-zero trace id is refused
    product = 1000 + i % 300
    events: list[dict[str, Any]] = [
        {
            "t": "view",
            "view": view,
            "ts": now_ms,
            "timing": {
                "dns_start": 1.2, "dns_end": 9.8, "connect_start": 9.8, "connect_end": 40.1,
                "tls_start": 20.3, "request_start": 41.0, "response_start": 180.5,
                "response_end": 210.2, "dom_interactive": 620.4, "dcl_end": 650.0,
                "load_end": 1430.7, "transfer_size": 48213,
            },
        },  # fmt: skip
        {"t": "vital", "view": view, "ts": now_ms + 200, "name": "TTFB", "value": 180.5, "id": "v4-1",
         "attribution": {"waiting": 2.1, "cache": 0, "dns": 8.6, "connection": 30.3, "request": 139.5}},
        {"t": "vital", "view": view, "ts": now_ms + 900, "name": "FCP", "value": 890.0, "id": "v4-2",
         "attribution": {"ttfb": 180.5, "first_byte_to_fcp": 709.5, "load_state": "dom-content-loaded"}},
        {"t": "vital", "view": view, "ts": now_ms + 1300, "name": "LCP", "value": 2710.0, "id": "v4-3",
         "attribution": {"target": "main > div.hero > img", "url": "https://cdn.bench.example/hero.jpg",
                         "ttfb": 180.5, "resource_load_delay": 400.0, "resource_load_duration": 1900.0,
                         "element_render_delay": 229.5}},
        {"t": "vital", "view": view, "ts": now_ms + 5000, "name": "CLS", "value": 0.07, "id": "v4-4",
         "attribution": {"target": "div.banner", "largest_shift_value": 0.05, "largest_shift_time": 1200.0,
                         "load_state": "complete"}},
        {"t": "vital", "view": view, "ts": now_ms + 6000, "name": "INP", "value": 260.0, "id": "v4-5",
         "attribution": {"target": "button#add-to-cart", "type": "pointer", "input_delay": 12.0,
                         "processing": 210.0, "presentation": 38.0, "load_state": "complete"}},
        {"t": "resource", "view": view, "ts": now_ms + 50, "name": "https://cdn.bench.example/hero.jpg",
         "initiator": "img", "duration": 1900.0, "transfer_size": 812345, "decoded_size": 812345},
        {"t": "interaction", "view": view, "ts": now_ms + 5990, "type": "pointer", "event": "click",
         "target": "button#add-to-cart", "duration": 260.0, "input_delay": 12.0, "processing": 210.0,
         "presentation": 38.0},
        {"t": "longtask", "view": view, "ts": now_ms + 700, "duration": 180.0, "blocking": 130.0,
         "scripts": [{"src": "https://shop.bench.example/static/app.3f2a1b.js", "fn": "hydrate",
                      "duration": 150.0}]},
        {"t": "fetch", "view": view, "ts": now_ms + 6010, "method": "POST",
         "url": "https://shop.bench.example/api/cart", "status": 201, "duration": 95.0,
         "trace": f"00-{(i + 1) << 64:032x}-{i + 1:016x}-01"},
    ]  # fmt: skip
    if i % 10 == 0:
        events.append(
            {"t": "error", "view": view, "ts": now_ms + 6100, "type": "TypeError",
             "message": "Cannot read properties of undefined (reading 'price')", "stack": STACK,
             "mechanism": "onerror", "handled": False}
        )  # fmt: skip
    return {
        "v": 1,
        "sdk": "heron-rum/0.1.0",
        "session": session,
        "user": f"u-{i % 97}",
        "app": "shop-web",
        "release": "1.4.2",
        "environment": "bench",
        "views": {
            view: {
                "url": f"https://shop.bench.example/products/{product}?utm_source=mail",
                "route": "/products/:id",
                "referrer": "https://shop.bench.example/",
                "nav": "navigate",
                "start": now_ms,
                "trace": f"00-{trace}-{i + 7:016x}-01",
            }
        },
        "events": events,
    }


def requests(port: int) -> tuple[list[bytes], list[int]]:
    """The prebuilt POSTs and each one's number of events."""
    now_ms = time.time() * 1000
    out, counts = [], []
    for i in range(BODIES):
        doc = beacon(i, now_ms)
        body = json.dumps(doc, separators=(",", ":")).encode()
        head = (
            f"POST /rum/v1/events?key={BROWSER_KEY} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Origin: {ORIGIN}\r\nUser-Agent: {UA}\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
        counts.append(len(doc["events"]))
    return out, counts


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    port: int, reqs: list[bytes], offset: int, stop_at: float, stats: dict[str, Any]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    while time.monotonic() < stop_at:
        k = i % len(reqs)
        t0 = time.perf_counter()
        writer.write(reqs[k])
        status = await _read_response(reader)
        stats["latency"].append(time.perf_counter() - t0)
        stats["status"][status] = stats["status"].get(status, 0) + 1
        if status == 200:
            stats["ok"].append(k)
        i += 1
    writer.close()


async def drive(port: int, reqs: list[bytes], connections: int, duration: float) -> dict[str, Any]:
    stats: dict[str, Any] = {"latency": [], "status": {}, "ok": []}
    start = time.monotonic()
    stop_at = start + duration
    await asyncio.gather(
        *(
            _connection(port, reqs, n * len(reqs) // connections, stop_at, stats)
            for n in range(connections)
        )
    )
    stats["elapsed"] = time.monotonic() - start
    return stats


def healthz_requests(port: int) -> list[bytes]:
    return [f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()]


def cpu_seconds(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def stored_rum_events(db_path: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM rum_events").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def in_process(n: int = 2000, batch: int = 50) -> dict[str, float]:
    """CPU time (this thread) per beacon of the endpoint's own steps, no HTTP: parse +
    decode (user agent cached), then queueing batches of ``batch`` beacons to a DuckDB
    store (scrub, rollups, columns) and, separately, the wall time until all committed."""
    from heron.server.ingest.limits import parse_json
    from heron.server.ingest.pipeline import Pipeline
    from heron.server.ingest.rum_context import CachedScrubber
    from heron.server.ingest.rum_decode import decode_beacon
    from heron.server.ingest.useragent import parse_user_agent
    from heron.server.store.duckdb_store import DuckDBStore

    now_ms = time.time() * 1000
    bodies = [json.dumps(beacon(i, now_ms)).encode() for i in range(BODIES)]
    work = Path(tempfile.mkdtemp(prefix="heron-rum-inproc-"))
    store = DuckDBStore(work / "heron.duckdb").start()
    try:
        pipeline = Pipeline(store)
        scrubber = CachedScrubber(pipeline.span_scrubber.scrubber)
        ua = parse_user_agent(UA)
        for b in bodies:  # warm caches and lazy imports
            decode_beacon(parse_json(b), ua, UA, scrubber, 0)
        t0 = time.thread_time()
        decoded = [
            decode_beacon(parse_json(bodies[i % BODIES]), ua, UA, scrubber, 0) for i in range(n)
        ]
        decode_s = time.thread_time() - t0
        pipeline.submit_rum(1, decoded[0].events).result()  # first-use imports (Arrow)
        wall0, t0 = time.perf_counter(), time.thread_time()
        futures = []
        for k in range(0, n, batch):
            group = decoded[k : k + batch]
            futures.append(pipeline.submit_rum(1, [e for b in group for e in b.events]))
            futures.append(
                pipeline.submit_spans(1, [s for b in group for s in b.spans], rollup=False)
            )
            errors = [e for b in group for e in b.errors]
            if errors:
                futures.append(pipeline.submit_events(1, errors, []))
        submit_s = time.thread_time() - t0
        for f in futures:
            f.result()
        wall_s = time.perf_counter() - wall0
    finally:
        store.close()
    return {
        "decode_cpu_us": decode_s / n * 1e6,
        "submit_cpu_us": submit_s / n * 1e6,
        "until_committed_wall_us": wall_s / n * 1e6,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="heron-rum-bench-"))
    server = Server(
        work,
        {
            "HERON_RUM_ALLOWED_ORIGINS": ORIGIN,
            "HERON_RUM_BROWSER_KEY": BROWSER_KEY,
            "HERON_RUM_RATE_PER_IP": "0",
            "HERON_RUM_RATE_PER_SESSION": "0",
            "HERON_ALERTS_ENABLED": "false",
        },
    ).start()
    assert server.proc is not None
    try:
        load = os.getloadavg()[0]
        reqs, counts = requests(server.port)
        warm = asyncio.run(drive(server.port, reqs, args.connections, 1.0))
        base = asyncio.run(
            drive(server.port, healthz_requests(server.port), args.connections, args.baseline)
        )
        cpu0 = cpu_seconds(server.proc.pid)
        stats = asyncio.run(drive(server.port, reqs, args.connections, args.duration))
        cpu = cpu_seconds(server.proc.pid) - cpu0
    finally:
        server.stop()
    stored = stored_rum_events(server.db_path)
    ok = stats["ok"]
    beacons = len(ok)
    events = sum(counts[k] for k in ok)
    rate = beacons / stats["elapsed"]
    doc = {
        "machine": c.machine(),
        "load_before": load,
        "connections": args.connections,
        "duration_s": stats["elapsed"],
        "beacon_bytes_median": sorted(len(r) for r in reqs)[len(reqs) // 2],
        "events_per_beacon": sum(counts) / len(counts),
        "beacons": beacons,
        "beacons_per_s": rate,
        "events_per_s": events / stats["elapsed"],
        "statuses": stats["status"],
        "latency": c.summary_ms(stats["latency"]),
        "server_cpu_s": cpu,
        "server_cores": cpu / stats["elapsed"],
        "server_cpu_us_per_beacon": cpu / max(beacons, 1) * 1e6,
        "healthz_per_s": len(base["ok"]) / base["elapsed"],
        "stored_rum_events": stored,
        # every acknowledged event, warm-up included: must equal stored_rum_events
        "acked_events": events + sum(counts[k] for k in warm["ok"]),
    }
    return doc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--baseline", type=float, default=5.0, help="seconds of GET /healthz")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    rows, docs = [], []
    for n in range(args.runs):
        d = run(args)
        docs.append(d)
        rows.append(
            [
                n + 1,
                f"{d['load_before']:.2f}",
                args.connections,
                f"{d['beacons_per_s']:,.0f}",
                f"{d['events_per_s']:,.0f}",
                f"{d['latency']['median_ms']:.1f}",
                f"{d['server_cores']:.2f}",
                f"{d['server_cpu_us_per_beacon']:.0f}",
                f"{d['healthz_per_s']:,.0f}",
                f"{d['stored_rum_events']:,} / {d['acked_events']:,}",
            ]
        )
    print(c.machine_line(docs[0]["machine"]))
    c.print_table(
        "RUM beacon ingest",
        [
            "run",
            "load",
            "connections",
            "beacons/s",
            "events/s",
            "p50 ms",
            "server cores",
            "server CPU µs/beacon",
            "same-run GET /healthz/s",
            "stored / acked events",
        ],
        rows,
    )
    steps = in_process()
    c.print_table(
        "In-process cost per beacon (no HTTP), batches of 50",
        ["parse + decode CPU µs", "queue to writer CPU µs", "until committed, wall µs"],
        [
            [
                f"{steps['decode_cpu_us']:.0f}",
                f"{steps['submit_cpu_us']:.0f}",
                f"{steps['until_committed_wall_us']:.0f}",
            ]
        ],
    )
    c.write_json("rum_ingest", {"runs": docs, "in_process": steps})


if __name__ == "__main__":
    main()
