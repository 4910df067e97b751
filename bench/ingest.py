"""Ingest benchmark: spans/s acknowledged by ``heron serve`` for OTLP protobuf requests.

Starts ``heron serve`` as a subprocess on 127.0.0.1 (fresh data directory), then N client
processes POST pre-serialised 512-span ``ExportTraceServiceRequest`` bodies over
keep-alive connections for a fixed time. Every request gets fresh trace ids (the bodies'
trace-id prefix is swapped per request). Reports acknowledged spans/s, request latency,
server CPU (psutil) and peak RSS (VmHWM), client CPU, and two same-run baselines:

* ``serialise``: one core building the request bodies (what an SDK pays per span);
* ``empty``: the request rate for empty bodies (auth + HTTP only, no decoding/storage),
  so ratios stay meaningful on a noisy machine.

After each run the server is stopped and the DuckDB file is opened to check that every
acknowledged span is stored (ack only after commit).

``--scrub-off`` adds, interleaved with each run, the same server with span scrubbing
switched off (a bench-only patch applied before ``heron serve`` starts; there is no
setting for it) and prints the throughput ratio scrubbed/unscrubbed. The in-process table
always has the scrubber's own rate, warm (the bodies' attributes seen before) and cold (a
new scrubber per request), and decode + scrub + columns against decode + columns.

    python bench/ingest.py --clients 4,8,32 --duration 20
    python bench/ingest.py --clients 8 --duration 10 --scrub-off
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

KEY = "hk_bench_ingest_key_0123456789"
# Runs heron's CLI with span scrubbing switched off: the bench's "no-scrub" server only.
NO_SCRUB = (
    "import sys; from heron.server.analyze.span_scrub import SpanScrubber; "
    "SpanScrubber.spans = lambda self, spans: spans; "
    "from heron.cli import main; sys.exit(main())"
)
TOKEN = "ht_bench_api_token_0123456789abcdef"
PREFIX_LEN = 6


# ----------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``heron serve`` in a subprocess with its own data directory."""

    def __init__(
        self,
        workdir: Path,
        env_extra: dict[str, str] | None = None,
        src: str | None = None,
        *,
        scrub: bool = True,
    ) -> None:
        self.entry = ["-m", "heron"] if scrub else ["-c", NO_SCRUB]
        self.data_dir = workdir / "heron-data"
        self.port = free_port()
        self.log_path = workdir / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
        env.update(
            HERON_INGEST_KEY=KEY,
            HERON_API_TOKEN=TOKEN,
            HERON_LOG_LEVEL="warning",
            **(env_extra or {}),
        )
        if src:  # another source tree of heron (e.g. a baseline) ahead of the installed one
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *self.entry,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"heron serve exited:\n{self.log_path.read_text()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("heron serve did not become healthy")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def db_path(self) -> Path:
        return self.data_dir / "heron.duckdb"


class ProcessMonitor:
    """Samples a process's RSS; reads CPU times and the kernel's peak-RSS mark."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def cpu(self) -> float:
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def thread_cpu(self) -> dict[int, float]:
        """CPU seconds per OS thread (the main thread's id is the pid)."""
        return {t.id: t.user_time + t.system_time for t in self.proc.threads()}

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
            except Exception:
                return

    def start(self) -> ProcessMonitor:
        self._thread.start()
        return self

    def stop(self) -> int:
        """Peak RSS in bytes: VmHWM where the kernel has it, else the sampled maximum."""
        self._stop.set()
        self._thread.join()
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return max(self.peak_rss, int(line.split()[1]) * 1024)
        except OSError:
            pass
        return self.peak_rss


# ----------------------------------------------------------------------- clients


def build_bodies(client_idx: int, n_bodies: int, spans: int) -> list[tuple[bytes, bytes]]:
    """(body, its trace-id prefix) pairs; times spread over the last minute."""
    out = []
    now = c.now_ns()
    for j in range(n_bodies):
        prefix = os.urandom(PREFIX_LEN)
        gen = c.TraceGenerator(seed=client_idx * 10_000 + j, trace_prefix=prefix)
        body = c.build_request(gen, spans, now - 60 * c.NS, now).SerializeToString()
        out.append((body, prefix))
    return out


def fresh_body(template: tuple[bytes, bytes], client_idx: int, seq: int) -> bytes:
    body, prefix = template
    new = (0x80 | client_idx).to_bytes(1, "big") + seq.to_bytes(PREFIX_LEN - 1, "big")
    return body.replace(prefix, new)


def client_main(
    idx: int, port: int, args: dict[str, Any], ready: Any, go: Any, results: Any
) -> None:
    """One client: a keep-alive connection posting bodies until the deadline."""
    if args["empty"]:
        templates = [(b"", b"")]
        spans = 0
    else:
        templates = build_bodies(idx, args["bodies"], args["spans"])
        spans = args["spans"]
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY}"}
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
    while time.time() < end_at:
        body = fresh_body(templates[seq % len(templates)], idx, seq) if spans else b""
        seq += 1
        t0 = time.perf_counter()
        conn.request("POST", "/v1/traces", body=body, headers=headers)
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
    finished = time.time()
    results.put(
        {
            "client": idx,
            "ok_requests": ok,
            "ok_spans": ok * spans,
            "failed": failed,
            "unavailable": unavailable,
            "cpu_s": time.process_time() - cpu0,
            "finished": finished,
            "latencies": latencies,
        }
    )
    conn.close()


def run_load(
    port: int,
    n_clients: int,
    duration: float,
    *,
    spans: int,
    bodies: int,
    empty: bool,
    server_mon: ProcessMonitor | None,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    start_at, end_at = ctx.Value("d", 0.0), ctx.Value("d", 0.0)
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(n_clients)]
    results = ctx.Queue()
    args = {
        "spans": spans,
        "bodies": bodies,
        "empty": empty,
        "start_at": start_at,
        "end_at": end_at,
    }
    procs = [
        ctx.Process(target=client_main, args=(i, port, args, readies[i], go, results))
        for i in range(n_clients)
    ]
    for p in procs:
        p.start()
    for r in readies:
        if not r.wait(300):
            raise RuntimeError("client did not get ready")
    start_at.value = time.time() + 0.5
    end_at.value = start_at.value + duration
    go.set()
    while time.time() < start_at.value:
        time.sleep(0.001)
    cpu0 = server_mon.cpu() if server_mon else 0.0
    threads0 = server_mon.thread_cpu() if server_mon else {}
    t0 = time.time()
    rows = [results.get(timeout=duration + 300) for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r["finished"] for r in rows) - t0
    server_cpu = (server_mon.cpu() - cpu0) if server_mon else 0.0
    threads = server_mon.thread_cpu() if server_mon else {}
    busy = sorted(((v - threads0.get(k, 0.0)) / elapsed for k, v in threads.items()), reverse=True)
    main_cpu = (
        (threads.get(server_mon.proc.pid, 0.0) - threads0.get(server_mon.proc.pid, 0.0)) / elapsed
        if server_mon
        else 0.0
    )
    lat = [x for r in rows for x in r["latencies"]]
    ok_spans = sum(r["ok_spans"] for r in rows)
    ok_req = sum(r["ok_requests"] for r in rows)
    return {
        "clients": n_clients,
        "elapsed_s": elapsed,
        "ok_requests": ok_req,
        "ok_spans": ok_spans,
        "requests_per_s": ok_req / elapsed,
        "spans_per_s": ok_spans / elapsed,
        "unavailable": sum(r["unavailable"] for r in rows),
        "failed": sum(r["failed"] for r in rows),
        "latency_p50_ms": c.percentile(lat, 0.5) * 1000,
        "latency_p95_ms": c.percentile(lat, 0.95) * 1000,
        "latency_p99_ms": c.percentile(lat, 0.99) * 1000,
        "server_cpu_s": server_cpu,
        "server_cpu_cores": server_cpu / elapsed,
        "server_main_thread_cores": main_cpu,
        "server_busiest_threads_cores": busy[:4],
        "client_cpu_s": sum(r["cpu_s"] for r in rows),
        "client_cpu_cores": sum(r["cpu_s"] for r in rows) / elapsed,
    }


# ----------------------------------------------------------------------- baselines


def serialise_baseline(spans: int, seconds: float = 3.0) -> dict[str, Any]:
    """One core: build protobuf messages and serialise them (the SDK side's cost)."""
    gen = c.TraceGenerator(seed=99)
    now = c.now_ns()
    reqs = [c.build_request(gen, spans, now - 60 * c.NS, now) for _ in range(8)]
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        reqs[n % len(reqs)].SerializeToString()
        n += 1
    ser = n * spans / (time.perf_counter() - t0)
    body = reqs[0].SerializeToString()
    tpl = (body, b"\x00" * PREFIX_LEN)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        fresh_body(tpl, 0, n)
        n += 1
    swap = n * spans / (time.perf_counter() - t0)
    return {
        "serialise_spans_per_s_1core": ser,
        "id_swap_spans_per_s_1core": swap,
        "body_bytes": len(body),
        "bytes_per_span": len(body) / spans,
    }


def in_process_baseline(spans: int, seconds: float = 3.0) -> dict[str, Any]:
    """One core, no HTTP: decode + columnar conversion (the server's Python work)."""
    from heron.server.ingest.otlp import decode_protobuf, decode_protobuf_batch
    from heron.server.ingest.pipeline import prepare_spans
    from heron.server.store.duckdb_store import spans_to_arrow

    bodies = [b for b, _ in build_bodies(7, 16, spans)]
    out = {}
    for name, fn in (
        ("decode_protobuf_batch", decode_protobuf_batch),
        ("decode_protobuf", decode_protobuf),
    ):
        out[f"{name}_spans_per_s_1core"] = _rate(
            lambda i, fn=fn: fn(bodies[i % len(bodies)]), spans, seconds / 2
        )
    for name, fn in (("batch", decode_protobuf_batch), ("spans", decode_protobuf)):
        res = fn(bodies[0]).spans
        out[f"to_arrow_rollup_{name}_spans_per_s_1core"] = _rate(
            lambda i, res=res: spans_to_arrow(prepare_spans(1, res, UNSCRUBBED)), spans, seconds / 4
        )
    out |= scrub_rates(bodies, spans, seconds)
    return out


def scrub_rates(bodies: list[bytes], spans: int, seconds: float) -> dict[str, float]:
    """The span scrubber alone, and the server's per-request Python work (decode + columns
    + rollups) with and without it, paired request by request (so the machine's load hits
    both alike). Two cases: ``warm``, the same bodies again and again (as the server
    benchmark's clients send them), and ``unseen``, bodies the scrubber never saw (its
    caches warmed on others), as a fleet's unique ids and URLs are."""
    from heron.server.analyze.span_scrub import SpanScrubber
    from heron.server.ingest.otlp import decode_protobuf_batch

    batches = [decode_protobuf_batch(b).spans for b in bodies]
    unseen = [b for b, _ in build_bodies(8, 48, spans)]

    def warmed() -> SpanScrubber:
        scrubber = SpanScrubber()
        for batch in batches:
            scrubber.spans(batch)
        return scrubber

    warm = warmed()
    out = {
        "scrub_warm_spans_per_s_1core": _rate(
            lambda i: warm.spans(batches[i % len(batches)]), spans, seconds / 4
        ),
    }
    fresh = [decode_protobuf_batch(b).spans for b in unseen]
    out["scrub_unseen_spans_per_s_1core"] = max(
        _pass_rate(fresh, warmed(), spans) for _ in range(3)
    )
    cpu = {"warm": [0.0, 0.0], "unseen": [0.0, 0.0]}  # [without, with] CPU seconds
    n = {"warm": 0, "unseen": 0}
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        for case, items, scrubber in (("warm", bodies, warm), ("unseen", unseen, warmed())):
            for i, body in enumerate(items):
                order = (None, scrubber) if i % 2 else (scrubber, None)  # caches favour no one
                for s in order:
                    t0 = time.process_time()
                    _ingest_work(body, s)
                    cpu[case][s is not None] += time.process_time() - t0
            n[case] += len(items) * spans
    for case in ("warm", "unseen"):
        out[f"pipeline_{case}_no_scrub_spans_per_s_1core"] = n[case] / cpu[case][0]
        out[f"pipeline_{case}_scrub_spans_per_s_1core"] = n[case] / cpu[case][1]
    return out


class _Unscrubbed:
    """A span scrubber that leaves spans as they are (the bench's "no scrub" case); like
    the real one, it answers a ``SpanBatch``."""

    @staticmethod
    def spans(spans: Any) -> Any:
        from heron.server.model.span import SpanBatch

        return spans if isinstance(spans, SpanBatch) else SpanBatch.from_spans(spans)


UNSCRUBBED = _Unscrubbed()


def _ingest_work(body: bytes, scrubber: Any) -> None:
    """What the server's Python does per request: decode, the ingest pipeline (SQL
    fingerprints, (scrub), rollups), columns."""
    from heron.server.ingest.otlp import decode_protobuf_batch
    from heron.server.ingest.pipeline import prepare_spans
    from heron.server.store.duckdb_store import spans_to_arrow

    batch = decode_protobuf_batch(body).spans
    spans_to_arrow(prepare_spans(1, batch, scrubber or UNSCRUBBED))


def _pass_rate(batches: list[Any], scrubber: Any, spans: int) -> float:
    """spans/s of CPU time for one pass of ``scrubber`` over ``batches``."""
    t0 = time.process_time()
    for batch in batches:
        scrubber.spans(batch)
    return len(batches) * spans / (time.process_time() - t0)


def _rate(fn: Any, spans: int, seconds: float) -> float:
    """spans/s of CPU time (not wall time: steadier on a shared machine)."""
    n = 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        fn(n)
        n += 1
    return n * spans / (time.process_time() - t0)


# ----------------------------------------------------------------------- main


def stored_spans(db_path: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM spans").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    ser = serialise_baseline(args.spans)
    inproc = in_process_baseline(args.spans)
    runs = []
    variants = [("current", None, True)]
    variants += [("no-scrub", None, False)] if args.scrub_off else []
    variants += [("baseline", args.baseline_src, True)] if args.baseline_src else []
    for n, (label, src, scrub) in [(n, v) for n in args.clients for v in variants]:
        background_load = os.getloadavg()[0]
        work = Path(tempfile.mkdtemp(prefix="heron-bench-ingest-"))
        server = Server(work, _server_env(args), src, scrub=scrub).start()
        assert server.proc is not None
        mon = ProcessMonitor(server.proc.pid).start()
        try:
            empty = run_load(
                server.port, n, args.empty_duration, spans=0, bodies=0, empty=True, server_mon=None
            )
            spy = _start_py_spy(args, server.proc.pid, n)
            load = run_load(
                server.port,
                n,
                args.duration,
                spans=args.spans,
                bodies=args.bodies,
                empty=False,
                server_mon=mon,
            )
            if spy:
                spy.wait()
        finally:
            peak = mon.stop()
            server.stop()
        stored = stored_spans(server.db_path)
        load.update(
            server=label,
            empty_requests_per_s=empty["requests_per_s"],
            peak_rss_mib=peak / 2**20,
            background_loadavg_1m=background_load,
            stored_spans=stored,
            durable=stored >= load["ok_spans"],
            server_cpu_us_per_span=1e6 * load["server_cpu_s"] / max(load["ok_spans"], 1),
        )
        runs.append(load)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        print(f"  {label}, {n} clients: {load['spans_per_s']:,.0f} spans/s", flush=True)
    _print(ser, inproc, runs, args)
    current = [r for r in runs if r["server"] == "current"]
    doc = {
        "bench": "ingest",
        "machine": m,
        "args": vars(args),
        "serialise": ser,
        "in_process": inproc,
        "runs": runs,
        "scrub_ratios": _scrub_ratios(runs),
        "target_spans_per_s": 50_000,
        "target_met": max(r["spans_per_s"] for r in current) >= 50_000,
    }
    c.write_json(args.out, doc)
    return doc


def _scrub_ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per client count, over all its runs: spans/s and server CPU µs/span with span
    scrubbing, over the same without."""
    totals: dict[tuple[str, int], list[float]] = {}
    for r in runs:
        t = totals.setdefault((r["server"], r["clients"]), [0.0, 0.0, 0.0])
        t[0] += r["ok_spans"]
        t[1] += r["elapsed_s"]
        t[2] += r["server_cpu_s"]
    out = []
    for (server, n), (spans, elapsed, cpu) in totals.items():
        off = totals.get(("no-scrub", n))
        if server != "current" or off is None:
            continue
        cpu_per_span, off_cpu_per_span = cpu / max(spans, 1), off[2] / max(off[0], 1)
        out.append(
            {
                "clients": n,
                "runs": sum(1 for r in runs if r["clients"] == n and r["server"] == server),
                "spans_per_s_ratio": (spans / elapsed) / max(off[0] / off[1], 1e-9),
                "cpu_us_per_span_ratio": cpu_per_span / max(off_cpu_per_span, 1e-9),
            }
        )
    return out


def _start_py_spy(args: argparse.Namespace, pid: int, n: int) -> subprocess.Popen[bytes] | None:
    """Sample the server with py-spy (``pip install py-spy``) during the load."""
    if not args.py_spy:
        return None
    out = c.OUT_DIR / f"{args.out}-{n}clients.{args.py_spy}"
    c.OUT_DIR.mkdir(parents=True, exist_ok=True)
    fmt = {"txt": "raw", "svg": "flamegraph", "json": "speedscope"}[args.py_spy]
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--threads",
            "--idle",
            "--rate",
            "50",
            "--duration",
            str(int(args.duration)),
            "--format",
            fmt,
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _server_env(args: argparse.Namespace) -> dict[str, str]:
    env = {}
    for kv in args.server_env:
        k, _, v = kv.partition("=")
        env[k] = v
    return env


def _print(
    ser: dict[str, Any],
    inproc: dict[str, Any],
    runs: list[dict[str, Any]],
    args: argparse.Namespace,
) -> None:
    c.print_table(
        f"Ingest: OTLP protobuf, {args.spans} spans/request, {args.duration:.0f} s per run",
        [
            "server",
            "clients",
            "spans/s acked",
            "req/s",
            "empty req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "503s",
            "server CPU cores",
            "server CPU µs/span",
            "client CPU cores",
            "peak RSS MiB",
            "stored = acked",
            "loadavg before",
        ],
        [
            [
                r["server"],
                r["clients"],
                r["spans_per_s"],
                r["requests_per_s"],
                r["empty_requests_per_s"],
                r["latency_p50_ms"],
                r["latency_p95_ms"],
                r["latency_p99_ms"],
                r["unavailable"],
                r["server_cpu_cores"],
                r["server_cpu_us_per_span"],
                r["client_cpu_cores"],
                r["peak_rss_mib"],
                "yes" if r["durable"] else f"NO ({r['stored_spans']})",
                r["background_loadavg_1m"],
            ]
            for r in runs
        ],
    )
    c.print_table(
        "Same-run baselines (one core each)",
        ["what", "spans/s (CPU time)"],
        [
            ["client: serialise ExportTraceServiceRequest", ser["serialise_spans_per_s_1core"]],
            ["client: swap trace-id prefix per request", ser["id_swap_spans_per_s_1core"]],
            [
                "server: decode_protobuf_batch (hot path)",
                inproc["decode_protobuf_batch_spans_per_s_1core"],
            ],
            ["server: decode_protobuf (Span objects)", inproc["decode_protobuf_spans_per_s_1core"]],
            [
                "server: SQL fingerprints + rollups + spans_to_arrow (SpanBatch)",
                inproc["to_arrow_rollup_batch_spans_per_s_1core"],
            ],
            [
                "server: SQL fingerprints + rollups + spans_to_arrow (list[Span])",
                inproc["to_arrow_rollup_spans_spans_per_s_1core"],
            ],
            ["server: span scrubber, bodies seen before", inproc["scrub_warm_spans_per_s_1core"]],
            ["server: span scrubber, unseen bodies", inproc["scrub_unseen_spans_per_s_1core"]],
            *[
                [
                    f"server: decode + {what}columns + rollups, {case} bodies",
                    inproc[f"pipeline_{case}_{key}_spans_per_s_1core"],
                ]
                for case in ("warm", "unseen")
                for what, key in (("", "no_scrub"), ("scrub + ", "scrub"))
            ],
        ],
    )
    print()
    for case in ("warm", "unseen"):
        ratio = (
            inproc[f"pipeline_{case}_scrub_spans_per_s_1core"]
            / inproc[f"pipeline_{case}_no_scrub_spans_per_s_1core"]
        )
        added = 1e6 / inproc[f"pipeline_{case}_scrub_spans_per_s_1core"] - (
            1e6 / inproc[f"pipeline_{case}_no_scrub_spans_per_s_1core"]
        )
        print(
            f"in-process, {case} bodies: with span scrubbing {ratio:.3f}x the rate of "
            f"decode + columns + rollups alone (+{added:.2f} CPU µs/span)"
        )
    for r in _scrub_ratios(runs):
        print(
            f"{r['clients']} clients ({r['runs']} runs each): span scrubbing on/off "
            f"{r['spans_per_s_ratio']:.3f}x spans/s, "
            f"{r['cpu_us_per_span_ratio']:.3f}x server CPU µs/span"
        )
    print(f"\nrequest body: {ser['body_bytes']:,} bytes ({ser['bytes_per_span']:.0f} B/span)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--clients",
        default="4,8,32",
        type=lambda s: [int(x) for x in s.split(",")],
        help="comma-separated concurrent client counts, one run each (default 4,8,32)",
    )
    p.add_argument("--duration", type=float, default=20.0, help="seconds per run (default 20)")
    p.add_argument(
        "--empty-duration",
        type=float,
        default=3.0,
        help="seconds of the empty-body baseline per run (default 3)",
    )
    p.add_argument("--spans", type=int, default=512, help="spans per request (default 512)")
    p.add_argument(
        "--bodies", type=int, default=16, help="distinct pre-built bodies per client (default 16)"
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="HERON_X=V",
        help="extra environment for heron serve (repeatable)",
    )
    p.add_argument(
        "--py-spy",
        choices=["txt", "svg", "json"],
        help="profile the server with py-spy during each run (raw/flamegraph/speedscope)",
    )
    p.add_argument(
        "--baseline-src",
        metavar="DIR",
        help="also run, interleaved, a server from this heron source tree (its src/ "
        "directory), e.g. the last commit's, for before/after in one run",
    )
    p.add_argument(
        "--scrub-off",
        action="store_true",
        help="also run, interleaved, the same server with span scrubbing switched off "
        "(bench only) and print the on/off ratio",
    )
    p.add_argument("--keep", action="store_true", help="keep the server's data directories")
    p.add_argument("--out", default="ingest", help="JSON name under bench/out/ (default ingest)")
    args = p.parse_args(argv)
    doc = run(args)
    return 0 if doc["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
