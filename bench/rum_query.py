"""RUM query benchmark: the web-vitals overview's reads over 10M RUM events × 7 days.

Filling goes through the ingest path's store entry, ``Store.submit_rum``, in writes of
``--batch`` events (default 100,000) with their ``model.rum.rollup_rum`` rollups, as the
RUM pipeline hands them over: the same tables, the same rollup rows, the same group
commit. The events are made in time order over the 7 days before the current hour:

- page views (hard navigations with a load time, 15% soft navigations) over 200 pages
  (Zipf-like: page i has weight 1/(i+1)), 6 browsers (Chrome 60%, Safari 20%, Edge 8%,
  Firefox 7%, Samsung Internet 3%, Opera 2%) and 3 device classes (desktop 55%, mobile 40%,
  tablet 5%), ~3 views a session;
- per view: FCP, TTFB, LCP, CLS (log-normal / exponential, medians near the "good"
  thresholds, a poor tail) and INP for 80% of views, a slow resource for 30%, a long
  animation frame for 20%, a JavaScript error for 3%: ~6.3 events a view, ~1.6M views.

Timing: the store is closed (CHECKPOINT, or OPTIMIZE … FINAL on ClickHouse: merged as
background merges would in time) and reopened; per read, one cold call, then ``--runs``
warm calls through ``store.rum`` (the ``RumReader`` the overview's query layer calls) give
the median and p95. The overview is its three reads over the 7 days:

- ``rollup`` without ``by``, every metric (the summary tiles: p75 and rating shares);
- ``rollup(by="page", metrics=["LCP"])`` (the pages table);
- ``rollup(step_s=3600, metrics=vitals)`` (the charts);

target ≤ 200 ms for the three together (the sum of their medians, and the median of the
three run back to back). ``SELECT count(*)`` of ``rum_events`` is the same-run baseline.
Other pages' reads are timed too, for reference (no target): choices, the slowest
resources, recent sessions, a session's timeline and a page view's events.

    python bench/rum_query.py [--backend duckdb|clickhouse] [--events 10000000] [--runs 15]
                              [--data-dir DIR --keep]
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
TARGET_MS = 200.0
PROJECT = 1
PAGES = 200
BROWSERS = (
    ("Chrome", 0.60, "131"),
    ("Safari", 0.20, "18"),
    ("Edge", 0.08, "131"),
    ("Firefox", 0.07, "133"),
    ("Samsung Internet", 0.03, "27"),
    ("Opera", 0.02, "115"),
)
DEVICES = (("desktop", 0.55), ("mobile", 0.40), ("tablet", 0.05))
OS_OF = {"desktop": "Windows", "mobile": "Android", "tablet": "iOS"}
VITAL_MEDIANS = {"FCP": 1300.0, "TTFB": 450.0, "LCP": 2100.0, "INP": 140.0}
EVENTS_PER_VIEW = 6.33  # 1 view + 4 vitals + 0.8 INP + 0.3 + 0.2 + 0.03 (see above)


def _pages() -> list[str]:
    sections = ("products", "category", "blog", "help", "account", "search", "cart", "deals")
    out = ["/", "/checkout", "/cart", "/login"]
    i = 0
    while len(out) < PAGES:
        out.append(f"/{sections[i % len(sections)]}/{i // len(sections)}/:id")
        i += 1
    return out


def _events(n_views: int, first_view: int, start_ns: int, span_ns: int, rng: Any) -> list[Any]:
    """RumEvents of ``n_views`` page views (view ``first_view`` onwards), in time order."""
    import numpy as np

    from heron.server.model.rum import RumEvent, rate

    pages = _pages()
    weights = 1.0 / np.arange(1, PAGES + 1)
    page_idx = rng.choice(PAGES, size=n_views, p=weights / weights.sum())
    browser_idx = rng.choice(len(BROWSERS), size=n_views, p=[b[1] for b in BROWSERS])
    device_idx = rng.choice(len(DEVICES), size=n_views, p=[d[1] for d in DEVICES])
    vit = {k: rng.lognormal(np.log(m), 0.55, n_views) for k, m in VITAL_MEDIANS.items()}
    cls = rng.exponential(0.07, n_views)
    u = rng.random((n_views, 5))
    views = first_view + np.arange(n_views)
    times = start_ns + ((views + rng.random(n_views)) * span_ns).astype(np.int64)
    out: list[Any] = []
    for i in range(n_views):
        v = int(views[i])
        b, bshare, bver = BROWSERS[browser_idx[i]]
        device = DEVICES[device_idx[i]][0]
        page = pages[page_idx[i]]
        session = f"s{v // 3:012d}"
        view_id = f"v{v:012d}"
        t = int(times[i])
        soft = u[i, 0] < 0.15
        lcp = float(vit["LCP"][i])
        common = {
            "session_id": session,
            "view_id": view_id,
            "page": page,
            "url": f"https://shop.example{page.replace(':id', str(v % 977))}",
            "browser": b,
            "browser_version": bver,
            "os": OS_OF[device],
            "device": device,
            "app": "shop-web",
            "release": "1.4.2",
            "environment": "production",
            "user_id": f"u-{v % 50_000}" if v % 3 else "",
        }

        def add(
            dt_ms: float,
            kind: str,
            name: str,
            value: float,
            target: str = "",
            t: int = t,
            common: dict[str, str] = common,
        ) -> None:
            out.append(
                RumEvent(
                    time_ns=t + int(dt_ms * 1e6),
                    kind=kind,
                    name=name,
                    value=value,
                    rating=rate(name, value) if kind == "vital" else "",
                    target=target,
                    **common,
                )
            )

        add(0, "view", "soft-navigation" if soft else "navigate", 0.0 if soft else lcp * 1.3)
        add(1, "vital", "TTFB", float(vit["TTFB"][i]))
        add(2, "vital", "FCP", float(vit["FCP"][i]))
        add(3, "vital", "LCP", lcp, "img.hero")
        if u[i, 1] < 0.3:
            add(5, "resource", f"https://cdn.example/asset-{v % 300}.js", 1000 + lcp / 2, "script")
        if u[i, 2] < 0.2:
            add(6, "longtask", "long-animation-frame", 50 + lcp / 20)
        if u[i, 3] < 0.8:
            add(8, "vital", "INP", float(vit["INP"][i]), "button.buy")
        if u[i, 4] < 0.03:
            add(9, "error", "TypeError", 0.0, "Cannot read properties of undefined")
        add(10, "vital", "CLS", float(cls[i]), "div.banner")
    return out


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


def fill(path: Path, end_s: int, n_events: int, batch: int, backend: str) -> dict[str, Any]:
    import numpy as np

    from heron.server.model.rum import RumRollups, RumWrite, rollup_rum

    t0 = time.perf_counter()
    store = open_bench_store(backend, path)
    start_ns = (end_s - DAYS * 86_400) * 10**9
    n_views = int(n_events / EVENTS_PER_VIEW)
    span_ns = DAYS * 86_400 * 10**9 // n_views
    views_per_batch = max(1, int(batch / EVENTS_PER_VIEW))
    rng = np.random.default_rng(13)
    pending: list[Any] = []
    events = 0
    gen_s = 0.0
    for first in range(0, n_views, views_per_batch):
        t = time.perf_counter()
        evs = _events(min(views_per_batch, n_views - first), first, start_ns, span_ns, rng)
        rollups: RumRollups = {}
        rollup_rum(PROJECT, evs, rollups)
        gen_s += time.perf_counter() - t
        for f in pending:  # one commit in flight while the next batch is made
            f.result(600)
        pending = [store.submit_rum(RumWrite(PROJECT, evs, rollups))]
        events += len(evs)
        if (first // views_per_batch) % 20 == 0:
            print(f"  {events:,} events", flush=True)
    for f in pending:
        f.result(600)
    fill_s = time.perf_counter() - t0
    t = time.perf_counter()
    if backend == "duckdb":
        store.upkeep(
            end_s * 10**9,
            retention_days=DAYS + 1,
            rollup_retention_days=90,
            compact_from_s=end_s - DAYS * 86_400,
            compact_to_s=end_s,
        )
        rollup_rows = store.read("SELECT count(*) FROM rum_rollup_1m")[0][0]
    else:
        for table in ("rum_events", "rum_rollup_1m"):
            store._writes.command(f"OPTIMIZE TABLE {{db}}.{table} FINAL")
        rollup_rows = store._reads.rows("SELECT count() FROM {db}.rum_rollup_1m")[0][0]
    compact_s = time.perf_counter() - t
    store.close()
    return {
        "events": events,
        "views": n_views,
        "rollup_rows": int(rollup_rows),
        "fill_s": fill_s,
        "generate_s": gen_s,
        "compact_s": compact_s,
        "end_s": end_s,
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


def time_queries(path: Path, end_s: int, runs: int, backend: str) -> list[dict[str, Any]]:
    from heron.server.model.rum import VITALS
    from heron.server.store.rum import RumFilters

    store = open_bench_store(backend, path)
    start_s = end_s - DAYS * 86_400
    f = RumFilters()
    reads: list[tuple[str, Callable[[], Any]]] = [
        ("rollup, no by, every metric", lambda: store.rum.rollup(PROJECT, start_s, end_s, filters=f)),
        ("rollup by page, LCP", lambda: store.rum.rollup(PROJECT, start_s, end_s, filters=f, metrics=["LCP"], by="page")),
        ("rollup, 1 h steps, vitals", lambda: store.rum.rollup(PROJECT, start_s, end_s, filters=f, metrics=list(VITALS), step_s=3600)),
    ]  # fmt: skip
    out = []
    if backend == "duckdb":
        base = _time(lambda: store.read("SELECT count(*) FROM rum_events")[0][0], runs)
    else:
        base = _time(lambda: store._reads.rows("SELECT count() FROM {db}.rum_events")[0][0], runs)
    out.append({"query": "baseline: SELECT count(*) FROM rum_events", "part": False, **base})
    for label, fn in reads:
        r = _time(fn, runs)
        rows = r.pop("result")
        r["result"] = {"rows": len(rows), "count": sum(row[5] for row in rows)}
        out.append({"query": label, "part": True, **r})
        print(f"  {label}: {r['median_ms']:.1f} ms", flush=True)

    def overview() -> int:
        return sum(len(fn()) for _, fn in reads)

    r = _time(overview, runs)
    r["result"] = {"rows": r.pop("result")}
    out.append({"query": "overview: the three back to back", "part": False, **r})
    print(f"  overview: {r['median_ms']:.1f} ms", flush=True)
    # Other pages' reads, for reference (no target): the last day's raw events.
    day_ns = (end_s - 86_400) * 10**9, end_s * 10**9
    last = store.rum.events(PROJECT, *day_ns, kinds=["view"], filters=f, limit=1)
    session, view = last[0][2], last[0][3]
    others: list[tuple[str, Callable[[], Any]]] = [
        ("choices, 7 d", lambda: [v for vs in store.rum.choices(PROJECT, start_s, end_s).values() for v in vs]),
        ("top slowest resources, last 24 h", lambda: store.rum.top(PROJECT, *day_ns, kind="resource", filters=f, limit=50)),
        ("sessions, last 24 h, 50 most recent", lambda: store.rum.sessions(PROJECT, *day_ns, filters=f, limit=50)),
        ("one session's timeline (any time)", lambda: store.rum.session(PROJECT, session, 500)),
        ("one page view's events, last 24 h", lambda: store.rum.events(PROJECT, *day_ns, kinds=["view", "vital", "resource", "error", "longtask"], filters=f, view_id=view, limit=200)),
    ]  # fmt: skip
    for label, fn in others:
        r = _time(fn, runs)
        r["result"] = {"rows": len(r.pop("result"))}
        out.append({"query": label, "part": False, **r})
        print(f"  {label}: {r['median_ms']:.1f} ms", flush=True)
    store.close()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    base = (
        Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="heron-bench-rum-"))
    )
    path = base / f"rum-{args.backend}-{args.events}" / "heron.duckdb"
    meta = path.with_name("fill.json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        print(f"reusing {path} ({info['events']:,} events)", flush=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        end_s = c.now_ns() // 10**9 // 3600 * 3600
        print(f"filling {path} through submit_rum", flush=True)
        info = fill(path, end_s, args.events, args.batch, args.backend)
        meta.write_text(json.dumps(info))
    size = sum(f.stat().st_size for f in path.parent.rglob("*") if f.is_file())
    timings = time_queries(path, info["end_s"], args.runs, args.backend)
    if not args.keep and not args.data_dir:
        shutil.rmtree(base, ignore_errors=True)
    parts_ms = sum(t["median_ms"] for t in timings if t["part"])
    together = next(t for t in timings if t["query"].startswith("overview"))
    met = parts_ms <= TARGET_MS and together["median_ms"] <= TARGET_MS
    rows = []
    for t in timings:
        res = t["result"]
        shape = f"{res['rows']:,} rows" if isinstance(res, dict) else f"{res:,}"
        rows.append([t["query"], shape, t["cold_ms"], t["median_ms"], t["p95_ms"]])
    c.print_table(
        f"RUM overview reads ({args.backend}) over {info['events']:,} events, "
        f"{info['rollup_rows']:,} rollup rows, 7 days (warm = median/p95 of {args.runs} runs)",
        ["read", "result", "cold ms", "warm median ms", "warm p95 ms"],
        rows,
    )
    print(
        f"overview: sum of medians {parts_ms:.1f} ms, back to back {together['median_ms']:.1f} ms "
        f"(target ≤ {TARGET_MS:.0f} ms: {'yes' if met else 'no'}); files {size / 2**20:.0f} MiB; "
        f"fill {info['fill_s']:.0f} s ({info['generate_s']:.0f} s making events), "
        f"{'upkeep (compaction)' if args.backend == 'duckdb' else 'OPTIMIZE FINAL'} "
        f"{info['compact_s']:.1f} s",
        flush=True,
    )
    doc = {
        "bench": "rum_query",
        "backend": args.backend,
        "machine": m,
        "args": vars(args),
        **{
            k: info[k]
            for k in ("events", "views", "rollup_rows", "fill_s", "generate_s", "compact_s")
        },
        "file_bytes": size,
        "timings": timings,
        "overview_sum_of_medians_ms": parts_ms,
        "target_ms": TARGET_MS,
        "target_met": met,
        "loadavg": os.getloadavg(),
    }
    c.write_json(
        args.out or ("rum_query" + ("" if args.backend == "duckdb" else "_clickhouse")), doc
    )
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--events", type=int, default=10_000_000, help="RUM events (default 10M)")
    p.add_argument("--batch", type=int, default=100_000, help="events per submit_rum write")
    p.add_argument("--runs", type=int, default=15, help="warm runs per read (default 15)")
    p.add_argument("--data-dir", help="keep/reuse the filled store here")
    p.add_argument("--keep", action="store_true", help="keep the temporary store")
    p.add_argument(
        "--backend",
        choices=("duckdb", "clickhouse"),
        default="duckdb",
        help="duckdb (default) or clickhouse (in-process chdb)",
    )
    p.add_argument("--out", help="JSON name under bench/out/ (default rum_query[_clickhouse])")
    run(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
