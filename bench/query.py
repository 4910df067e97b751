"""Query benchmark: service table, endpoint table and trace-by-id over 1M and 10M spans.

Filling: a pool of realistic spans (≤ ``--pool`` spans, times over the last 24 h) is made
the way ingest makes them: OTLP protobuf → ``decode_protobuf_batch`` → the ingest
pipeline (``prepare_spans``) → ``spans_to_arrow``. The store is filled with copies of the
pool: copy k gets trace ids with k in their first two bytes and start times moved by k
minutes, and its rollup rows are the pool's moved by the same k minutes, so spans and
``rollup_1m`` stay consistent. Everything goes through ``DuckDBStore.write`` (the writer, in
transactions), then the store is closed (CHECKPOINT).

Timing: the store is reopened; the first call of each query is "cold" (DuckDB's buffer
pool empty; the OS page cache is not dropped), then ``--runs`` warm calls give the
median and p95. Each query is timed as a direct function call and through the JSON API
(in-process ASGI with Starlette's TestClient, bearer token, JSON encoding included).

    python bench/query.py --sizes 1000000,10000000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

TOKEN = "ht_bench_api_token_0123456789abcdef"
KEY = "hk_bench_ingest_key_0123456789"
TARGETS_MS = {"endpoint table": 200.0, "trace by id": 20.0}


# ------------------------------------------------------------------------ filling


def make_pool(
    n_spans: int, copies_minutes: int
) -> tuple[Any, dict[tuple[Any, ...], list[int]], list[bytes]]:
    """(arrow table of spans, rollup accumulator, some trace ids) for ~n_spans spans."""
    import pyarrow as pa

    from heron.server.analyze.span_scrub import SpanScrubber
    from heron.server.ingest.otlp import decode_protobuf_batch
    from heron.server.ingest.pipeline import prepare_spans
    from heron.server.model.rollup import rollup_rows
    from heron.server.store.duckdb_store import spans_to_arrow

    gen = c.TraceGenerator(seed=42)
    now = c.now_ns()
    hi = now - (copies_minutes + 1) * 60 * c.NS
    lo = hi - 86_400 * c.NS + (copies_minutes + 1) * 60 * c.NS
    tables, acc, sample, scrubber = [], {}, [], SpanScrubber()
    made = 0
    while made < n_spans:
        body = c.build_request(gen, min(512, n_spans - made), lo, hi).SerializeToString()
        batch = decode_protobuf_batch(body).spans
        write = prepare_spans(1, batch, scrubber)
        tables.append(spans_to_arrow(write))
        rollup_rows(1, write.spans, acc)
        if len(sample) < 200:
            sample.append(batch.rows[0][1])
        made += len(batch)
    return pa.concat_tables(tables).combine_chunks(), acc, sample


def copy_tables(pool: Any, rollups: Any, k: int) -> tuple[Any, Any]:
    """Copy k of the pool: trace ids prefixed with k, times moved by k minutes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    shift_ns = k * 60 * c.NS
    spans = pool.set_column(
        pool.schema.get_field_index("trace_id"),
        pool.schema.field("trace_id"),
        pc.binary_replace_slice(
            pool.column("trace_id"), start=0, stop=2, replacement=k.to_bytes(2, "big")
        ),
    )
    spans = spans.set_column(
        spans.schema.get_field_index("start_ns"),
        spans.schema.field("start_ns"),
        pc.add(spans.column("start_ns"), pa.scalar(shift_ns, pa.int64())),
    )
    ru = rollups.set_column(
        rollups.schema.get_field_index("minute_s"),
        rollups.schema.field("minute_s"),
        pc.add(rollups.column("minute_s"), pa.scalar(k * 60, pa.int64())),
    )
    return spans, ru


def fill(path: Path, n_spans: int, pool_size: int) -> dict[str, Any]:
    from heron.server.store.duckdb_store import DuckDBStore, rollups_to_arrow

    copies = -(-n_spans // pool_size)
    t0 = time.perf_counter()
    pool, acc, sample = make_pool(min(pool_size, n_spans), copies)
    rollups = rollups_to_arrow(acc)
    t_pool = time.perf_counter() - t0
    store = DuckDBStore(path).start()
    inserted = 0
    try:
        for k in range(copies):
            take = min(pool.num_rows, n_spans - inserted)
            spans_k, rollups_k = copy_tables(
                pool.slice(0, take) if take < pool.num_rows else pool, rollups, k
            )
            if take < pool.num_rows:  # a partial last copy: its rollups from its own rows
                spans_k, rollups_k = _partial(spans_k, k)
            store.write(lambda con, s=spans_k, r=rollups_k: _insert(con, s, r), timeout=3600)
            inserted += take
            print(f"    filled {inserted:,} / {n_spans:,} spans", flush=True)
    finally:
        store.close()
    ids = [k.to_bytes(2, "big") + t[2:] for t in sample for k in (0, copies - 1)]
    return {
        "spans": inserted,
        "copies": copies,
        "pool_s": t_pool,
        "fill_s": time.perf_counter() - t0,
        "trace_ids": [i.hex() for i in ids],
    }


def _partial(spans: Any, k: int) -> tuple[Any, Any]:
    """Rollups recomputed from the rows of a partial copy."""
    from heron.server.model.rollup import rollup_rows
    from heron.server.model.span import SPAN_COLUMNS, SpanBatch
    from heron.server.store.duckdb_store import rollups_to_arrow

    cols = [spans.column(n).to_pylist() for n in SPAN_COLUMNS]
    batch = SpanBatch(list(zip(*cols, strict=True)))
    acc: dict[tuple[Any, ...], list[int]] = {}
    rollup_rows(1, batch, acc)
    return spans, rollups_to_arrow(acc)


def _insert(con: Any, spans: Any, rollups: Any) -> None:
    con.register("bench_spans", spans)
    con.register("bench_rollups", rollups)
    try:
        con.execute("INSERT INTO spans BY NAME SELECT * FROM bench_spans")
        con.execute("INSERT INTO rollup_1m BY NAME SELECT * FROM bench_rollups")
    finally:
        con.unregister("bench_spans")
        con.unregister("bench_rollups")


# ------------------------------------------------------------------------ timing


def time_calls(fn: Callable[[], Any], runs: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    fn()
    cold = time.perf_counter() - t0
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return {"cold_ms": cold * 1000, **c.summary_ms(samples)}


def time_queries(path: Path, trace_ids: list[str], runs: int) -> list[dict[str, Any]]:
    """Direct query-function calls on a freshly opened store."""
    from heron.server import query
    from heron.server.store.duckdb_store import DuckDBStore

    store = DuckDBStore(path).start()
    try:
        now = c.now_ns()
        tr = query.TimeRange(now - 86_400 * c.NS, now)
        rows = query.service_table(store, 1, tr)
        busiest = max(rows, key=lambda r: r.requests).service
        ids = iter(trace_ids * (runs + 2))
        out = []
        for name, fn in (
            ("service table", lambda: query.service_table(store, 1, tr)),
            ("endpoint table", lambda: query.endpoint_table(store, 1, tr, busiest)),
            ("trace by id", lambda: _trace(query.get_trace(store, 1, bytes.fromhex(next(ids))))),
        ):
            out.append({"query": name, "via": "function", **time_calls(fn, runs)})
        return out
    finally:
        store.close()


def _trace(t: Any) -> Any:
    if t is None or t.span_count < 2:
        raise RuntimeError("trace not found: the fill and the sample disagree")
    return t


def time_api(path: Path, trace_ids: list[str], runs: int) -> list[dict[str, Any]]:
    """The same questions through the JSON API, in-process (TestClient)."""
    import warnings

    with warnings.catch_warnings():  # "use httpx2": the bench runs with the venv's httpx
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

    from heron.server.app import create_app
    from heron.server.config import load_config

    env = {
        "HERON_DATA_DIR": str(path.parent),
        "HERON_API_TOKEN": TOKEN,
        "HERON_INGEST_KEY": KEY,
        "HERON_LOG_LEVEL": "warning",
    }
    app = create_app(load_config(env=env), maintenance_interval_s=3600)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    out = []
    with TestClient(app) as client:

        def get(url: str) -> Any:
            r = client.get(url, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:200]}")
            return r.json()

        services = get("/api/v1/services?from=now-24h&to=now")["services"]
        busiest = max(services, key=lambda s: s["requests"])["service"]
        ids = iter(trace_ids * (runs + 2))
        for name, url in (
            ("service table", lambda: "/api/v1/services?from=now-24h&to=now"),
            ("endpoint table", lambda: f"/api/v1/services/{busiest}/endpoints?from=now-24h&to=now"),
            ("trace by id", lambda: f"/api/v1/traces/{next(ids)}"),
        ):
            out.append({"query": name, "via": "API", **time_calls(lambda u=url: get(u()), runs)})
    return out


# ------------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    results = []
    base = (
        Path(args.data_dir)
        if args.data_dir
        else Path(tempfile.mkdtemp(prefix="heron-bench-query-"))
    )
    for n in args.sizes:
        path = base / f"spans-{n}" / "heron.duckdb"
        meta = path.with_name("fill.json")
        if path.exists() and meta.exists():
            import json

            info = json.loads(meta.read_text())
            print(f"reusing {path} ({info['spans']:,} spans)", flush=True)
        else:
            print(f"filling {n:,} spans into {path}", flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            info = fill(path, n, args.pool)
            import json

            meta.write_text(json.dumps(info))
        size = path.stat().st_size
        timings = time_queries(path, info["trace_ids"], args.runs)
        if not args.no_api:
            timings += time_api(path, info["trace_ids"], args.runs)
        for t in timings:
            t["spans"] = info["spans"]
        results.append(
            {
                "spans": info["spans"],
                "fill_s": info.get("fill_s"),
                "file_bytes": size,
                "timings": timings,
            }
        )
    if not args.keep and not args.data_dir:
        shutil.rmtree(base, ignore_errors=True)
    rows = []
    for r in results:
        for t in r["timings"]:
            target = TARGETS_MS.get(t["query"])
            met = "" if target is None else ("yes" if t["median_ms"] <= target else "no")
            rows.append(
                [
                    f"{r['spans']:,}",
                    t["query"],
                    t["via"],
                    t["cold_ms"],
                    t["median_ms"],
                    t["p95_ms"],
                    f"≤ {target:.0f} ms: {met}" if target else "",
                ]
            )
    c.print_table(
        f"Query latency (last 24 h window; warm = median/p95 of {args.runs} runs)",
        ["spans", "query", "via", "cold ms", "warm median ms", "warm p95 ms", "target"],
        rows,
    )
    c.print_table(
        "Stores",
        ["spans", "file MiB", "bytes/span", "fill s"],
        [
            [
                r["spans"],
                r["file_bytes"] / 2**20,
                r["file_bytes"] / r["spans"],
                r["fill_s"] or "reused",
            ]
            for r in results
        ],
    )
    largest = max(results, key=lambda r: r["spans"])
    met = {
        q: all(t["median_ms"] <= ms for t in largest["timings"] if t["query"] == q)
        for q, ms in TARGETS_MS.items()
    }
    doc = {
        "bench": "query",
        "machine": m,
        "args": vars(args),
        "results": results,
        "targets_ms": TARGETS_MS,
        "targets_at_spans": largest["spans"],
        "targets_met": met,
        "loadavg": os.getloadavg(),
    }
    c.write_json(args.out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--sizes",
        default="1000000,10000000",
        type=lambda s: [int(x) for x in s.split(",")],
        help="comma-separated store sizes in spans (default 1000000,10000000)",
    )
    p.add_argument(
        "--pool",
        type=int,
        default=500_000,
        help="distinct generated spans copied to reach each size (default 500000)",
    )
    p.add_argument("--runs", type=int, default=20, help="warm runs per query (default 20)")
    p.add_argument(
        "--data-dir", help="keep/reuse filled stores here (default: a temp dir, removed)"
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir with the stores")
    p.add_argument("--no-api", action="store_true", help="time only the query functions")
    p.add_argument("--out", default="query", help="JSON name under bench/out/ (default query)")
    args = p.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
