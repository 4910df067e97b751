"""Idle memory: the RSS of a fresh ``heron serve`` after start-up and ``--idle`` seconds.

Starts ``heron serve`` (fresh data directory, default settings, ``HERON_LOG_LEVEL=warning``)
from this tree and, with ``--baseline-src DIR``, from another source tree too (a
``git worktree`` of an earlier commit), alternating old and new for ``--rounds`` rounds
so that the machine's load falls on both alike. After ``/healthz`` answers and ``--idle``
seconds pass (the alert, analysis and upkeep jobs run meanwhile), it reads the server's
``/proc/PID/status``: RSS, its anonymous and file-backed parts (the file-backed part is
mostly shared libraries' code: DuckDB's, Arrow's), the peak (``VmHWM``) and threads.

    python bench/memory_idle.py --rounds 3 --baseline-src /tmp/heron-old/src

Printed: every run, then per server the median of the rounds and new/old. JSON goes to
``bench/out/memory_idle.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
from ingest import Server

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


def idle_run(src: str, idle_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="heron-idle-") as tmp:
        server = Server(Path(tmp), {}, src=src)
        t0 = time.monotonic()
        server.start()
        started_s = time.monotonic() - t0
        assert server.proc is not None
        try:
            time.sleep(idle_s)
            row: dict[str, Any] = status(server.proc.pid)
        finally:
            server.stop()
    row["start_s"] = started_s
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--idle", type=float, default=30.0, help="seconds idle after start-up")
    p.add_argument("--baseline-src", default=None, help="another tree's src/ (the old side)")
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
            row = {"round": r + 1, "server": name, "load": load, **idle_run(src, args.idle)}
            runs.append(row)
            print(
                f"round {r + 1} {name}: RSS {row['rss']:.1f} MiB (anon {row['anon']:.1f}, "
                f"file {row['file']:.1f}), peak {row['peak']:.1f}, {row['threads']} threads, "
                f"load {load:.2f}",
                flush=True,
            )
    cols = ["rss", "anon", "file", "peak", "threads", "start_s"]
    med = {
        name: {k: statistics.median(r[k] for r in runs if r["server"] == name) for k in cols}
        for name, _ in sides
    }
    rows = [(name, *(med[name][k] for k in cols)) for name, _ in sides]
    if "old" in med:
        rows.append(("new/old", *(med["new"][k] / med["old"][k] for k in cols)))
    c.print_table(
        f"Idle RSS after {args.idle:g} s, median of {args.rounds} rounds",
        [
            "server",
            "RSS MiB",
            "anon MiB",
            "file MiB",
            "peak MiB",
            "threads",
            "start-up s",
        ],
        rows,
    )
    c.write_json("memory_idle", {"machine": m, "args": vars(args), "runs": runs, "median": med})
    return 0


if __name__ == "__main__":
    sys.exit(main())
