"""UI benchmark: server time of the web UI's pages and of the queries behind them.

Fills a DuckDB store with ``--spans`` realistic spans (default 10M) spread over the last
``--hours`` (default 24), in time order as live ingest would write them, through the
ingest path minus HTTP (OTLP protobuf → ``decode_protobuf_batch`` → ``submit_spans``).
Traces are bench/common.py's (~10 spans: HTTP server span, DB and cache client spans, an
outgoing HTTP call), extended so the outgoing call reaches the peer service: the peer
records a server span and a DB span as its children, which gives the service map edges.

Then, in-process (httpx over ASGI, the real app, signed in), it times each page, and
separately each query function the pages call ("data calls"), for the 1 h and 24 h
ranges. Server time = request in → last body byte out, no network. Target: ≤ 300 ms.

    python bench/ui_pages.py                      # build (or reuse) the store, measure
    python bench/ui_pages.py --spans 1000000      # smaller store
    python bench/ui_pages.py --rebuild            # regenerate the store
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

TARGET_MS = 300.0
CHUNK_S = 60  # spans of each minute are written together, minutes in order
PASSWORD = "bench-password-123"
HOUR_NS = 3600 * c.NS


# ---------------------------------------------------------------------- data


class CrossServiceGenerator(c.TraceGenerator):
    """Traces whose outgoing HTTP call is received by the peer service (server + DB span)."""

    def trace_with_services(self, service: str, start_ns: int) -> list[tuple[str, c.SpanSpec]]:
        spans = self.trace(service, start_ns)
        out = [(service, s) for s in spans]
        call = spans[-1]  # the outgoing POST to a peer (see TraceGenerator.trace)
        peer = call.attrs["server.address"].split(".", 1)[0]
        info = c.SERVICES[peer]
        route = "/internal/v1/" + peer
        server_id = self._id(8)
        dur = max(call.end_ns - call.start_ns - 200_000, 1000)
        out.append(
            (
                peer,
                c.SpanSpec(
                    call.trace_id,
                    server_id,
                    call.span_id,
                    f"POST {route}",
                    2,
                    call.start_ns + 100_000,
                    call.start_ns + 100_000 + dur,
                    0,
                    "",
                    {
                        "http.request.method": "POST",
                        "http.route": route,
                        "http.response.status_code": 200,
                        "url.path": route,
                        "server.port": 8080,
                    },
                    [],
                ),
            )
        )
        out.append(
            (
                peer,
                c.SpanSpec(
                    call.trace_id,
                    self._id(8),
                    server_id,
                    f"SELECT {info['dbname']}.items",
                    3,
                    call.start_ns + 150_000,
                    call.start_ns + 150_000 + dur // 2,
                    0,
                    "",
                    {
                        "db.system.name": info["db"],
                        "db.query.text": "SELECT * FROM items WHERE id = $1",
                    },
                    [],
                ),
            )
        )
        return out


def _body(specs: list[tuple[str, int, c.SpanSpec]]) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    by_resource: dict[tuple[str, int], list[c.SpanSpec]] = {}
    for service, host, spec in specs:
        by_resource.setdefault((service, host), []).append(spec)
    req = ExportTraceServiceRequest()
    for (service, host), group in by_resource.items():
        rs = req.resource_spans.add()
        c._add_attrs(rs.resource.attributes, c.resource_attrs(service, host))
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.flask"
        for sp in group:
            s = ss.spans.add()
            s.trace_id, s.span_id = sp.trace_id, sp.span_id
            if sp.parent_id:
                s.parent_span_id = sp.parent_id
            s.name, s.kind = sp.name, sp.kind
            s.start_time_unix_nano, s.end_time_unix_nano = sp.start_ns, sp.end_ns
            s.status.code = sp.status
            if sp.status_message:
                s.status.message = sp.status_message
            c._add_attrs(s.attributes, sp.attrs)
            for t, name, attrs in sp.events:
                e = s.events.add()
                e.time_unix_nano, e.name = t, name
                c._add_attrs(e.attributes, attrs)
    return req.SerializeToString()


def _minute_bodies(job: tuple[int, int, int, int]) -> list[bytes]:
    """OTLP bodies (~2,000 spans each) of one minute's traces, ``n_spans`` in all."""
    minute, start_ns, n_spans, seed = job
    gen = CrossServiceGenerator(seed=seed * 1_000_003 + minute)
    services = list(c.SERVICES)
    bodies: list[bytes] = []
    batch: list[tuple[str, int, c.SpanSpec]] = []
    made = 0
    while made < n_spans:
        service = gen.rng.choice(services)
        host = gen.rng.randrange(c.HOSTS_PER_SERVICE)
        t = start_ns + gen.rng.randrange(CHUNK_S * c.NS)
        spans = gen.trace_with_services(service, t)
        batch.extend((svc, host, spec) for svc, spec in spans)
        made += len(spans)
        if len(batch) >= 2000:
            bodies.append(_body(batch))
            batch = []
    if batch:
        bodies.append(_body(batch))
    return bodies


def fill(path: Path, n_spans: int, hours: float, end_ns: int, seed: int = 1) -> dict[str, Any]:
    from heron.server.ingest.otlp import decode_protobuf_batch
    from heron.server.ingest.pipeline import Pipeline
    from heron.server.store.duckdb_store import DuckDBStore

    minutes = int(hours * 60)
    per_minute = max(n_spans // minutes, 1)
    start = (end_ns - minutes * 60 * c.NS) // (60 * c.NS) * 60 * c.NS
    jobs = [(m, start + m * 60 * c.NS, per_minute, seed) for m in range(minutes)]
    store = DuckDBStore(path, queue_max_spans=2_000_000).start()
    pipeline = Pipeline(store)
    t0 = time.perf_counter()
    n, futures = 0, []
    with mp.Pool(max(1, (mp.cpu_count() or 2) - 1)) as pool:
        for i, bodies in enumerate(pool.imap(_minute_bodies, jobs, chunksize=4)):
            for body in bodies:
                spans = decode_protobuf_batch(body).spans
                n += len(spans)
                futures.append(pipeline.submit_spans(1, spans))
            if len(futures) > 64:
                for f in futures:
                    f.result()
                futures.clear()
            if i % 60 == 59:
                rate = n / (time.perf_counter() - t0)
                print(f"  {i + 1}/{minutes} minutes, {n:,} spans ({rate:,.0f}/s)", flush=True)
    for f in futures:
        f.result()
    store.close()
    return {"spans": n, "fill_s": round(time.perf_counter() - t0, 1)}


# ---------------------------------------------------------------------- timing


def _time(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()  # warm-up: first use of each query plan and of the OS page cache
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return c.summary_ms(samples)


class App:
    """The real app, in-process, signed in; ``get(path)`` returns the response."""

    def __init__(self, data_dir: Path, now_ns: int) -> None:
        import anyio.from_thread
        import httpx

        from heron.server.app import create_app
        from heron.server.config import Config

        config = Config(data_dir=str(data_dir), admin_password=PASSWORD)
        self.app = create_app(config, clock=lambda: now_ns, maintenance_interval_s=10**9)
        self.ctx = self.app.state.ctx
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self.portal = self._portal_cm.__enter__()
        self._life = self.portal.wrap_async_context_manager(
            self.app.router.lifespan_context(self.app)
        )
        self._life.__enter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://bench",
            headers={"accept": "text/html", "accept-encoding": "gzip"},
        )
        self._sign_in()

    def _sign_in(self) -> None:
        page = self.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page
        r = self.portal.call(
            lambda: self.client.post(
                "/login",
                data={"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)},
            )
        )
        assert r.status_code == 303, r.text

    def get(self, path: str) -> Any:
        r = self.portal.call(lambda: self.client.get(path))
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        return r

    def close(self) -> None:
        self.portal.call(self.client.aclose)
        self._life.__exit__(None, None, None)
        self._portal_cm.__exit__(None, None, None)


def pick_examples(store: Any, now_ns: int) -> dict[str, str]:
    """A busy service and endpoint, and a typical trace, from the data itself."""
    service, endpoint = store.read(
        "SELECT service, endpoint FROM rollup_1m GROUP BY ALL ORDER BY sum(count) DESC LIMIT 1"
    )[0]
    trace = store.read(
        "SELECT trace_id FROM spans WHERE start_ns >= ? AND parent_id = 0 LIMIT 1",
        [now_ns - HOUR_NS],
    )[0][0]
    return {"service": service, "endpoint": endpoint, "trace": trace.hex()}


def page_cases(ex: dict[str, str]) -> list[tuple[str, str]]:
    from urllib.parse import urlencode

    svc = urlencode({"service": ex["service"]})
    ep = urlencode({"service": ex["service"], "endpoint": ex["endpoint"]})
    return [
        ("overview", "/?"),
        ("service", f"/service?{svc}&"),
        ("endpoint", f"/endpoint?{ep}&"),
        ("trace search", "/traces?"),
        ("trace search (service, ≥ 100 ms, error)", f"/traces?{svc}&min_ms=100&status=error&"),
        ("service map", "/map?"),
    ]


def data_calls(
    ctx: Any, ex: dict[str, str], range_s: int, now_ns: int
) -> list[tuple[str, str, Callable[[], Any]]]:
    from heron.server import query
    from heron.server.query import TimeRange

    s, p = ctx.store, 1
    tr = TimeRange(now_ns - range_s * c.NS, now_ns)
    svc, ep = ex["service"], ex["endpoint"]
    step = query.chart_step_s(tr, 120)
    return [
        ("overview", "service_table", lambda: query.service_table(s, p, tr)),
        ("overview", "service_sparklines", lambda: query.service_sparklines(s, p, tr)),
        ("all pages", "list_environments", lambda: query.list_environments(s, p, tr)),
        ("service", "endpoint_table", lambda: query.endpoint_table(s, p, tr, svc)),
        (
            "service",
            "service_timeseries",
            lambda: query.service_timeseries(s, p, tr, svc, step_s=step),
        ),
        ("service", "list_releases", lambda: query.list_releases(s, p, tr, svc)),
        (
            "endpoint",
            "service_timeseries (endpoint)",
            lambda: query.service_timeseries(s, p, tr, svc, endpoint=ep, step_s=step),
        ),
        ("endpoint", "latency_histogram", lambda: query.latency_histogram(s, p, tr, svc, ep)),
        ("endpoint", "endpoint_traces", lambda: query.endpoint_traces(s, p, tr, svc, ep)),
        ("trace view", "get_trace", lambda: query.get_trace(s, p, bytes.fromhex(ex["trace"]))),
        ("service map", "service_map", lambda: query.service_map(s, p, tr)),
    ]


def measure(data_dir: Path, now_ns: int, runs: int) -> dict[str, Any]:
    app = App(data_dir, now_ns)
    try:
        ex = pick_examples(app.ctx.store, now_ns)
        print(f"examples: {ex}", flush=True)
        pages, calls = [], []
        for label, range_s in (("1h", 3600), ("24h", 86_400)):
            for name, url in page_cases(ex):
                full = url + ("" if label == "1h" else "range=24h")
                size = len(app.get(full).content)
                t = _time(lambda full=full: app.get(full), runs)
                pages.append({"page": name, "range": label, "url": full, "bytes": size, **t})
                print(f"  {label:>4} {name:<44} {t['median_ms']:8.1f} ms", flush=True)
            for page, fn_name, fn in data_calls(app.ctx, ex, range_s, now_ns):
                t = _time(fn, runs)
                calls.append({"page": page, "call": fn_name, "range": label, **t})
                print(f"  {label:>4} {fn_name:<44} {t['median_ms']:8.1f} ms", flush=True)
        trace_url = f"/traces/{ex['trace']}"
        t = _time(lambda: app.get(trace_url), runs)
        pages.append({"page": "trace view", "range": "-", "url": trace_url, "bytes": 0, **t})
        return {"examples": ex, "pages": pages, "calls": calls}
    finally:
        app.close()


def report(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "# UI pages benchmark",
        "",
        f"Store: {doc['spans']:,} spans over {doc['hours']} h "
        f"({doc['rollup_rows']:,} rollup rows, {doc['file_mb']:,} MB). "
        f"Machine: {c.machine_line(m)}. Median (p95) of {doc['runs']} runs after a warm-up; "
        "server time in-process (signed in, no network). Target ≤ 300 ms.",
        "",
    ]
    rows = [
        (
            p["page"],
            p["range"],
            f"{p['median_ms']:.0f}",
            f"{p['p95_ms']:.0f}",
            "yes" if p["p95_ms"] <= TARGET_MS else "**no**",
        )
        for p in doc["pages"]
    ]
    lines.append(
        c.print_table(
            "Pages (full HTML response)", ["page", "range", "median ms", "p95 ms", "≤ 300 ms"], rows
        )
    )
    rows = [
        (x["page"], x["call"], x["range"], f"{x['median_ms']:.1f}", f"{x['p95_ms']:.1f}")
        for x in doc["calls"]
    ]
    lines.append(
        c.print_table(
            "Data calls (query functions behind the pages)",
            ["page", "call", "range", "median ms", "p95 ms"],
            rows,
        )
    )
    return "\n".join(lines) + "\n"


def db_facts(path: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        spans = con.execute("SELECT count(*) FROM spans").fetchone()[0]
        rollups = con.execute("SELECT count(*) FROM rollup_1m").fetchone()[0]
        end = con.execute("SELECT max(start_ns) FROM spans").fetchone()[0]
    finally:
        con.close()
    return {
        "spans": spans,
        "rollup_rows": rollups,
        "end_ns": end,
        "file_mb": round(path.stat().st_size / 2**20),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument(
        "--data-dir", type=Path, default=None, help="store location (default bench/out/ui-<spans>)"
    )
    ap.add_argument("--rebuild", action="store_true", help="regenerate the store")
    args = ap.parse_args(argv)
    data_dir = args.data_dir or c.OUT_DIR / f"ui-{args.spans}"
    db = data_dir / "heron.duckdb"
    if args.rebuild and data_dir.exists():
        shutil.rmtree(data_dir)
    if not db.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        print(f"filling {db} with {args.spans:,} spans over {args.hours} h ...", flush=True)
        print(fill(db, args.spans, args.hours, c.now_ns()), flush=True)
    facts = db_facts(db)
    now_ns = facts["end_ns"] + c.NS  # the store's "now": just after its newest span
    doc = {
        "machine": c.machine(),
        "hours": args.hours,
        "runs": args.runs,
        **facts,
        **measure(data_dir, now_ns, args.runs),
    }
    text = report(doc)
    (Path(__file__).resolve().parent / "ui_pages.md").write_text(text)
    c.write_json("ui_pages", doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
