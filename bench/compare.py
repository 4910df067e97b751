"""An old commit against a new one (default: this tree) in the same run: ingest and agent.

Figures from different days on a shared machine cannot show a 10% regression; the same
work run old, new, old, new in one go can, as a ratio. So:

1. ``--old`` gets a detached ``git worktree`` under the temp dir (``--new`` too when it is
   a commit; by default the new side is this checkout as it is, changes included).
2. ``--rounds`` rounds; each runs every bench of ``--only`` once per side, the order of
   the sides alternating from round to round, so drift in the machine's load hits both.
   Each side runs in its own interpreter with ``PYTHONPATH=<side>/src``:

   * **ingest**: that side's ``heron serve`` (``bench/ingest.py``'s ``Server``, its
     clients and CPU monitor, imported from this tree so both sides get the same load):
     spans/s acknowledged (HTTP 200, i.e. committed) and the server process's CPU µs
     per span, ``--clients`` clients × ``--duration`` s of ``--spans``-span requests.
   * **agent**: a fresh process that calls that side's ``heron.init()`` and ends
     ``--agent-spans`` spans in a tight loop (``bench/agent_burst.py``'s loop), then
     ``heron.flush()``: CPU µs per span of the whole process (``time.process_time``, so
     the exporter thread's encoding and sending count), exporting to a local OTLP sink
     started here (it answers 200 and counts the spans it got, so no server competes
     for the CPU). Plain OpenTelemetry (SDK + ``BatchSpanProcessor`` +
     ``OTLPSpanExporter``) runs the same loop every round as a same-run reference.

3. A Markdown table per bench: old, new and new/old per round and the medians; the JSON
   goes to ``bench/out/compare.json``. ``--fail-below R`` exits 1 when a median ratio,
   taken so that > 1 is better (new/old for spans/s, old/new for µs/span), is below R:
   ``--fail-below 0.9`` fails on 10% fewer spans/s or ~11% more µs per span.

    python bench/compare.py --old 3294988                       # 3 rounds, both benches
    python bench/compare.py --old main~5 --new HEAD --rounds 2 --only agent
    python bench/compare.py --old origin/main --fail-below 0.9  # CI gate

``bench/compare_commits.py`` (whole ``ingest.py``/``query.py`` runs of two trees) shares
this module's ``Tree`` and summary helpers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

BENCHES = ("ingest", "agent")

# ----------------------------------------------------------------------- trees


def git(*args: str, cwd: Path = c.ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


class Tree:
    """A source tree of heron: its ``bench/`` and ``src/``, and what commit it is."""

    def __init__(self, label: str, path: Path, commit: str, owned: bool) -> None:
        self.label, self.path, self.commit, self.owned = label, path, commit, owned

    @classmethod
    def checkout(cls, label: str, rev: str, parent: Path) -> Self:
        """A detached worktree of ``rev`` under ``parent`` (reused if already there)."""
        sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
        path = parent / f"heron-{label}-{sha[:10]}"
        if not (path / ".git").exists():
            git("worktree", "prune")  # a registration whose directory is gone
            git("worktree", "add", "--detach", str(path), sha)
        return cls(label, path, sha[:10], owned=True)

    @classmethod
    def this(cls, label: str) -> Self:
        sha = git("rev-parse", "--short=10", "HEAD")
        dirty = "+changes" if git("status", "--porcelain", "--untracked-files=no") else ""
        return cls(label, c.ROOT, sha + dirty, owned=False)

    @property
    def src(self) -> Path:
        return self.path / "src"

    def remove(self) -> None:
        if self.owned:
            git("worktree", "remove", "--force", str(self.path))

    def env(self) -> dict[str, str]:
        """The environment for this tree's processes: its ``src`` only, no HERON_/OTEL_."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
        env["PYTHONPATH"] = str(self.src)
        return env


def spread(xs: list[float]) -> float:
    """(max − min) / median: how far a side's rounds disagree."""
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m if m else 0.0


# ----------------------------------------------------------------------- ingest


def ingest_once(tree: Tree, args: argparse.Namespace) -> dict[str, float]:
    """spans/s acknowledged by ``tree``'s ``heron serve`` and its CPU µs per span."""
    from ingest import ProcessMonitor, Server, run_load

    work = Path(tempfile.mkdtemp(prefix=f"heron-compare-{tree.label}-"))
    server = Server(work, src=str(tree.src))
    server.env["PYTHONPATH"] = str(tree.src)  # not the driver's PYTHONPATH behind it
    server.start()
    assert server.proc is not None
    mon = ProcessMonitor(server.proc.pid).start()
    try:
        load = run_load(
            server.port,
            args.clients,
            args.duration,
            spans=args.spans,
            bodies=args.bodies,
            empty=False,
            server_mon=mon,
        )
    finally:
        mon.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    if not load["ok_spans"]:
        raise RuntimeError(f"{tree.label}: no span acknowledged (see {server.log_path})")
    return {
        "spans/s": load["spans_per_s"],
        "server CPU µs/span": 1e6 * load["server_cpu_s"] / load["ok_spans"],
    }


# ----------------------------------------------------------------------- agent

AGENT_APP = """
import json, sys, time
from opentelemetry import trace

mode, endpoint, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "heron":
    import heron
    heron.init(service="compare-bench", endpoint=endpoint, key="hk_compare_bench")
    flush = lambda: heron.flush(600)
else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    provider = TracerProvider(resource=Resource.create({"service.name": "compare-otel"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)
    flush = lambda: provider.force_flush(600_000)
tracer = trace.get_tracer("compare")
for i in range(min(n, 1000)):  # warm-up: imports, first export
    with tracer.start_as_current_span("warm-op", attributes={"i": i}):
        pass
flush()
t0, c0 = time.perf_counter(), time.process_time()
for i in range(n):
    with tracer.start_as_current_span("burst-op", attributes={"i": i}):
        pass
flushed = flush()
cpu, wall = time.process_time() - c0, time.perf_counter() - t0
out = {"cpu_s": cpu, "wall_s": wall, "flushed": bool(flushed)}
if mode == "heron":
    s = heron.stats()
    out.update(exported=s.exported, dropped=s.dropped)
print(json.dumps(out))
"""


class Sink:
    """A local OTLP/HTTP receiver: answers every POST 200 and counts the spans it got."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        sink = self
        self.spans, self.requests, self._lock = 0, 0, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path.endswith("/v1/traces"):
                    req = ExportTraceServiceRequest.FromString(body)
                    n = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
                    with sink._lock:
                        sink.spans += n
                        sink.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> int:
        """Spans received since the last call."""
        with self._lock:
            n, self.spans = self.spans, 0
        return n

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def agent_process(tree: Tree, mode: str, sink: Sink, spans: int) -> dict[str, Any]:
    """One fresh process of ``tree`` ending ``spans`` spans with ``mode``'s setup."""
    sink.take()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(AGENT_APP), mode, sink.url, str(spans)],
        env=tree.env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tree.label} agent ({mode}) failed:\n{done.stderr}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    out["at_sink"] = sink.take()
    return out


def agent_once(tree: Tree, args: argparse.Namespace, sink: Sink) -> dict[str, float]:
    r = agent_process(tree, "heron", sink, args.agent_spans)
    if r["at_sink"] < args.agent_spans:
        raise RuntimeError(f"{tree.label} agent: {r['at_sink']} of {args.agent_spans} exported")
    return {"agent CPU µs/span": 1e6 * r["cpu_s"] / args.agent_spans}


# ----------------------------------------------------------------------- summary


def higher_is_better(metric: str) -> bool:
    return metric.endswith("/s")


def gain(metric: str, ratio: float) -> float:
    """``ratio`` (new/old) turned so that > 1 means new is better."""
    return ratio if higher_is_better(metric) or not ratio else 1 / ratio


def summarise(rounds: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per bench, per metric: old, new, new/old per round, then the medians."""
    out: dict[str, list[dict[str, Any]]] = {}
    for bench in BENCHES:
        metrics: dict[str, dict[str, list[float]]] = {}
        for r in rounds:
            for side in ("old", "new"):
                for m, v in r.get(bench, {}).get(side, {}).items():
                    metrics.setdefault(m, {"old": [], "new": []})[side].append(v)
        rows = []
        for m, v in metrics.items():
            per_round = [
                {"old": o, "new": n, "ratio": n / o if o else float("nan")}
                for o, n in zip(v["old"], v["new"], strict=True)
            ]
            mo, mn = statistics.median(v["old"]), statistics.median(v["new"])
            ratio = mn / mo if mo else float("nan")
            rows.append(
                {
                    "metric": m,
                    "higher_is_better": higher_is_better(m),
                    "rounds": per_round,
                    "old": mo,
                    "new": mn,
                    "ratio": ratio,
                    "gain": gain(m, ratio),
                    "old_spread": spread(v["old"]),
                    "new_spread": spread(v["new"]),
                }
            )
        if rows:
            out[bench] = rows
    return out


def report(
    summary: dict[str, list[dict[str, Any]]], old: Tree, new: Tree, ref: list[float]
) -> None:
    for bench, rows in summary.items():
        table = []
        for row in rows:
            for i, r in enumerate(row["rounds"], 1):
                table.append([row["metric"], i, r["old"], r["new"], f"{r['ratio']:.3f}"])
            table.append([row["metric"], "median", row["old"], row["new"], f"{row['ratio']:.3f}"])
        if bench == "agent" and ref:
            table.append(
                ["plain OTel µs/span (reference)", "median", "", statistics.median(ref), ""]
            )
        c.print_table(
            f"{bench}: old {old.commit} vs new {new.commit}",
            ["metric", "round", "old", "new", "new/old"],
            table,
        )


# ----------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    print(f"machine: {c.machine_line(m)}\nload: {os.getloadavg()}", flush=True)
    work = Path(args.work_dir or tempfile.gettempdir())
    old = Tree.checkout("old", args.old, work)
    new = Tree.this("new") if args.new in (None, "tree") else Tree.checkout("new", args.new, work)
    print(f"old: {old.commit} at {old.path}\nnew: {new.commit} at {new.path}", flush=True)
    sink = Sink() if "agent" in args.only else None
    rounds: list[dict[str, Any]] = []
    otel_ref: list[float] = []
    try:
        for rnd in range(1, args.rounds + 1):
            order = (old, new) if rnd % 2 else (new, old)
            result: dict[str, Any] = {"round": rnd, "order": [t.label for t in order]}
            result["loadavg_before"] = os.getloadavg()
            for bench in args.only:
                per: dict[str, Any] = {}
                for tree in order:
                    if bench == "ingest":
                        per[tree.label] = ingest_once(tree, args)
                    else:
                        assert sink is not None
                        per[tree.label] = agent_once(tree, args, sink)
                    print(f"  round {rnd} {bench} {tree.label}: {per[tree.label]}", flush=True)
                if bench == "agent":
                    assert sink is not None
                    r = agent_process(new, "otel", sink, args.agent_spans)
                    per["otel"] = {"agent CPU µs/span": 1e6 * r["cpu_s"] / args.agent_spans}
                    otel_ref.append(per["otel"]["agent CPU µs/span"])
                result[bench] = per
            rounds.append(result)
    finally:
        if sink:
            sink.close()
        if not args.keep:
            for t in (old, new):
                t.remove()
    summary = summarise(rounds)
    report(summary, old, new, otel_ref)
    failing = [
        f"{bench}: {row['metric']} (new/old {row['ratio']:.3f})"
        for bench, rows in summary.items()
        for row in rows
        if args.fail_below is not None and row["gain"] < args.fail_below
    ]
    doc = {
        "bench": "compare",
        "machine": m,
        "args": vars(args),
        "old": {"commit": old.commit, "rev": args.old},
        "new": {"commit": new.commit, "rev": args.new or "tree"},
        "rounds": rounds,
        "summary": summary,
        "otel_reference_us_per_span": statistics.median(otel_ref) if otel_ref else None,
        "fail_below": args.fail_below,
        "failing": failing,
    }
    c.write_json(args.out, doc)
    for f in failing:
        print(f"WORSE than --fail-below {args.fail_below}: {f}", flush=True)
    return doc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--old", required=True, help="the old commit (anything git rev-parse takes)")
    p.add_argument("--new", help="the new commit, or 'tree' (default): this checkout as it is")
    p.add_argument("--rounds", type=int, default=3, help="rounds, sides alternating (default 3)")
    p.add_argument(
        "--only",
        default=",".join(BENCHES),
        type=lambda s: [b for b in s.split(",") if b],
        help="comma-separated benches of ingest,agent (default both)",
    )
    p.add_argument("--clients", type=int, default=4, help="ingest clients (default 4)")
    p.add_argument("--duration", type=float, default=10.0, help="ingest seconds (default 10)")
    p.add_argument("--spans", type=int, default=512, help="spans per request (default 512)")
    p.add_argument("--bodies", type=int, default=8, help="distinct bodies per client (default 8)")
    p.add_argument(
        "--agent-spans", type=int, default=50_000, help="spans per agent process (default 50,000)"
    )
    p.add_argument(
        "--fail-below",
        type=float,
        help="exit 1 when a median ratio, > 1 meaning better, is below this (e.g. 0.9)",
    )
    p.add_argument("--work-dir", help="where the worktrees go (default: temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the worktrees")
    p.add_argument("--out", default="compare", help="JSON name under bench/out/ (compare)")
    args = p.parse_args(argv)
    if not args.only or set(args.only) - set(BENCHES):
        p.error(f"--only: choose from {', '.join(BENCHES)}")
    if args.rounds < 1:
        p.error("--rounds: at least 1")
    if args.fail_below is not None and args.fail_below <= 0:
        p.error("--fail-below: a ratio above 0")
    return args


def main(argv: list[str] | None = None) -> int:
    doc = run(parse_args(argv))
    return 1 if doc["failing"] else 0


if __name__ == "__main__":
    sys.exit(main())
