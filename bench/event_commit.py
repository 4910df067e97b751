"""The DuckDB writer's cost per commit of Sentry events, old write path vs this tree's,
alternating commit by commit in one process on one store.

A loaded machine (a CI run, another benchmark) moves ``errors_ingest.py``'s figures by
±30 % from run to run; here both paths share the process, the store file and the load
of the moment, so their ratio holds. Events are ``errors_ingest.py``'s (~4 KB, 12
frames, 20 breadcrumbs, 8 bugs), decoded, scrubbed and grouped as the Sentry route does,
then submitted through ``Pipeline.submit_events`` and waited for (one sender), in
commits of ``--batch`` events. The old side is ``write_events`` of the baseline tree's
``heron/server/store/events.py`` (``--baseline-src``, e.g. ``git archive BASE src``),
run in the store's transaction as that tree did; it writes the issues table behind the
new side's issue cache, so the issue counters of this scratch store are not checked —
only time is.

    python bench/event_commit.py --baseline-src /tmp/heron-base --commits 600 --batch 1
    python bench/event_commit.py --baseline-src /tmp/heron-base --commits 160 --batch 16
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
import errors_ingest

from heron.server.ingest.pipeline import Pipeline
from heron.server.ingest.sentry import event_from_sentry
from heron.server.model import ErrorEvent
from heron.server.store.duckdb_store import DuckDBStore


def _old_events_module(src: str) -> Any:
    path = Path(src) / "heron" / "server" / "store" / "events.py"
    spec = importlib.util.spec_from_file_location("heron_baseline_events", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    old_events = _old_events_module(args.baseline_src)
    work = Path(tempfile.mkdtemp(prefix="heron-bench-commit-"))
    store = DuckDBStore(work / "heron.duckdb").start()
    new_insert = store._insert_events

    def old_insert(batches: list[Any]) -> None:
        store._transaction(
            lambda con: old_events.write_events(con, batches, store._known_releases), []
        )

    pipe = Pipeline(store)
    rng = random.Random(1)
    docs = [errors_ingest.sentry_event(rng, j % len(errors_ingest.BUGS)) for j in range(16)]

    def event(i: int) -> ErrorEvent:
        doc = dict(docs[i % len(docs)])
        doc["event_id"] = os.urandom(16).hex()
        return event_from_sentry(doc, received_ns=time.time_ns())

    for i in range(30):  # warm up: issues exist, caches filled
        pipe.submit_events(1, [event(i) for _ in range(args.batch)], []).result()
    commits = [[event(i * args.batch + k) for k in range(args.batch)] for i in range(args.commits)]
    acc = {"old": [0.0, 0.0, 0], "new": [0.0, 0.0, 0]}
    load_before = os.getloadavg()[0]
    for i, events in enumerate(commits):
        side = "old" if (i // 2) % 2 else "new"  # pairs, so neither always goes first
        store._insert_events = old_insert if side == "old" else new_insert  # type: ignore[method-assign]
        t0, c0 = time.perf_counter(), time.process_time()
        pipe.submit_events(1, events, []).result()
        a = acc[side]
        a[0] += time.perf_counter() - t0
        a[1] += time.process_time() - c0
        a[2] += 1
    store.close()
    shutil.rmtree(work, ignore_errors=True)
    out: dict[str, Any] = {"machine": m, "args": vars(args), "loadavg_before": load_before}
    rows = []
    for side in ("old", "new"):
        wall, cpu, k = acc[side]
        out[side] = {
            "ms_per_commit": wall / k * 1000,
            "cpu_ms_per_commit": cpu / k * 1000,
            "events_per_s": k * args.batch / wall,
        }
        rows.append([side, args.batch, k, *out[side].values()])
    out["new_over_old_events_per_s"] = out["new"]["events_per_s"] / out["old"]["events_per_s"]
    c.print_table(
        f"Event commits, one sender, old and new alternating (load before {load_before:.2f}; "
        f"new/old events/s {out['new_over_old_events_per_s']:.2f}x)",
        ["side", "events/commit", "commits", "ms/commit", "CPU ms/commit", "events/s"],
        rows,
    )
    c.write_json(args.out, out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--baseline-src", required=True, help="source tree of the old side")
    p.add_argument("--commits", type=int, default=600, help="commits in all (both sides)")
    p.add_argument("--batch", type=int, default=1, help="events per commit")
    p.add_argument("--out", default="event_commit", help="name of the JSON in bench/out/")
    run(p.parse_args())


if __name__ == "__main__":
    main()
