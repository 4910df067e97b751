"""Memory soak: the server's RSS while it ingests for minutes, and after, while it analyses.

Starts ``heron serve`` (fresh data directory) with a memory limit, then client processes
POST realistic 512-span OTLP protobuf requests (``common.TraceGenerator``: ~10 spans per
trace, DB and HTTP client spans, 2% errors; every request with fresh trace ids and
current timestamps) for ``--duration`` seconds, at most ``--rate`` spans/s in all. Then
ingest stops and the server is watched for ``--after`` seconds more: the background
analysis (query statistics, N+1 detection) runs every 10 s over the last 3 minutes of
spans, and the upkeep job (retention, rollup compaction) is due once a minute.

The server process's RSS is sampled every 0.5 s (psutil). Printed: a table of RSS over
time, the peak during ingest and after it, and the limit; JSON goes to
``bench/out/memory_soak.json`` (or ``--json PATH``). The exit status is 1 when the peak
RSS exceeds the limit, so the test suite runs this script as its soak test.

    python bench/memory_soak.py --duration 150 --after 40 --memory-limit-mb 512

``--server-src DIR`` runs the server from another source tree (a checkout of an earlier
commit, say), for a before/after comparison on the same machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
from ingest import KEY, TOKEN, Server, build_bodies, fresh_body


def client_main(idx: int, port: int, spans: int, rate: float, end_at: float, results: Any) -> None:
    """Post bodies until ``end_at``, at most ``rate`` spans/s; report what was acknowledged."""
    templates = build_bodies(idx, 4, spans)
    db_spans = [_db_spans(body) for body, _ in templates]
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    interval = spans / rate if rate > 0 else 0.0
    acked = acked_db = refused = seq = 0
    next_at = time.monotonic()
    while time.time() < end_at:
        i = seq % len(templates)
        body = _retime(fresh_body(templates[i], idx, seq))
        seq += 1
        conn.request("POST", "/v1/traces", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status == 200:
            acked += spans
            acked_db += db_spans[i]
        else:
            refused += 1
            time.sleep(0.05)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    conn.close()
    results.put({"acked_spans": acked, "acked_db_spans": acked_db, "refused_requests": refused})


def _request(body: bytes) -> Any:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    return req


def _spans(req: Any) -> Iterator[Any]:
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            yield from ss.spans


def _db_spans(body: bytes) -> int:
    """Spans with a database system: what the analysis job's query statistics count."""
    return sum(any(a.key == "db.system.name" for a in s.attributes) for s in _spans(_request(body)))


def _retime(body: bytes) -> bytes:
    """A body's spans moved to the last minute, so the analysis window (3 min) has them."""
    req = _request(body)
    shift = time.time_ns() - c.NS - max(s.end_time_unix_nano for s in _spans(req))
    for s in _spans(req):
        s.start_time_unix_nano += shift
        s.end_time_unix_nano += shift
    return req.SerializeToString()


def analysed_db_calls(port: int) -> int:
    """Calls in the query statistics the analysis job wrote (the read API, last hour)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(
        "GET", "/api/v1/db/queries?limit=1000", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"/api/v1/db/queries answered {resp.status}: {doc}")
    return sum(int(q["calls"]) for q in doc["queries"])


class RssSampler:
    """The server's RSS every ``every`` seconds, with the phase it was taken in."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.every = every
        self.phase = "start"
        self.samples: list[tuple[float, str, int]] = []
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                rss = self.proc.memory_info().rss
            except Exception:
                return
            self.samples.append((time.monotonic() - self._t0, self.phase, rss))

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, phase: str) -> int:
        return max((rss for _, p, rss in self.samples if p == phase), default=0)


def ingest(port: int, args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    end_at = time.time() + args.duration
    rate = args.rate / args.clients if args.rate else 0.0
    procs = [
        ctx.Process(target=client_main, args=(i, port, args.spans, rate, end_at, results))
        for i in range(args.clients)
    ]
    for p in procs:
        p.start()
    rows = [results.get(timeout=args.duration + 600) for _ in procs]
    for p in procs:
        p.join()
    return {key: sum(r[key] for r in rows) for key in rows[0]}


def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env: dict[str, str] = {}
    if args.memory_limit_mb:
        env["HERON_MEMORY_LIMIT_MB"] = str(args.memory_limit_mb)
    server = Server(workdir, env, src=str(args.server_src))
    server.start()
    assert server.proc is not None
    sampler = RssSampler(server.proc.pid).start()
    try:
        time.sleep(2)
        sampler.phase = "ingest"
        t0 = time.monotonic()
        counts = ingest(server.port, args)
        ingest_s = time.monotonic() - t0
        sampler.phase = "after"
        time.sleep(args.after)
        counts["analysed_db_calls"] = analysed_db_calls(server.port)
    finally:
        sampler.stop()
        server.stop()
    return {
        **counts,
        "ingest_s": ingest_s,
        "spans_per_s": counts["acked_spans"] / ingest_s,
        "peak_rss_ingest": sampler.peak("ingest"),
        "peak_rss_after": sampler.peak("after"),
        "samples": sampler.samples,
        "server_log_tail": server.log_path.read_text(errors="replace")[-2000:],
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    mib = 2**20
    rows = []
    next_t = 0.0
    for t, phase, rss in result["samples"]:
        if t >= next_t:
            rows.append((round(t), phase, rss / mib))
            next_t = t + args.every
    c.print_table("Server RSS over time", ["t (s)", "phase", "RSS (MiB)"], rows)
    limit = args.memory_limit_mb or "server default"
    c.print_table(
        "Summary",
        ["spans acked", "spans/s", "peak RSS ingest (MiB)", "peak RSS after (MiB)", "limit (MiB)"],
        [
            (
                result["acked_spans"],
                result["spans_per_s"],
                result["peak_rss_ingest"] / mib,
                result["peak_rss_after"] / mib,
                limit,
            )
        ],
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--duration",
        type=float,
        default=float(os.environ.get("HERON_SOAK_SECONDS", "150")),
        help="seconds of ingest (default $HERON_SOAK_SECONDS or 150)",
    )
    p.add_argument("--after", type=float, default=40.0, help="seconds watched after ingest")
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--spans", type=int, default=512, help="spans per request")
    p.add_argument("--rate", type=float, default=0.0, help="spans/s in all (0: unlimited)")
    p.add_argument(
        "--memory-limit-mb", type=int, default=0, help="HERON_MEMORY_LIMIT_MB (0: default)"
    )
    p.add_argument("--every", type=float, default=5.0, help="table row every N seconds")
    p.add_argument(
        "--server-src",
        type=Path,
        default=c.ROOT / "src",
        help="source tree the server runs from (another one: a baseline; default this one)",
    )
    p.add_argument("--json", type=Path, default=None, help="write JSON here")
    args = p.parse_args()
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="heron-soak-") as tmp:
        result = soak(args, Path(tmp))
    report(args, result)
    doc = {"machine": m, "args": {k: str(v) for k, v in vars(args).items()}, **result}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    else:
        c.write_json("memory_soak", doc)
    limit = args.memory_limit_mb * 2**20
    over = limit and max(result["peak_rss_ingest"], result["peak_rss_after"]) > limit
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
