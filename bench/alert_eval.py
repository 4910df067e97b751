"""Alert evaluation benchmark: one full cycle of 1,000 mixed rules over 10M stored spans.

Filling: the spans of ``bench/query.py`` (a pool of realistic spans made through the
ingest path, copied with shifted ids and times, rollups consistent), plus a host CPU
gauge for 50 hosts per minute over the last hour (through the metrics writer).

Rules (all enabled, all due): 400 RED (per service and per endpoint; p95, p99, error
rate, throughput, Apdex; windows 5 min, 15 min, 1 h; some filtered by service), 250
metric (avg/max/last by host, some filtered), 150 error (new issue, event rate), 100
database (slow-query count, fingerprint p95), and 50 SLOs' 100 burn-rate rules. A cycle
(all rules due; then again a minute later, twice) is timed wall-clock and as process CPU (``time.process_time``: DuckDB's threads
included), cold (just opened) and then warm.

    python bench/alert_eval.py --spans 10000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
import query as bq

TARGET_S = 2.0
P = 1
NS = 1_000_000_000


def add_metrics(store: Any, now: int, hosts: int) -> None:
    from heron.server.model.metric import MetricPoint, MetricWrite

    points = [
        MetricPoint(
            now - m * 60 * NS,
            "system.cpu.utilization",
            "gauge",
            "checkout",
            {"host": f"host-{h:02d}"},
            (h * 7 + m) % 100 / 100,
            unit="1",
        )
        for m in range(60)
        for h in range(hosts)
    ]
    store.submit_metrics(MetricWrite(P, points)).result(120)


def rules() -> list[dict[str, Any]]:
    services = list(c.SERVICES)
    out: list[dict[str, Any]] = []
    red_figures = ["p95_ms", "p99_ms", "error_rate", "throughput_rpm", "apdex", "p50_ms"]
    windows = ["5m", "15m", "1h"]
    for i in range(400):
        cond: dict[str, Any] = {
            "kind": "red",
            "figure": red_figures[i % len(red_figures)],
            "window": windows[i % 3],
            "threshold": (i % 17) * 50,
            "per": "endpoint" if i % 4 == 0 else "service",
        }
        if i % 2:
            cond["service"] = services[i % len(services)]
        out.append({"name": f"red {i}", "condition": cond})
    for i in range(250):
        cond = {
            "kind": "metric",
            "metric": "system.cpu.utilization",
            "agg": ["avg", "max", "last"][i % 3],
            "by": ["host"],
            "window": windows[i % 2],
            "threshold": (i % 10) / 10,
        }
        if i % 5 == 0:
            cond["filter"] = {"host": f"host-{i % 50:02d}"}
        out.append({"name": f"metric {i}", "condition": cond})
    for i in range(150):
        event = ["new_issue", "rate"][i % 2]
        cond = {"kind": "error", "event": event, "window": windows[i % 3]}
        if i % 3 == 0:
            cond["service"] = services[i % len(services)]
        out.append({"name": f"error {i}", "condition": cond})
    for i in range(100):
        event = ["slow_queries", "fingerprint_p95"][i % 2]
        cond = {"kind": "db", "event": event, "window": windows[i % 2], "threshold": i}
        if i % 4 == 0:
            cond["service"] = services[i % len(services)]
        out.append({"name": f"db {i}", "condition": cond})
    return out


def setup_rules(store: Any, now: int) -> int:
    from heron.server.alerting.slo import burn_rules
    from heron.server.model.alerting import parse_rule, parse_slo

    st = store.state
    n = 0
    for data in rules():
        spec = parse_rule(data)
        st.create_alert_config(P, "rule", spec.name, spec.to_json(), "api", now)
        n += 1
    services = list(c.SERVICES)
    for i in range(50):
        slo = parse_slo(
            {
                "name": f"slo {i}",
                "service": services[i % len(services)],
                "objective": [99.0, 99.9, 99.5][i % 3],
                "window_days": [30, 7, 28][i % 3],
                **({"sli": "latency", "threshold_ms": 300} if i % 2 else {}),
            }
        )
        row = st.create_alert_config(P, "slo", slo.name, slo.to_json(), "api", now)
        items = [(r.name, r.to_json()) for r in burn_rules(row.id, slo)]
        n += len(st.replace_alert_config_source(P, "rule", f"slo:{row.id}", items, now))
    return n


def run(args: argparse.Namespace) -> dict[str, Any]:
    from heron.server.alerting.evaluator import Evaluator
    from heron.server.store.duckdb_store import DuckDBStore

    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    base = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="heron-alert-"))
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
    store = DuckDBStore(path).start()
    try:
        add_metrics(store, now, args.hosts)
        for kind in ("rule", "slo"):  # a reused store: start from no rules
            for row in store.state.list_alert_config(None, kind):
                store.state.delete_alert_config(row.project_id, kind, row.id)
        n_rules = setup_rules(store, now)
        ev = Evaluator(store, lambda: now)
        cycles = []
        for i in range(args.cycles):
            at = now + i * 60 * NS  # every rule due again (intervals are 60 s)
            st = ev.run(at)
            cycles.append(
                {
                    "cycle": i + 1,
                    "rules": st.rules,
                    "evaluated": st.evaluated,
                    "broken": st.broken,
                    "instances": st.instances,
                    "reads": st.reads,
                    "wall_s": round(st.seconds, 3),
                    "save_s": round(st.save_seconds, 3),
                    "cpu_s": round(st.cpu_seconds, 3),
                    "read_s": st.read_seconds,
                }
            )
            print(f"    cycle {i + 1}: {cycles[-1]}", flush=True)
        errors = {s.error for s in store.state.rule_statuses(P) if s.error}
    finally:
        store.close()
    if not args.keep and not args.data_dir:
        shutil.rmtree(base, ignore_errors=True)
    rows = [
        [
            f"{info['spans']:,}",
            x["cycle"],
            x["evaluated"],
            x["reads"],
            x["instances"],
            x["broken"],
            x["wall_s"],
            x["save_s"],
            x["cpu_s"],
            "yes" if x["wall_s"] <= TARGET_S else "no",
        ]
        for x in cycles
    ]
    c.print_table(
        f"Alert evaluation: {n_rules} rules, one full cycle (target ≤ {TARGET_S:.0f} s)",
        [
            "spans",
            "cycle",
            "rules run",
            "reads",
            "instances",
            "broken",
            "wall s",
            "of it save s",
            "CPU s",
            "met",
        ],
        rows,
    )
    doc = {"machine": m, "spans": info["spans"], "rules": n_rules, "cycles": cycles}
    doc["errors"] = sorted(errors)[:10]
    c.write_json(args.out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--spans", type=int, default=10_000_000, help="spans stored (default 10M)")
    p.add_argument("--pool", type=int, default=200_000, help="distinct spans made (default 200k)")
    p.add_argument("--hosts", type=int, default=50, help="hosts reporting CPU (default 50)")
    p.add_argument("--cycles", type=int, default=3, help="cycles timed (default 3)")
    p.add_argument("--data-dir", default="", help="keep/reuse the filled store here")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    p.add_argument("--out", default="alert_eval", help="JSON name under bench/out/")
    run(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
