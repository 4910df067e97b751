"""Load-test comparison benchmark: the full comparison of two runs of 1M requests each.

Filling: two 10-minute windows in the last half hour (baseline, then run), 1M requests
each — entry spans of 20 endpoints over 4 services, log-normal latencies, Zipf-like
traffic shares, 0.5 % errors; in the run, two endpoints are 30-50 % slower and one
fails 3 % of the time — written through the real ingest pipeline (``Pipeline``: span
preparation, rollups) into a DuckDB store, then the analysis job over the last half
hour. Timed, cold (just opened) then warm: ``query.loadtest.compare_runs`` (both runs'
requests as numpy columns, the statistics of every endpoint, database attribution,
runtime figures, the analyzer's findings for the run window, the verdict stored) plus
its JSON encoding — what ``GET /api/v1/loadtests/{id}/compare`` does besides HTTP.
Same-run baselines: fetching both runs' samples alone (``TraceReader.request_samples``)
and the analyzer's report for the run window (``heron analyze``'s rollup queries).
Target: ≤ 2 s.

    python bench/loadtest_compare.py [--requests 1000000] [--data-dir DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

TARGET_S = 2.0
P = 1
NS = 1_000_000_000
MS = 1_000_000
WINDOW_S = 600
CHUNK = 20_000
SERVICES = ("shop", "payments", "search", "accounts")
ROUTES = ("/", "/items/{id}", "/cart", "/checkout", "/orders/{id}")
SLOWER = {("shop", "GET /checkout"): 1.5, ("search", "GET /items/{id}"): 1.3}
FAILING = {("payments", "GET /cart"): 0.03}


def _endpoints() -> list[tuple[str, str, float, float]]:
    """(service, route, traffic share, median ms) of the 20 endpoints."""
    out = []
    for i, svc in enumerate(SERVICES):
        for j, route in enumerate(ROUTES):
            out.append((svc, route, 1.0 / (1 + i * len(ROUTES) + j), 15.0 + 12 * ((i + j) % 6)))
    total = sum(e[2] for e in out)
    return [(s, r, w / total, m) for s, r, w, m in out]


def fill(path: Path, n: int, base_start: int, run_start: int) -> dict[str, Any]:
    import numpy as np

    from heron.server.ingest.pipeline import Pipeline
    from heron.server.model import SPAN_KIND_SERVER, STATUS_ERROR, STATUS_UNSET, Span
    from heron.server.store.base import QueueFull
    from heron.server.store.duckdb_store import DuckDBStore

    rng = np.random.default_rng(14)
    eps = _endpoints()
    t0 = time.perf_counter()
    store = DuckDBStore(path).start()
    pipe = Pipeline(store)
    trace = 0
    try:
        for label, start in (("baseline", base_start), ("run", run_start)):
            which = rng.choice(len(eps), n, p=[e[2] for e in eps])
            offsets = np.sort(rng.integers(0, WINDOW_S * NS, n))
            errs = rng.random(n)
            noise = rng.lognormal(0.0, 0.45, n)
            pending = []
            for lo in range(0, n, CHUNK):
                spans = []
                for k in range(lo, min(n, lo + CHUNK)):
                    svc, route, _, median = eps[which[k]]
                    key = (svc, f"GET {route}")
                    slow = SLOWER.get(key, 1.0) if label == "run" else 1.0
                    fail = FAILING.get(key, 0.005) if label == "run" else 0.005
                    bad = errs[k] < fail
                    trace += 1
                    spans.append(
                        Span(
                            trace_id=trace.to_bytes(16, "big"),
                            span_id=1,
                            parent_id=0,
                            start_ns=start + int(offsets[k]),
                            duration_ns=int(median * MS * noise[k] * slow),
                            name=f"GET {route}",
                            kind=SPAN_KIND_SERVER,
                            status=STATUS_ERROR if bad else STATUS_UNSET,
                            status_message="",
                            service=svc,
                            environment="bench",
                            release="1.0",
                            http_method="GET",
                            http_route=route,
                            http_status=500 if bad else 200,
                        )
                    )
                while True:
                    try:
                        pending.append(pipe.submit_spans(P, spans))
                        break
                    except QueueFull:
                        pending.pop(0).result(600)
            for f in pending:
                f.result(600)
            print(f"    {label}: {n:,} requests written", flush=True)
    finally:
        store.close()
    return {"requests_per_run": n, "fill_s": time.perf_counter() - t0}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import orjson

    from heron.server.analyze.loadtest_stats import Settings
    from heron.server.jobs import analyze_recent
    from heron.server.model.loadtest import NewRun
    from heron.server.query import TimeRange
    from heron.server.query.analysis import analysis_report
    from heron.server.query.loadtest import compare_runs
    from heron.server.store.duckdb_store import DuckDBStore

    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    base = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="heron-lt-"))
    path = base / f"loadtest-{args.requests}" / "heron.duckdb"
    meta = path.with_name("fill.json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        print(f"reusing {path}", flush=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        now = c.now_ns()
        info = {"base_start": now - 25 * 60 * NS, "run_start": now - 12 * 60 * NS, "now": now}
        print(f"filling 2 × {args.requests:,} requests into {path}", flush=True)
        info |= fill(path, args.requests, info["base_start"], info["run_start"])
        meta.write_text(json.dumps(info))
    store = DuckDBStore(path).start()
    rows: list[dict[str, Any]] = []
    try:
        t0 = time.perf_counter()
        analyze_recent(store, info["now"], window_s=1800)
        print(f"analysis job (last 30 min): {time.perf_counter() - t0:.2f} s", flush=True)
        st = store.state
        b = st.create_loadtest(P, NewRun(name="bench"), info["base_start"], info["now"])
        b = st.finish_loadtest(
            P, b.id, status="finished", end_ns=info["base_start"] + WINDOW_S * NS,
            exit_code=0, load=None, now_ns=info["now"],
        )  # fmt: skip
        r = st.create_loadtest(P, NewRun(name="bench"), info["run_start"], info["now"])
        r = st.finish_loadtest(
            P, r.id, status="finished", end_ns=info["run_start"] + WINDOW_S * NS,
            exit_code=0, load=None, now_ns=info["now"],
        )  # fmt: skip
        assert b is not None and r is not None
        for i in range(args.runs):
            label = "cold" if i == 0 else f"warm {i}"
            c0, w0 = time.process_time(), time.perf_counter()
            cmp = compare_runs(store, P, r, b, Settings(), now_ns=c.now_ns())
            body = orjson.dumps(cmp)
            wall = time.perf_counter() - w0
            cpu = time.process_time() - c0
            w1 = time.perf_counter()
            samples = [store.traces.request_samples(P, x.start_ns, x.end_ns or 0) for x in (r, b)]
            fetch = time.perf_counter() - w1
            w2 = time.perf_counter()
            analysis_report(store, P, TimeRange(r.start_ns, r.end_ns or 0))
            report = time.perf_counter() - w2
            statuses: dict[str, int] = {}
            for e in cmp["endpoints"]:
                statuses[e["status"]] = statuses.get(e["status"], 0) + 1
            rows.append(
                {
                    "run": label,
                    "requests": sum(len(s.start_ns) for ss in samples for s in ss),
                    "endpoints": len(cmp["endpoints"]),
                    "verdict": cmp["verdict"],
                    "statuses": statuses,
                    "compare_s": round(wall, 3),
                    "cpu_s": round(cpu, 3),
                    "json_kb": round(len(body) / 1024, 1),
                    "samples_s": round(fetch, 3),
                    "analysis_s": round(report, 3),
                    "met": wall <= TARGET_S,
                }
            )
            print(f"  {label}: compare {wall:.2f} s (cpu {cpu:.2f} s), samples {fetch:.2f} s, "
                  f"analysis {report:.2f} s, {statuses}", flush=True)  # fmt: skip
    finally:
        store.close()
    c.print_table(
        f"Full comparison of two runs of {args.requests:,} requests (target ≤ {TARGET_S} s)",
        [
            "run",
            "requests",
            "endpoints",
            "verdict",
            "compare s",
            "CPU s",
            "samples s",
            "analysis s",
            "met",
        ],  # fmt: skip
        [
            [
                x["run"],
                x["requests"],
                x["endpoints"],
                x["verdict"],
                x["compare_s"],
                x["cpu_s"],
                x["samples_s"],
                x["analysis_s"],
                "yes" if x["met"] else "no",
            ]  # fmt: skip
            for x in rows
        ],
    )
    doc = {"machine": m, "fill": info, "runs": rows}
    c.write_json("loadtest_compare", doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000, help="requests per run")
    ap.add_argument("--runs", type=int, default=3, help="timed comparisons (first cold)")
    ap.add_argument("--data-dir", help="keep (and reuse) the filled store here")
    run(ap.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
