"""DuckDB and ClickHouse side by side: ingest spans/s, query latency and bytes per span.

Data: realistic traces from ``common.TraceGenerator`` (six services, HTTP server roots,
DB client spans with statements, a cache span, an HTTP client span; ~2% of traces fail
with an exception event, here one of ``N_BUGS`` distinct bugs so the issues list has
rows), start times uniform over the last ``--hours`` hours, seeded: the same spans on
every run and for every backend.

Ingest: the spans are generated in chunks (``--chunk`` spans, untimed) of OTLP protobuf
bodies of 512 spans (the OTel SDK exporter's batch), and every chunk is fed to each
backend in turn, the order alternating from chunk to chunk, so both see the same load
on a shared machine. Feeding does what ``POST /v1/traces`` does minus HTTP:
``decode_protobuf_batch`` → ``Pipeline.submit_spans`` (scrub, fingerprint, roll up, queue)
→ the error events of the spans' exception events → ``Pipeline.submit_events``, keeping
``--in-flight`` requests unacknowledged at most, and waits for every acknowledgement at the
end of the chunk. "spans/s" = acknowledged spans over the time spent feeding; "CPU
µs/span" = the process's CPU time over it (every thread: the other backend's background
work, e.g. ClickHouse merges, counts too — run one ``--backends`` for clean figures).

Then per backend: the analysis job over the whole range (query statistics for the
database page; timed), bytes on disk (DuckDB: the file after CHECKPOINT; ClickHouse: the
active parts of its database, right after ingest and again after the queries, once
background merges had time), and the public query functions (``heron.server.query``):
the first call ("cold") and the median/p95 of ``--runs`` more, alternating backends per
question. A backend that does not implement a subject yet (``NotImplementedError``)
shows "n/a" and the bench goes on.

ClickHouse runs in-process through chdb (one data directory per process, so one run
holds one ClickHouse store).

    python bench/storage_backends.py --spans 1000000
    python bench/storage_backends.py --spans 10000000 --backends duckdb,clickhouse
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

PROJECT = 1
BODY_SPANS = 512  # the OTel SDK's BatchSpanProcessor exports 512 spans per request
BACKENDS = ("duckdb", "clickhouse")
# Issue 10's targets on ClickHouse, at 10M spans.
TARGET_SPANS = 10_000_000
TARGETS_MS = {"endpoint table": 100.0, "trace by id": 50.0}
TARGET_BYTES_PER_SPAN = 40.0
SAMPLE_TRACES = 200

# ----------------------------------------------------------------------- data

N_BUGS = 40
_EXC_TYPES = (
    ("psycopg.errors.QueryCanceled", "canceling statement due to statement timeout"),
    ("KeyError", "'currency'"),
    ("ValueError", "invalid literal for int() with base 10: 'abc'"),
    ("TimeoutError", "timed out waiting for the payment provider"),
    ("redis.exceptions.ConnectionError", "Error 111 connecting to redis.shop.internal:6379"),
    ("AttributeError", "'NoneType' object has no attribute 'id'"),
    ("decimal.InvalidOperation", "[<class 'decimal.ConversionSyntax'>]"),
    ("httpx.ReadTimeout", "The read operation timed out"),
)
_MODULES = ("views", "handlers", "billing", "cart", "repository")
_FUNCS = ("handler", "checkout", "load_user", "charge", "render", "save", "lookup")


def bug_attrs(service: str, bug: int) -> dict[str, Any]:
    """The exception event of bug number ``bug``: its own type, module, function and line
    (so grouping makes one issue per bug and service)."""
    exc_type, message = _EXC_TYPES[bug % len(_EXC_TYPES)]
    module, func = _MODULES[bug % len(_MODULES)], _FUNCS[bug % len(_FUNCS)]
    line = 20 + 7 * bug
    return {
        "exception.type": exc_type,
        "exception.message": message,
        "exception.stacktrace": "Traceback (most recent call last):\n"
        f'  File "/app/{service}/{module}.py", line {line}, in {func}\n'
        f"    result = {func}(request)\n"
        f"{exc_type}: {message}",
    }


class VariedErrorsGenerator(c.TraceGenerator):
    """``common.TraceGenerator`` whose failing traces raise one of ``N_BUGS`` bugs."""

    def trace(self, service: str, start_ns: int) -> list[c.SpanSpec]:
        spans = super().trace(service, start_ns)
        root = spans[0]
        if root.events:
            t, name, _ = root.events[0]
            root.events[0] = (t, name, bug_attrs(service, self.rng.randrange(N_BUGS)))
        return spans


def make_bodies(gen: c.TraceGenerator, n_spans: int, lo_ns: int, hi_ns: int) -> list[bytes]:
    """Serialised ``ExportTraceServiceRequest`` bodies of 512 spans (the last may be
    smaller) totalling ``n_spans``."""
    bodies = []
    while n_spans > 0:
        n = min(BODY_SPANS, n_spans)
        bodies.append(c.build_request(gen, n, lo_ns, hi_ns).SerializeToString())
        n_spans -= n
    return bodies


def sample_trace_ids(bodies: list[bytes], k: int) -> list[bytes]:
    """The first trace id of ``k`` bodies spread over the list (complete traces: a body's
    first trace is never cut)."""
    from heron.server.ingest.otlp import decode_protobuf_batch
    from heron.server.model.span import SPAN_COLUMNS

    col = SPAN_COLUMNS.index("trace_id")
    step = max(1, len(bodies) // max(k, 1))
    return [decode_protobuf_batch(b).spans.rows[0][col] for b in bodies[::step][:k]]


# ----------------------------------------------------------------------- stores


def open_backend(kind: str, work: Path, args: argparse.Namespace) -> Any:
    """An empty, started store of ``kind`` under ``work``."""
    if kind == "duckdb":
        from heron.server.store.duckdb_store import DuckDBStore

        return DuckDBStore(work / "duckdb" / "heron.duckdb").start()
    from heron.server.store.clickhouse.store import ClickHouseStore

    (work / "clickhouse").mkdir(parents=True, exist_ok=True)
    return ClickHouseStore(
        f"chdb://{work / 'chdb'}",
        database="heron_bench",
        retention_days=args.retention_days,
        rollup_retention_days=args.retention_days,
        state_path=work / "clickhouse" / "state.duckdb",
    )


class Feeder:
    """One backend's ingest path: the pipeline in front of its store, and the figures."""

    def __init__(self, kind: str, store: Any, in_flight: int) -> None:
        from heron.server.ingest.pipeline import Pipeline

        self.kind = kind
        self.store = store
        self.pipeline = Pipeline(store)
        self.in_flight = in_flight
        self.spans = 0
        self.events: int | None = 0  # None: the backend does not take events yet
        self.seconds = 0.0
        self.cpu_s = 0.0

    def feed(self, bodies: list[bytes]) -> None:
        """Every body as ``POST /v1/traces`` would take it; returns once all are acked."""
        from heron.server.ingest.otlp import decode_protobuf_batch

        pending: deque[tuple[str, Future[int]]] = deque()
        cpu0, t0 = time.process_time(), time.perf_counter()
        for body in bodies:
            spans = decode_protobuf_batch(body).spans
            pending.append(("spans", self._submit(pending, self.pipeline.submit_spans, spans)))
            events = self._events(pending, spans)
            if events is not None:
                pending.append(("events", events))
            while len(pending) > self.in_flight:
                self._ack(*pending.popleft())
        while pending:
            self._ack(*pending.popleft())
        self.seconds += time.perf_counter() - t0
        self.cpu_s += time.process_time() - cpu0

    def _submit(
        self, pending: deque[tuple[str, Future[int]]], submit: Callable[..., Future[int]], *a: Any
    ) -> Future[int]:
        from heron.server.store.base import QueueFull

        while True:
            try:
                return submit(PROJECT, *a)
            except QueueFull:  # as a client retries after a 503: wait for the oldest
                if not pending:
                    raise
                self._ack(*pending.popleft())

    def _events(self, pending: deque[tuple[str, Future[int]]], spans: Any) -> Future[int] | None:
        from heron.server.ingest.span_errors import events_from_spans

        events = events_from_spans(spans, time.time_ns())
        if not events or self.events is None:
            return None
        try:
            return self._submit(pending, self.pipeline.submit_events, events, [])
        except NotImplementedError:
            self.events = None
            return None

    def _ack(self, what: str, fut: Future[int]) -> None:
        n = fut.result(timeout=600)
        if what == "spans":
            self.spans += n
        elif self.events is not None:
            self.events += n

    def figures(self) -> dict[str, Any]:
        return {
            "backend": self.kind,
            "spans": self.spans,
            "error_events": self.events,
            "seconds": self.seconds,
            "spans_per_s": self.spans / self.seconds if self.seconds else 0.0,
            "cpu_us_per_span": 1e6 * self.cpu_s / max(self.spans, 1),
        }


def ingest(feeders: dict[str, Feeder], args: argparse.Namespace) -> dict[str, Any]:
    """Generate ``--spans`` spans chunk by chunk and feed every chunk to every backend."""
    gen = VariedErrorsGenerator(seed=args.seed)
    hi = c.now_ns()
    lo = hi - int(args.hours * 3600) * c.NS
    chunks = -(-args.spans // args.chunk)
    per_chunk = -(-SAMPLE_TRACES // chunks)
    made, gen_s, trace_ids = 0, 0.0, []
    for i in range(chunks):
        t0 = time.perf_counter()
        bodies = make_bodies(gen, min(args.chunk, args.spans - made), lo, hi)
        trace_ids += sample_trace_ids(bodies, per_chunk)
        gen_s += time.perf_counter() - t0
        order = list(feeders.values()) if i % 2 == 0 else list(feeders.values())[::-1]
        for f in order:
            f.feed(bodies)
        made += min(args.chunk, args.spans - made)
        rates = ", ".join(f"{f.kind} {f.spans / max(f.seconds, 1e-9):,.0f}/s" for f in order)
        print(f"    fed {made:,} / {args.spans:,} spans ({rates})", flush=True)
    return {"lo_ns": lo, "hi_ns": hi, "generate_s": gen_s, "trace_ids": trace_ids[:SAMPLE_TRACES]}


def analyze(store: Any, lo_ns: int) -> float | str | None:
    """The analysis job (query statistics, N+1) over everything stored: its seconds,
    None when the backend does not implement it yet, or why it failed (a query over the
    store's time limit, say): the bench goes on without its figures."""
    from heron.server.jobs import analyze_recent
    from heron.server.store.base import QueryTimeout, StorageUnavailable

    now = c.now_ns()
    t0 = time.perf_counter()
    try:
        analyze_recent(store, now, window_s=(now - lo_ns) // c.NS + 120)
    except NotImplementedError:
        return None
    except (QueryTimeout, StorageUnavailable) as e:
        print(f"    analysis failed: {type(e).__name__}: {e}", flush=True)
        return f"failed ({type(e).__name__})"
    return time.perf_counter() - t0


# ----------------------------------------------------------------------- queries


def questions(store: Any, tr: Any, busiest: str, ids: list[bytes]) -> dict[str, Callable[[], int]]:
    """The questions timed, each returning the size of its answer (rows, spans)."""
    from heron.server import query

    cycle = iter(ids * 1000)

    def trace() -> int:
        t = query.get_trace(store, PROJECT, next(cycle))
        if t is None or t.span_count < 2:
            raise RuntimeError("trace not found: the sample and the store disagree")
        return int(t.span_count)

    return {
        "service table": lambda: len(query.service_table(store, PROJECT, tr)),
        "endpoint table": lambda: len(query.endpoint_table(store, PROJECT, tr, busiest)),
        "trace by id": trace,
        "trace search": lambda: len(
            query.search_traces(store, PROJECT, tr, query.TraceQuery(service=busiest))
        ),
        "trace search, errors ≥ 20 ms": lambda: len(
            query.search_traces(
                store, PROJECT, tr, query.TraceQuery(status="error", min_duration_ms=20)
            )
        ),
        "top DB queries": lambda: len(query.top_queries(store, PROJECT, tr)),
        "issues list": lambda: len(query.list_issues(store, PROJECT, tr)),
    }


def time_question(fn: Callable[[], int], runs: int) -> dict[str, Any]:
    """Cold call, then ``runs`` warm ones; "n/a" when the backend lacks the subject, the
    error's name when a call fails (e.g. ``QueryTimeout``), and the bench goes on."""
    from heron.server.store.base import QueryTimeout, StorageUnavailable

    samples = []
    try:
        t0 = time.perf_counter()
        rows = fn()
        cold = time.perf_counter() - t0
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    except NotImplementedError as e:
        return {"rows": None, "na": "n/a", "error": str(e)}
    except (QueryTimeout, StorageUnavailable) as e:
        return {"rows": None, "na": type(e).__name__, "error": str(e)}
    return {"rows": rows, "cold_ms": cold * 1000, **c.summary_ms(samples)}


def time_queries(
    stores: dict[str, Any], lo_ns: int, hi_ns: int, ids: list[bytes], runs: int
) -> list[dict[str, Any]]:
    """Every question on every backend, alternating backends question by question."""
    from heron.server import query

    tr = query.TimeRange(lo_ns, hi_ns + 60 * c.NS)
    first = next(iter(stores.values()))
    busiest = max(query.service_table(first, PROJECT, tr), key=lambda r: r.requests).service
    qs = {kind: questions(store, tr, busiest, ids) for kind, store in stores.items()}
    out = []
    for name in next(iter(qs.values())):
        for kind in stores:
            out.append({"query": name, "backend": kind, **time_question(qs[kind][name], runs)})
    return out


# ----------------------------------------------------------------------- report


def _ms(t: dict[str, Any], key: str) -> Any:
    return t["na"] if t.get("na") else t[key]


def _target(t: dict[str, Any], spans: int) -> str:
    target = TARGETS_MS.get(t["query"])
    if target is None or t["backend"] != "clickhouse":
        return ""
    if t.get("na"):
        return f"≤ {target:.0f} ms: {t['na']}"
    met = "yes" if t["median_ms"] <= target else "no"
    return f"≤ {target:.0f} ms: {met}" + ("" if spans >= TARGET_SPANS else " (target at 10M)")


def report(doc: dict[str, Any], args: argparse.Namespace) -> None:
    spans = args.spans
    c.print_table(
        f"Ingest through the pipeline: {spans:,} spans, {BODY_SPANS}-span bodies, "
        f"{args.in_flight} in flight",
        ["backend", "spans acked", "s", "spans/s", "CPU µs/span", "error events", "analysis s"],
        [
            [
                r["backend"],
                r["spans"],
                r["seconds"],
                r["spans_per_s"],
                r["cpu_us_per_span"],
                "n/a" if r["error_events"] is None else r["error_events"],
                "n/a" if r["analysis_s"] is None else r["analysis_s"],  # or why it failed
            ]
            for r in doc["ingest"]
        ],
    )
    c.print_table(
        f"Query latency ({args.hours:g} h window; warm = median/p95 of {args.runs} runs)",
        ["spans", "query", "backend", "rows", "cold ms", "median ms", "p95 ms", "target"],
        [
            [
                spans,
                t["query"],
                t["backend"],
                "n/a" if t["rows"] is None else t["rows"],
                _ms(t, "cold_ms"),
                _ms(t, "median_ms"),
                _ms(t, "p95_ms"),
                _target(t, spans),
            ]
            for t in doc["queries"]
        ],
    )
    c.print_table(
        "Bytes on disk (DuckDB: file after CHECKPOINT; ClickHouse: active parts). "
        "At end: after the analysis job and the queries (ClickHouse merges had time)",
        ["backend", "MiB at end", "B/span after ingest", "B/span at end", "target"],
        [
            [
                d["backend"],
                d["bytes"] / 2**20,
                d["bytes_after_ingest"] / d["spans"],
                d["bytes"] / d["spans"],
                ""
                if d["backend"] != "clickhouse"
                else f"≤ {TARGET_BYTES_PER_SPAN:.0f}: "
                + ("yes" if d["bytes"] / d["spans"] <= TARGET_BYTES_PER_SPAN else "no"),
            ]
            for d in doc["disk"]
        ],
    )
    for d in doc["disk"]:
        parts = ", ".join(f"{k} {v / d['spans']:.1f}" for k, v in sorted(d["by_part"].items()))
        print(f"{d['backend']} B/span by part: {parts}")
    print(f"\nload average before / after: {doc['loadavg_before']} / {doc['loadavg_after']}")


# ----------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    try:
        import chdb

        m["chdb"] = chdb.__version__
    except ImportError:
        m["chdb"] = None
    print(f"machine: {c.machine_line(m)}, chdb {m['chdb']}", flush=True)
    loadavg_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="heron-bench-backends-", dir=args.work_dir))
    stores = {kind: open_backend(kind, work, args) for kind in args.backends}
    try:
        feeders = {kind: Feeder(kind, s, args.in_flight) for kind, s in stores.items()}
        print(f"feeding {args.spans:,} spans to {', '.join(stores)} ({work})", flush=True)
        data = ingest(feeders, args)
        ingest_rows, disk = [], []
        for kind, store in stores.items():
            after_ingest = store.disk_bytes()
            row = feeders[kind].figures()
            row["analysis_s"] = analyze(store, data["lo_ns"])
            ingest_rows.append(row)
            disk.append(
                {"backend": kind, "spans": row["spans"], "by_part_after_ingest": after_ingest}
            )
        queries = time_queries(stores, data["lo_ns"], data["hi_ns"], data["trace_ids"], args.runs)
        for d in disk:
            d["by_part"] = stores[d["backend"]].disk_bytes()
            d["bytes_after_ingest"] = sum(d["by_part_after_ingest"].values())
            d["bytes"] = sum(d["by_part"].values())
    finally:
        for store in stores.values():
            store.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    doc = {
        "bench": "storage_backends",
        "machine": m,
        "args": vars(args),
        "generate_s": data["generate_s"],
        "ingest": ingest_rows,
        "queries": queries,
        "disk": disk,
        "targets": {
            "at_spans": TARGET_SPANS,
            "clickhouse_ms": TARGETS_MS,
            "clickhouse_bytes_per_span": TARGET_BYTES_PER_SPAN,
        },
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
    }
    report(doc, args)
    c.write_json(args.out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--spans", type=int, default=1_000_000, help="spans (default 1,000,000)")
    p.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        type=lambda s: [b for b in s.split(",") if b],
        help="comma-separated, of duckdb,clickhouse (default both)",
    )
    p.add_argument("--runs", type=int, default=20, help="warm runs per query (default 20)")
    p.add_argument("--hours", type=float, default=24.0, help="time spread of the spans (24)")
    p.add_argument(
        "--chunk",
        type=int,
        default=200_000,
        help="spans generated at a time, then fed to each backend (default 200,000)",
    )
    p.add_argument("--in-flight", type=int, default=16, help="unacknowledged requests at most (16)")
    p.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    p.add_argument(
        "--retention-days",
        type=int,
        default=30,
        help="ClickHouse TTL; data is at most --hours old (default 30)",
    )
    p.add_argument("--work-dir", help="where the stores go (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the stores")
    p.add_argument(
        "--out", default="storage_backends", help="JSON name under bench/out/ (storage_backends)"
    )
    args = p.parse_args(argv)
    unknown = set(args.backends) - set(BACKENDS)
    if unknown or not args.backends:
        p.error(f"--backends: choose from {', '.join(BACKENDS)}")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
