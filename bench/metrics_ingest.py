"""Metrics ingest benchmark: data points/s acknowledged by ``heron serve`` for OTLP
protobuf ``ExportMetricsServiceRequest`` bodies, with the same run's ``/v1/traces``
spans/s beside it (``bench/ingest.py``'s load, same server build and machine).

Each client process pre-encodes its requests (``--points`` data points each, a fleet's
mix: cumulative histograms of ``http.server.request.duration``, cumulative counters,
gauges and up-down counters, three attributes per point, its own
``service.instance.id``) with timestamps and cumulative values advancing request by
request, so every point is a new, stored interval (a repeated timestamp would be skipped
by the cumulative tracker). Clients post them over keep-alive connections for a fixed
time; a point counts once its request is answered 200 (after commit). After the run the
server is stopped and the store is opened to count the stored points.

    python bench/metrics_ingest.py --clients 4 --duration 10
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
import ingest as ing

ROUTES = [f"/api/v1/items/{{id}}/{i}" for i in range(25)]
METHODS = ["GET", "POST"]
STATUSES = ["200", "404", "500", "201"]
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


def build_metric_bodies(client: int, n_bodies: int, points: int) -> list[bytes]:
    """``n_bodies`` requests of ``points`` data points, one second apart."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    def kv(k: str, v: str) -> KeyValue:
        return KeyValue(key=k, value=AnyValue(string_value=v))

    combos = [(r, me, s) for r in ROUTES for me in METHODS for s in STATUSES]
    n_hist, n_count = points // 5, points * 3 // 10
    n_gauge = points * 3 // 10
    n_updown = points - n_hist - n_count - n_gauge
    start = c.now_ns() - 3600 * c.NS
    t0 = c.now_ns() - n_bodies * c.NS
    out = []
    for j in range(n_bodies):
        t = t0 + j * c.NS
        req = ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend(
            [
                kv("service.name", "bench-svc"),
                kv("service.instance.id", f"client-{client}"),
                kv("host.name", "bench-host"),
            ]
        )
        sm = rm.scope_metrics.add()
        sm.scope.name = "bench"
        hist = sm.metrics.add(name="http.server.request.duration", unit="s")
        hist.histogram.aggregation_temporality = m.AGGREGATION_TEMPORALITY_CUMULATIVE
        for i in range(n_hist):
            r, me, s = combos[i % len(combos)]
            per = j + 1
            counts = [per * ((i + k) % 3) for k in range(len(BOUNDS) + 1)]
            dp = hist.histogram.data_points.add(
                start_time_unix_nano=start,
                time_unix_nano=t,
                count=sum(counts),
                sum=0.05 * sum(counts),
                explicit_bounds=BOUNDS,
                bucket_counts=counts,
            )
            dp.attributes.extend(
                [kv("http.route", r), kv("http.request.method", me), kv("shard", str(i))]
            )
        for name, n, kind in (
            ("app.orders", n_count, "counter"),
            ("app.queue.depth", n_gauge, "gauge"),
            ("app.inflight", n_updown, "updown"),
        ):
            metric = sm.metrics.add(name=name)
            if kind == "gauge":
                dps = metric.gauge.data_points
            else:
                metric.sum.aggregation_temporality = m.AGGREGATION_TEMPORALITY_CUMULATIVE
                metric.sum.is_monotonic = kind == "counter"
                dps = metric.sum.data_points
            for i in range(n):
                r, me, s = combos[i % len(combos)]
                dp = dps.add(
                    start_time_unix_nano=start, time_unix_nano=t, as_double=float(j * 3 + i)
                )
                dp.attributes.extend(
                    [kv("http.route", r), kv("http.response.status_code", s), kv("shard", str(i))]
                )
        out.append(req.SerializeToString())
    return out


def metric_client(
    idx: int, port: int, args: dict[str, Any], ready: Any, go: Any, results: Any
) -> None:
    bodies = build_metric_bodies(idx, args["bodies"], args["points"])
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {ing.KEY}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ready.set()
    go.wait()
    start_at, end_at = args["start_at"].value, args["end_at"].value
    while time.time() < start_at:
        time.sleep(0.001)
    cpu0 = time.process_time()
    ok = failed = unavailable = 0
    latencies: list[float] = []
    seq = 0
    partial = 0
    while time.time() < end_at and seq < len(bodies):
        body = bodies[seq]
        seq += 1
        t0 = time.perf_counter()
        conn.request("POST", "/v1/metrics", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        latencies.append(time.perf_counter() - t0)
        if resp.status == 200:
            ok += 1
            partial += len(data) > 0
        elif resp.status in (429, 503):
            unavailable += 1
            seq -= 1
            time.sleep(0.05)
        else:
            failed += 1
    results.put(
        {
            "ok_requests": ok,
            "partial": partial,
            "ran_out": seq >= len(bodies),
            "failed": failed,
            "unavailable": unavailable,
            "cpu_s": time.process_time() - cpu0,
            "finished": time.time(),
            "latencies": latencies,
        }
    )
    conn.close()


def run_metrics(
    port: int, n_clients: int, duration: float, points: int, mon: ing.ProcessMonitor
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    start_at, end_at = ctx.Value("d", 0.0), ctx.Value("d", 0.0)
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(n_clients)]
    results = ctx.Queue()
    # enough bodies for 200,000 points/s over the run, per client
    bodies = int(200_000 * duration / points / n_clients) + 5
    args = {"points": points, "bodies": bodies, "start_at": start_at, "end_at": end_at}
    procs = [
        ctx.Process(target=metric_client, args=(i, port, args, readies[i], go, results))
        for i in range(n_clients)
    ]
    for p in procs:
        p.start()
    for r in readies:
        if not r.wait(600):
            raise RuntimeError("client did not get ready")
    start_at.value = time.time() + 0.5
    end_at.value = start_at.value + duration
    go.set()
    while time.time() < start_at.value:
        time.sleep(0.001)
    cpu0 = mon.cpu()
    t0 = time.time()
    rows = [results.get(timeout=duration + 600) for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r["finished"] for r in rows) - t0
    ok_req = sum(r["ok_requests"] for r in rows)
    lat = [x for r in rows for x in r["latencies"]]
    return {
        "clients": n_clients,
        "points_per_request": points,
        "elapsed_s": elapsed,
        "ok_requests": ok_req,
        "ok_points": ok_req * points,
        "points_per_s": ok_req * points / elapsed,
        "partial_success_answers": sum(r["partial"] for r in rows),
        "clients_ran_out_of_bodies": sum(r["ran_out"] for r in rows),
        "unavailable": sum(r["unavailable"] for r in rows),
        "failed": sum(r["failed"] for r in rows),
        "latency_p50_ms": c.percentile(lat, 0.5) * 1000,
        "latency_p95_ms": c.percentile(lat, 0.95) * 1000,
        "server_cpu_cores": (mon.cpu() - cpu0) / elapsed,
    }


def stored_points(db_path: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM metric_points").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--points", type=int, default=1000, help="data points per request")
    ap.add_argument("--spans", type=int, default=512, help="spans per /v1/traces request")
    ap.add_argument("--no-traces", action="store_true", help="skip the /v1/traces run")
    a = ap.parse_args()
    m = c.machine()
    results: dict[str, Any] = {"machine": m, "args": vars(a)}
    work = Path(tempfile.mkdtemp(prefix="heron-bench-metrics-"))
    try:
        (work / "metrics").mkdir()
        (work / "traces").mkdir()
        srv = ing.Server(work / "metrics").start()
        mon = ing.ProcessMonitor(srv.proc.pid).start()  # type: ignore[union-attr]
        try:
            res = run_metrics(srv.port, a.clients, a.duration, a.points, mon)
        finally:
            res["server_peak_rss_mib"] = mon.stop() / 2**20
            srv.stop()
        res["stored_points"] = stored_points(srv.db_path)
        results["metrics"] = res
        if not a.no_traces:
            tsrv = ing.Server(work / "traces").start()
            tmon = ing.ProcessMonitor(tsrv.proc.pid).start()  # type: ignore[union-attr]
            try:
                tres = ing.run_load(
                    tsrv.port,
                    a.clients,
                    a.duration,
                    spans=a.spans,
                    bodies=20,
                    empty=False,
                    server_mon=tmon,
                )
            finally:
                tres["server_peak_rss_mib"] = tmon.stop() / 2**20
                tsrv.stop()
            results["traces"] = {k: v for k, v in tres.items() if k != "latencies"}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        [
            "POST /v1/metrics",
            f"{a.points} points",
            a.clients,
            round(results["metrics"]["points_per_s"]),
            "points/s",
            round(results["metrics"]["latency_p50_ms"], 1),
            round(results["metrics"]["server_cpu_cores"], 2),
            round(results["metrics"]["server_peak_rss_mib"]),
        ]
    ]
    if "traces" in results:
        t = results["traces"]
        rows.append(
            [
                "POST /v1/traces",
                f"{a.spans} spans",
                a.clients,
                round(t["spans_per_s"]),
                "spans/s",
                round(t["latency_p50_ms"], 1),
                round(t["server_cpu_cores"], 2),
                round(t["server_peak_rss_mib"]),
            ]
        )
    print(c.machine_line(m))
    results["table"] = c.print_table(
        "Metrics ingest (OTLP protobuf, acknowledged after commit)",
        ["route", "request", "clients", "rate", "unit", "p50 ms", "server cores", "peak RSS MiB"],
        rows,
    )
    mres = results["metrics"]
    print(
        f"stored points: {mres['stored_points']} of {mres['ok_points']} acknowledged (the first "
        "cumulative point of each series, begun before the server, is only its baseline); "
        f"503s: {mres['unavailable']}, failures: {mres['failed']}, "
        f"partial answers: {mres['partial_success_answers']}"
    )
    path = c.write_json("metrics_ingest", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
