"""Idle memory: the RSS of a fresh ``heron serve`` after start-up and ``--idle`` seconds.

Starts ``heron serve`` (fresh data directory, default settings, ``HERON_LOG_LEVEL=warning``)
from this tree and, with ``--baseline-src DIR``, from another source tree too (a
``git worktree`` of an earlier commit), alternating old and new for ``--rounds`` rounds
so that the machine's load falls on both alike. After ``/healthz`` answers and ``--idle``
seconds pass (the alert, analysis and upkeep jobs run meanwhile), it reads the server's
``/proc/PID/status``: RSS, its anonymous and file-backed parts (the file-backed part is
mostly shared libraries' code: DuckDB's, Arrow's), the peak (``VmHWM``) and threads.

    python bench/memory_idle.py --rounds 3 --baseline-src /tmp/heron-old/src

With ``--db FILE`` every server starts on a copy of that DuckDB file instead (a store
filled by ``bench/query.py --keep``, e.g. 10M spans), and after the idle reading it
answers the read API's heavier questions over the last 24 h ``--reads`` times each (the
service and endpoint tables, a trace search, the database queries, the performance
analysis), then, ``--settle`` seconds later (the analysis job, every 10 s, has run
once), its RSS is read again ("after reads") with the peak of the whole run:

    python bench/memory_idle.py --db /tmp/q/spans-10000000/heron.duckdb --baseline-src ...

Printed: every run, then per server the median of the rounds and new/old. JSON goes to
``bench/out/memory_idle.json`` (``--out NAME``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
from ingest import TOKEN, Server

FIELDS = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "VmHWM": "peak"}


def status(pid: int) -> dict[str, float]:
    """RSS figures (MiB) and threads of a process, from ``/proc/PID/status``."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in FIELDS:
            out[FIELDS[key]] = int(value.split()[0]) / 1024
        elif key == "Threads":
            out["threads"] = int(value)
    return out


READS = (
    "/api/v1/services?from=now-24h&to=now",
    "/api/v1/services/{service}/endpoints?from=now-24h&to=now",
    "/api/v1/traces?service={service}&from=now-24h&to=now&limit=100",
    "/api/v1/db/queries?from=now-24h&to=now&limit=100",
    "/api/v1/analysis?from=now-24h&to=now",
)


def get(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")
    return json.loads(body)


def read_heavily(port: int, reads: int) -> float:
    """The read API's heavier questions, ``reads`` times each; seconds taken."""
    t0 = time.monotonic()
    services = get(port, READS[0])["services"]
    service = max(services, key=lambda s: s.get("requests", 0))["service"]
    for _ in range(reads):
        for path in READS:
            get(port, path.format(service=service))
    return time.monotonic() - t0


def idle_run(src: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="heron-idle-") as tmp:
        env = dict(kv.split("=", 1) for kv in args.server_env)
        server = Server(Path(tmp), env, src=src)
        if args.db:
            server.data_dir.mkdir(parents=True)
            shutil.copyfile(args.db, server.data_dir / "heron.duckdb")
        t0 = time.monotonic()
        server.start()
        started_s = time.monotonic() - t0
        assert server.proc is not None
        try:
            time.sleep(args.idle)
            row: dict[str, Any] = status(server.proc.pid)
            if args.db:
                row["reads_s"] = read_heavily(server.port, args.reads)
                time.sleep(args.settle)
                after = status(server.proc.pid)
                row.update({f"{k}_after": v for k, v in after.items()})
        finally:
            server.stop()
    row["start_s"] = started_s
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--idle", type=float, default=30.0, help="seconds idle after start-up")
    p.add_argument("--baseline-src", default=None, help="another tree's src/ (the old side)")
    p.add_argument("--db", default=None, help="start every server on a copy of this DuckDB file")
    p.add_argument("--reads", type=int, default=3, help="with --db: rounds of API reads")
    p.add_argument(
        "--settle",
        type=float,
        default=12.0,
        help="with --db: seconds between the reads and the RSS reading (one analysis run)",
    )
    p.add_argument("--server-env", action="append", default=[], help="HERON_X=V for every server")
    p.add_argument("--out", default="memory_idle", help="JSON name under bench/out/")
    args = p.parse_args()
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    sides = [("new", str(c.ROOT / "src"))]
    if args.baseline_src:
        sides.append(("old", args.baseline_src))
    runs: list[dict[str, Any]] = []
    for r in range(args.rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        for name, src in order:
            load = os.getloadavg()[0]
            row = {"round": r + 1, "server": name, "load": load, **idle_run(src, args)}
            runs.append(row)
            after = (
                f"; after reads ({row['reads_s']:.1f} s) RSS {row['rss_after']:.1f}, "
                f"peak {row['peak_after']:.1f}"
                if args.db
                else ""
            )
            print(
                f"round {r + 1} {name}: RSS {row['rss']:.1f} MiB (anon {row['anon']:.1f}, "
                f"file {row['file']:.1f}), peak {row['peak']:.1f}, {row['threads']} threads, "
                f"load {load:.2f}{after}",
                flush=True,
            )
    cols = ["rss", "anon", "file", "peak", "threads", "start_s"]
    heads = ["RSS MiB", "anon MiB", "file MiB", "peak MiB", "threads", "start-up s"]
    if args.db:
        cols += ["rss_after", "peak_after", "reads_s"]
        heads += ["RSS after reads MiB", "peak after reads MiB", "reads s"]
    med = {
        name: {k: statistics.median(r[k] for r in runs if r["server"] == name) for k in cols}
        for name, _ in sides
    }
    rows = [(name, *(med[name][k] for k in cols)) for name, _ in sides]
    if "old" in med:
        rows.append(("new/old", *(med["new"][k] / med["old"][k] for k in cols)))
    c.print_table(
        f"Idle RSS after {args.idle:g} s, median of {args.rounds} rounds",
        ["server", *heads],
        rows,
    )
    c.write_json(args.out, {"machine": m, "args": vars(args), "runs": runs, "median": med})
    return 0


if __name__ == "__main__":
    sys.exit(main())
