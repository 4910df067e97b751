"""Run every Heron benchmark in turn (``make bench``) and print whether each target is met.

Each bench runs in its own process with its own defaults (see bench/README.md) and writes
its JSON under bench/out/. ``--quick`` uses small sizes and short runs: a smoke test of
the benches, not figures to quote.

    python bench/run_all.py            # full: ingest 4,8,32 clients x 20 s; storage 1M; query 1M+10M
    python bench/run_all.py --quick    # about two minutes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

FULL = {
    "check_decoder": [],
    "ingest": [],
    "storage": [],
    "query": [],
}
QUICK = {  # written to NAME-quick.json, so a smoke test never replaces real figures
    "check_decoder": ["--requests", "30"],
    "ingest": [
        "--clients",
        "4",
        "--duration",
        "5",
        "--empty-duration",
        "1",
        "--out",
        "ingest-quick",
    ],
    "storage": ["--spans", "100000", "--no-variants", "--out", "storage-quick"],
    "query": ["--sizes", "100000", "--pool", "50000", "--runs", "5", "--out", "query-quick"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes, short runs (smoke test)")
    p.add_argument("--only", help="comma-separated subset: check_decoder,ingest,storage,query")
    args = p.parse_args(argv)
    plan = QUICK if args.quick else FULL
    names = args.only.split(",") if args.only else list(plan)
    failed = []
    for name in names:
        print(f"\n===== {name} {' '.join(plan[name])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / f"{name}.py"), *plan[name]])
        print(f"===== {name}: exit {rc} in {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    print("\n===== targets")
    for name, key in (
        ("ingest", "target_met"),
        ("storage", "target_met"),
        ("query", "targets_met"),
    ):
        path = OUT / f"{name}{'-quick' if args.quick else ''}.json"
        if name in names and path.exists():
            print(f"  {name}: {json.loads(path.read_text()).get(key)}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
