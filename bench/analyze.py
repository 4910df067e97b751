"""Performance analyzer benchmark: the report of ``heron analyze`` over 10M stored spans.

Filling: the spans of ``bench/query.py`` (a pool of realistic spans made through the
ingest path, copied with shifted ids and times, rollups consistent, spread over the
last 24 hours), then the analysis job over the last ten minutes (N+1 table, database
rollups). Timed: ``query.analysis.analysis_report`` for the last 24 hours and the last
hour, all services, cold (just opened) then warm, plus turning it into JSON and
Markdown — what ``GET /api/v1/analysis`` and ``heron analyze --format md`` do besides
HTTP. Target: ≤ 5 s for 24 hours over 10M spans.

    python bench/analyze.py --spans 10000000 [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
import query as bq

TARGET_S = 5.0
P = 1
NS = 1_000_000_000


def run(args: argparse.Namespace) -> dict[str, Any]:
    from heron.server.jobs import analyze_recent
    from heron.server.query import TimeRange
    from heron.server.query.analysis import analysis_report, report_dict
    from heron.server.store.duckdb_store import DuckDBStore
    from heron.server.ui.analysis_export import to_markdown

    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    base = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="heron-an-"))
    path = base / f"spans-{args.spans}" / "heron.duckdb"
    meta = path.with_name("fill.json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        print(f"reusing {path} ({info['spans']:,} spans)", flush=True)
    else:
        print(f"filling {args.spans:,} spans into {path}", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = bq.fill(path, args.spans, args.pool)
        meta.write_text(json.dumps(info))
    now = c.now_ns()
    runs: list[dict[str, Any]] = []
    store = DuckDBStore(path).start()
    try:
        t0 = time.perf_counter()
        analyze_recent(store, now, window_s=600)
        print(f"analysis job (last 10 min): {time.perf_counter() - t0:.2f} s", flush=True)
        for label, hours in (("24 h", 24), ("1 h", 1)):
            tr = TimeRange(now - hours * 3600 * NS, now)
            for i in range(args.runs):
                t0 = time.perf_counter()
                cpu0 = time.process_time()
                report = analysis_report(store, P, tr)
                t1 = time.perf_counter()
                md = to_markdown(report_dict(report))
                t2 = time.perf_counter()
                runs.append(
                    {
                        "range": label,
                        "run": "cold" if i == 0 and label == "24 h" else f"warm {i + 1}",
                        "report_s": round(t1 - t0, 3),
                        "format_s": round(t2 - t1, 3),
                        "cpu_s": round(time.process_time() - cpu0, 3),
                        "services": len(report.services),
                        "endpoints": sum(len(s.endpoints) for s in report.services),
                        "findings": len(report.findings),
                        "md_bytes": len(md),
                    }
                )
                print(f"    {runs[-1]}", flush=True)
    finally:
        store.close()
    if not args.keep and not args.data_dir:
        shutil.rmtree(base, ignore_errors=True)
    rows = [
        [
            f"{info['spans']:,}",
            x["range"],
            x["run"],
            x["services"],
            x["endpoints"],
            x["findings"],
            x["report_s"],
            x["format_s"],
            x["cpu_s"],
            "yes" if x["report_s"] + x["format_s"] <= TARGET_S else "no",
        ]
        for x in runs
    ]
    c.print_table(
        f"heron analyze: the report over stored spans (target ≤ {TARGET_S:.0f} s)",
        [
            "spans",
            "range",
            "run",
            "services",
            "endpoints",
            "findings",
            "report s",
            "md s",
            "CPU s",
            "met",
        ],
        rows,
    )
    doc = {"machine": m, "spans": info["spans"], "runs": runs}
    c.write_json(args.out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--spans", type=int, default=10_000_000, help="spans stored (default 10M)")
    p.add_argument("--pool", type=int, default=200_000, help="distinct spans made (default 200k)")
    p.add_argument("--runs", type=int, default=3, help="runs per range (default 3)")
    p.add_argument("--data-dir", default="", help="keep/reuse the filled store here")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    p.add_argument("--out", default="analyze", help="JSON name under bench/out/")
    run(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
