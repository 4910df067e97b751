"""Metrics series-query benchmark: 1,000 series × 7 days at 1-minute resolution.

Filling (not the ingest path): the series catalogue and the minute rollups are made with
numpy and inserted as Arrow tables, in time order (every series' minute m before any
minute m+1, as ingest writes them), on the store's writer:

- ``bench.gauge``: 1,000 gauge series (labels ``host.name`` 20 values, ``region`` 4,
  ``service.instance.id`` one per series, over 5 services), 7 × 1,440 minutes each:
  10,080,000 rollup rows — the issue's target set;
- ``bench.requests``: 100 counter series and ``bench.latency``: 100 histogram series
  (12 bounds), 7 days each: 1,008,000 rows each, so the other shapes have data too.

Timing: the store is closed (CHECKPOINT) and reopened; per shape, one cold call, then
``--runs`` warm calls of ``query.metrics.query_series`` (the function the API calls) give
the median and p95; a plain ``SELECT count(*)`` of the rollups is the same-run baseline.
The target (issue 11): aggregated and grouped over the 1,000 series × 7 days ≤ 100 ms.

With ``--backend clickhouse`` the same rows go (as Arrow) into ClickHouse in-process
(chdb) through ``metric_rollup_in``, whose views fill the three tiers, and the tiers are
``OPTIMIZE … FINAL``-ed (merged as background merges would in time) before timing.

    python bench/metrics_query.py [--backend duckdb|clickhouse] [--runs 15] [--data-dir DIR --keep]
"""

from __future__ import annotations

import argparse
import json
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

DAYS = 7
MINUTES = DAYS * 1440
TARGET_MS = 100.0
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
PROJECT = 1


def _series(n: int, name: str, kind: str, offset: int) -> dict[str, list[Any]]:
    from heron.server.model.metric import canonical_attributes, series_key

    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "project_id",
            "series",
            "name",
            "service",
            "kind",
            "unit",
            "description",
            "attributes",
        )
    }
    for i in range(n):
        service = f"svc-{i % 5}"
        attrs = {
            "host.name": f"host-{i % 20:02d}",
            "region": ("eu", "us", "ap", "sa")[i % 4],
            "service.instance.id": f"inst-{offset + i:04d}",
        }
        for k, v in (
            ("project_id", PROJECT),
            ("series", series_key(name, service, attrs)),
            ("name", name),
            ("service", service),
            ("kind", kind),
            ("unit", "s" if kind == "histogram" else "1"),
            ("description", ""),
            ("attributes", canonical_attributes(attrs)),
        ):
            cols[k].append(v)
    return cols


def _rollups(keys: Any, kind: str, minutes: Any, rng: Any) -> Any:
    """Arrow rollup rows of ``keys`` × ``minutes``, minute-major."""
    import numpy as np
    import pyarrow as pa

    from heron.server.store.duckdb_store import METRIC_ROLLUP_SCHEMA

    n = len(keys) * len(minutes)
    series = np.tile(np.asarray(keys, dtype=np.int64), len(minutes))
    minute_s = np.repeat(minutes, len(keys))
    if kind == "histogram":
        nb = len(BOUNDS) + 1
        counts = rng.poisson(3.0, size=(n, nb)).astype(np.uint64)
        total = counts.sum(axis=1)
        s = total * 0.2
        offsets = pa.array(np.arange(0, (n + 1) * nb, nb, dtype=np.int32))
        buckets = pa.ListArray.from_arrays(offsets, pa.array(counts.ravel(), pa.uint64()))
        bvals = np.tile(np.asarray(BOUNDS), n)
        bounds = pa.ListArray.from_arrays(
            offsets_b := pa.array(np.arange(0, n * len(BOUNDS) + 1, len(BOUNDS), dtype=np.int32)),
            pa.array(bvals),
        )
        del offsets_b
        lo, hi, last = np.full(n, 0.001), np.full(n, 9.0), s
        count = total
    else:
        v = rng.random(n) * 100.0
        count = np.full(n, 6, dtype=np.uint64)  # a point every 10 s
        s = v * 6
        lo, hi, last = v * 0.5, v * 1.5, v
        bounds = pa.nulls(n, pa.list_(pa.float64()))
        buckets = pa.nulls(n, pa.list_(pa.uint64()))
    arrays = [
        pa.array(np.full(n, PROJECT, dtype=np.int32)),
        pa.array(series),
        pa.array(minute_s),
        pa.array(count.astype(np.uint64)),
        pa.array(s.astype(np.float64)),
        pa.array(lo),
        pa.array(hi),
        pa.array(last.astype(np.float64)),
        pa.array(minute_s * 10**9 + 50 * 10**9),
        bounds,
        buckets,
    ]
    return pa.Table.from_arrays(arrays, schema=METRIC_ROLLUP_SCHEMA)


def _insert(con: Any, table: str, tbl: Any) -> None:
    con.register("bench_rows", tbl)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM bench_rows")  # noqa: S608 - constants
    con.unregister("bench_rows")


def _ch_rollups(tbl: Any, names: dict[int, str]) -> Any:
    """DuckDB-form rollup rows as ClickHouse's ``metric_rollup_in`` rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = np.asarray(list(names), dtype=np.int64)
    labels = np.asarray(list(names.values()))
    series = np.asarray(tbl.column("series"))
    order = np.argsort(keys)
    name_col = labels[order][np.searchsorted(keys[order], series)]

    def filled(col: str, typ: Any) -> Any:
        return pc.fill_null(tbl.column(col), pa.scalar([], typ))

    return pa.table(
        {
            "project_id": pc.cast(tbl.column("project_id"), pa.uint32()),
            "name": pa.array(name_col, pa.string()),
            "series": tbl.column("series"),
            "at_s": tbl.column("minute_s"),
            "bounds": filled("bounds", pa.list_(pa.float64())),
            "v_count": tbl.column("count"),
            "v_sum": tbl.column("sum"),
            "v_min": tbl.column("min"),
            "v_max": tbl.column("max"),
            "v_last": tbl.column("last"),
            "v_last_ns": tbl.column("last_ns"),
            "v_buckets": filled("buckets", pa.list_(pa.uint64())),
        }
    )


def open_bench_store(backend: str, path: Path) -> Any:
    if backend == "duckdb":
        from heron.server.store.duckdb_store import DuckDBStore

        return DuckDBStore(path).start()
    from heron.server.store.clickhouse.store import ClickHouseStore

    return ClickHouseStore(
        f"chdb://{path.parent / 'chdb'}",
        database="bench",
        retention_days=3650,
        rollup_retention_days=3650,
        state_path=path.parent / "state.duckdb",
    )


def fill(path: Path, end_min_s: int, backend: str = "duckdb") -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa

    t0 = time.perf_counter()
    store = open_bench_store(backend, path)
    ch = backend != "duckdb"
    metrics = [
        ("bench.gauge", "gauge", 1000, 0),
        ("bench.requests", "counter", 100, 1000),
        ("bench.latency", "histogram", 100, 1100),
    ]
    start_s = end_min_s - MINUTES * 60
    cats = [_series(n, name, kind, off) for name, kind, n, off in metrics]
    rows = 0
    for cat in cats:
        cat["first_seen_s"] = [start_s] * len(cat["series"])
        cat["last_seen_s"] = [end_min_s - 60] * len(cat["series"])
        if ch:
            cat["project_id"] = cat["project_id"]
            store._writes.insert("metric_series", list(cat.values()), list(cat))
            continue
        cat_tbl = pa.table(cat)
        store.write(lambda con, t=cat_tbl: _insert(con, "metric_series", t))
    names = {k: n for cat in cats for k, n in zip(cat["series"], cat["name"], strict=True)}
    rng = np.random.default_rng(7)
    for day in range(DAYS):
        minutes = np.arange(
            start_s + day * 86_400, start_s + (day + 1) * 86_400, 60, dtype=np.int64
        )
        parts = [
            _rollups(cat["series"], kind, minutes, rng)
            for cat, (_, kind, _, _) in zip(cats, metrics, strict=True)
        ]
        # Minute-major over all metrics, as a live writer would commit them.
        day_tbl = pa.concat_tables(parts)
        order = np.lexsort(
            (np.asarray(day_tbl.column("series")), np.asarray(day_tbl.column("minute_s")))
        )
        day_tbl = day_tbl.take(pa.array(order))
        if ch:
            with store._writes.borrow() as client:
                client.insert_arrow(
                    f"{store.database}.metric_rollup_in", _ch_rollups(day_tbl, names)
                )
        else:
            store.write(lambda con, t=day_tbl: _insert(con, "metric_rollup_1m", t), timeout=600)
        rows += len(order)
        print(f"  day {day + 1}: {rows:,} rollup rows", flush=True)
    fill_s = time.perf_counter() - t0
    if ch:
        # Background merges fold the inserts' partial rows over time; fold them now.
        t = time.perf_counter()
        for table in ("metric_rollup_1m", "metric_rollup_10m", "metric_rollup_1h"):
            store._writes.command(f"OPTIMIZE TABLE {{db}}.{table} FINAL")
        optimize_s = time.perf_counter() - t
        store.close()
        return {
            "rollup_rows": rows,
            "fill_s": fill_s,
            "first_upkeep_s": optimize_s,
            "upkeep_s": None,
            "end_min_s": end_min_s,
        }
    # Upkeep as the server runs it every minute; the first run builds the hourly tier
    # from every stored minute (a later run rebuilds the last hour or two).
    t = time.perf_counter()
    store.upkeep(
        end_min_s * 10**9,
        retention_days=DAYS + 1,
        rollup_retention_days=30,
        compact_from_s=end_min_s - 3600,
        compact_to_s=end_min_s - 60,
    )
    first_upkeep_s = time.perf_counter() - t
    t = time.perf_counter()
    store.upkeep(
        end_min_s * 10**9 + 60 * 10**9,
        retention_days=DAYS + 1,
        rollup_retention_days=30,
        compact_from_s=end_min_s - 3600 + 60,
        compact_to_s=end_min_s,
    )
    upkeep_s = time.perf_counter() - t
    store.close()
    return {
        "rollup_rows": rows,
        "fill_s": fill_s,
        "first_upkeep_s": first_upkeep_s,
        "upkeep_s": upkeep_s,
        "end_min_s": end_min_s,
    }


def _time(fn: Callable[[], Any], runs: int) -> dict[str, Any]:
    t = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return {"cold_ms": cold * 1000, **c.summary_ms(samples), "result": out}


def time_queries(path: Path, end_min_s: int, runs: int, backend: str) -> list[dict[str, Any]]:
    from heron.server.query import TimeRange
    from heron.server.query.metrics import SeriesQuery, query_series

    store = open_bench_store(backend, path)
    end_ns = end_min_s * 10**9
    week = TimeRange(end_ns - MINUTES * 60 * 10**9, end_ns)
    hour = TimeRange(end_ns - 3600 * 10**9, end_ns)
    shapes: list[tuple[str, SeriesQuery, TimeRange, bool]] = [
        ("avg by host.name, 7 d, 1 h step", SeriesQuery("bench.gauge", "avg", ("host.name",), step_s=3600), week, True),
        ("avg by host.name, 7 d, 10 min step", SeriesQuery("bench.gauge", "avg", ("host.name",), step_s=600), week, True),
        ("max by region+service, 7 d, auto step", SeriesQuery("bench.gauge", "max", ("region", "service")), week, True),
        ("last, region=eu, 7 d, 1 h step", SeriesQuery("bench.gauge", "last", (), (("region", "eu"),), step_s=3600), week, True),
        ("avg by host.name, 1 h, 1 min step", SeriesQuery("bench.gauge", "avg", ("host.name",), step_s=60), hour, False),
        ("rate of counter by service, 7 d, 1 h step", SeriesQuery("bench.requests", "rate", ("service",), step_s=3600), week, False),
        ("p95 of histogram by service, 7 d, 1 h step", SeriesQuery("bench.latency", "p95", ("service",), step_s=3600), week, False),
        ("p95 of histogram, 1 h, 1 min step", SeriesQuery("bench.latency", "p95", step_s=60), hour, False),
    ]  # fmt: skip
    out = []
    if backend == "duckdb":
        base = _time(lambda: store.read("SELECT count(*) FROM metric_rollup_1m")[0][0], runs)
    else:
        base = _time(
            lambda: store._reads.rows("SELECT count() FROM {db}.metric_rollup_1m")[0][0], runs
        )
    out.append(
        {"query": "baseline: SELECT count(*) FROM metric_rollup_1m", "target": False, **base}
    )
    for label, q, tr, target in shapes:
        r = _time(lambda q=q, tr=tr: query_series(store, PROJECT, q, tr), runs)
        res = r.pop("result")
        r["result"] = {
            "series": len(res.series),
            "points": sum(len(s.points) for s in res.series),
            "step_s": res.step_s,
            "non_null": sum(1 for s in res.series for _, v in s.points if v is not None),
        }
        out.append({"query": label, "target": target, **r})
        print(f"  {label}: {r['median_ms']:.1f} ms", flush=True)
    store.close()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    base = (
        Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="heron-bench-mq-"))
    )
    path = base / f"metrics-{args.backend}" / "heron.duckdb"
    meta = path.with_name("fill.json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        print(f"reusing {path} ({info['rollup_rows']:,} rollup rows)", flush=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        end_min_s = c.now_ns() // 10**9 // 3600 * 3600
        print(f"filling {path}", flush=True)
        info = fill(path, end_min_s, args.backend)
        meta.write_text(json.dumps(info))
    size = sum(f.stat().st_size for f in path.parent.rglob("*") if f.is_file())
    timings = time_queries(path, info["end_min_s"], args.runs, args.backend)
    if not args.keep and not args.data_dir:
        shutil.rmtree(base, ignore_errors=True)
    rows = []
    for t in timings:
        met = ("yes" if t["median_ms"] <= TARGET_MS else "no") if t["target"] else ""
        res = t.get("result")
        shape = (
            f"{res['series']} × {res['points'] // max(res['series'], 1)}"
            if isinstance(res, dict)
            else res
        )
        rows.append(
            [
                t["query"],
                shape,
                t["cold_ms"],
                t["median_ms"],
                t["p95_ms"],
                met and f"≤ {TARGET_MS:.0f} ms: {met}",
            ]
        )
    c.print_table(
        f"Series queries ({args.backend}) over {info['rollup_rows']:,} rollup rows (warm = median/p95 of {args.runs} runs)",
        ["query", "series × points", "cold ms", "warm median ms", "warm p95 ms", "target"],
        rows,
    )
    print(
        f"files: {size / 2**20:.0f} MiB, fill {info.get('fill_s') or 0:.0f} s; "
        + (
            f"upkeep: first (builds the 10-min and hour tiers) {info.get('first_upkeep_s') or 0:.1f} s, "
            f"next {info.get('upkeep_s') or 0:.2f} s"
            if args.backend == "duckdb"
            else f"OPTIMIZE FINAL of the tiers {info.get('first_upkeep_s') or 0:.1f} s"
        ),
        flush=True,
    )
    doc = {
        "bench": "metrics_query",
        "backend": args.backend,
        "machine": m,
        "args": vars(args),
        "rollup_rows": info["rollup_rows"],
        "file_bytes": size,
        "fill_s": info.get("fill_s"),
        "first_upkeep_s": info.get("first_upkeep_s"),
        "upkeep_s": info.get("upkeep_s"),
        "timings": timings,
        "target_ms": TARGET_MS,
        "target_met": all(t["median_ms"] <= TARGET_MS for t in timings if t["target"]),
        "loadavg": os.getloadavg(),
    }
    c.write_json(
        args.out or ("metrics_query" + ("" if args.backend == "duckdb" else "_clickhouse")), doc
    )
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=15, help="warm runs per query (default 15)")
    p.add_argument("--data-dir", help="keep/reuse the filled store here")
    p.add_argument("--keep", action="store_true", help="keep the temporary store")
    p.add_argument(
        "--backend",
        choices=("duckdb", "clickhouse"),
        default="duckdb",
        help="duckdb (default) or clickhouse (in-process chdb)",
    )
    p.add_argument("--out", help="JSON name under bench/out/ (default metrics_query[_clickhouse])")
    run(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
