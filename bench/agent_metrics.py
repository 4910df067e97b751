"""Agent metrics: CPU cost of runtime-metrics collection, and of one ``heron.record_metric``.

Runs in one process with the real pipeline (``heron.init()`` against a loopback OTLP/HTTP
sink that answers 200):

- **Collection.** ``--collections`` forced collect-and-export cycles of heron's OTLP
  reader, timed with ``time.thread_time()`` in the calling thread (the sink's own thread
  is not counted): CPU ms per export interval and the share of one core at the default
  10 s interval. Runtime+host (the default), runtime only, and an empty provider (the
  SDK's own fixed cost) are measured, each in a fresh process.
- **Recording.** µs per call of ``heron.record_metric(name, 1, "counter", k=v)``,
  ``heron.record_metric(name, v)`` (histogram), and the plain OpenTelemetry
  ``counter.add(1, {k: v})`` / ``histogram.record(v, {k: v})`` on the same provider.
- **GC timing.** µs added to each ``gc.collect(0)`` by heron's ``gc.callbacks`` hook.

    python bench/agent_metrics.py --collections 200 --calls 200000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

CHILD = """
import gc, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=server.serve_forever, daemon=True).start()
mode, collections, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

import heron
from heron.agent import runtime
heron.init(service="bench", endpoint=f"http://127.0.0.1:{server.server_address[1]}",
           runtime_metrics=mode != "empty", host_metrics=mode == "runtime+host",
           logs=False)
reader = runtime._metrics.reader
out = {"mode": mode}

def timed(n, fn):
    fn()  # warm-up
    t0 = time.thread_time()
    for _ in range(n):
        fn()
    return (time.thread_time() - t0) / n

out["collect_ms"] = timed(collections, lambda: reader.force_flush(10_000)) * 1e3
out["points"] = heron.stats().metric_points // (collections + 1)

if mode == "runtime+host":
    from opentelemetry import metrics
    meter = metrics.get_meter("plain")
    counter = meter.create_counter("plain.counter")
    hist = meter.create_histogram("plain.histogram")
    heron_counter = heron.counter("heron.counter")
    attrs = {"country": "FR"}
    def loop(fn):
        fn()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls * 1e6
    out["record_metric_counter_us"] = loop(lambda: heron.record_metric("rm.counter", 1, "counter", country="FR"))
    out["record_metric_histogram_us"] = loop(lambda: heron.record_metric("rm.histogram", 2.5, country="FR"))
    out["heron_counter_add_us"] = loop(lambda: heron_counter.add(1, attrs))
    out["otel_counter_add_us"] = loop(lambda: counter.add(1, attrs))
    out["otel_histogram_record_us"] = loop(lambda: hist.record(2.5, attrs))
    # GC: what heron's gc.callbacks hook adds to each collection.
    timer = runtime._runtime.gc_timer
    junk = [[i] for i in range(1000)]
    def gcs():
        t0 = time.perf_counter()
        for _ in range(2000):
            gc.collect(0)
        return (time.perf_counter() - t0) / 2000 * 1e6
    with_hook = min(gcs() for _ in range(3))
    timer.uninstall()
    without = min(gcs() for _ in range(3))
    # asyncio: CPU of an idle loop for 3 s with heron's lag probe (2 callbacks/s) and without.
    import asyncio
    def idle_loop():
        t0 = time.thread_time()
        asyncio.run(asyncio.sleep(3))
        return (time.thread_time() - t0) / 3 * 100  # % of one core
    out["idle_loop_pct_with_probe"] = idle_loop()
    runtime._runtime.lag.unpatch()
    out["idle_loop_pct_without"] = idle_loop()
    out["gc_collect0_us_with_hook"] = with_hook
    out["gc_collect0_us_without"] = without
print(json.dumps(out))
"""


def run_mode(mode: str, collections: int, calls: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), mode, str(collections), str(calls)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--interval-s", type=float, default=10.0)
    args = parser.parse_args()
    results = [
        run_mode(m, args.collections, args.calls) for m in ("empty", "runtime", "runtime+host")
    ]
    rows = [
        [
            r["mode"],
            r["points"],
            f"{r['collect_ms']:.3f}",
            f"{r['collect_ms'] / (args.interval_s * 1e3) * 100:.4f} %",
        ]
        for r in results
    ]
    report = c.print_table(
        f"Metric collection + OTLP export, CPU per interval (% of one core at {args.interval_s:g} s)",
        ["metrics", "points/export", "CPU ms/export", "% of one core"],
        rows,
    )
    full = results[-1]
    calls = [
        ["heron.record_metric(..., 'counter', k=v)", f"{full['record_metric_counter_us']:.3f}"],
        [
            "heron.record_metric(..., v, k=v) (histogram)",
            f"{full['record_metric_histogram_us']:.3f}",
        ],
        ["heron.counter(...).add(1, attrs)", f"{full['heron_counter_add_us']:.3f}"],
        ["OTel counter.add(1, attrs)", f"{full['otel_counter_add_us']:.3f}"],
        ["OTel histogram.record(v, attrs)", f"{full['otel_histogram_record_us']:.3f}"],
        ["gc.collect(0) with heron's GC hook", f"{full['gc_collect0_us_with_hook']:.3f}"],
        ["gc.collect(0) without it", f"{full['gc_collect0_us_without']:.3f}"],
    ]
    loop_rows = [
        ["with heron's lag probe", f"{full['idle_loop_pct_with_probe']:.4f} %"],
        ["without", f"{full['idle_loop_pct_without']:.4f} %"],
    ]
    report += c.print_table(f"Per call, µs ({args.calls:,} calls)", ["call", "µs"], calls)
    report += c.print_table(
        "An idle asyncio loop for 3 s, CPU (% of one core)", ["loop", "CPU"], loop_rows
    )
    c.write_json(
        "agent_metrics",
        {"machine": c.machine(), "args": vars(args), "results": results, "report": report},
    )


if __name__ == "__main__":
    main()
