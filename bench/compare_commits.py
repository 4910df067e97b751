"""An old commit against this tree, same run: the DuckDB ingest and query benches of each.

Issue 10 asks that the server-core reshaping not slow the DuckDB path; figures from
different days on a shared machine cannot show that, so this runs both in one go:

1. ``git worktree add --detach`` of ``--old`` (default ``fcba3bd``, the last commit
   before the reshaping) under the temp dir; ``--new`` is this checkout as it is
   (uncommitted changes included) unless given a commit, which gets a worktree too.
2. ``--rounds`` rounds; in each, every bench of ``--benches`` runs once per tree, the
   order of the trees alternating from round to round (drift in the machine's load
   then hits both alike). Each run is that tree's own ``bench/NAME.py`` with that tree's
   ``src`` on ``PYTHONPATH`` (so ``heron serve`` started by ``ingest.py`` is that tree's
   too), its JSON written under that tree's ``bench/out/``. Flags a tree's bench does
   not know (its ``--help`` does not list them) are left out for it, with a warning.
   ``query.py`` gets a ``--data-dir`` per tree: it fills its stores in the first round
   and reuses them after.
3. A table per metric: the median over the rounds for each tree, new/old, each tree's
   spread over its rounds ((max − min)/median), and a verdict: "within noise" when
   new/old differs from 1 by no more than the larger spread (needs ≥ 2 rounds).

Metrics: ingest spans/s acknowledged, server CPU µs/span and p95 latency per client
count, and the one-core decode rate (the in-process "pipeline" rates are left out: at
fcba3bd they did not include the SQL fingerprinting, then done in the store); query
median and p95 ms per size, question and path (function, API).

    python bench/compare_commits.py                      # fcba3bd vs this tree, 3 rounds
    python bench/compare_commits.py --rounds 2 --benches ingest \\
        --ingest-args "--clients 8 --duration 20"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
from compare import Tree, spread

OLD = "fcba3bd"
DEFAULT_ARGS = {
    "ingest": "--clients 4,8 --duration 20",
    "query": "--sizes 1000000,10000000 --runs 20",
}
# ingest.py's one-core in-process rates that measure the same work in both trees. Its
# "pipeline" rates do not: at fcba3bd the SQL fingerprinting ran in the store's
# ``submit_spans``, outside them; since the reshaping it is part of the pipeline.
INGEST_RATES = ("decode_protobuf_batch_spans_per_s_1core",)


# ----------------------------------------------------------------------- trees


class BenchTree(Tree):
    """A ``Tree`` that runs its own ``bench/NAME.py``, with only the flags it knows."""

    def __init__(self, label: str, path: Path, commit: str, owned: bool) -> None:
        super().__init__(label, path, commit, owned)
        self._flags: dict[str, set[str]] = {}

    def flags(self, bench: str) -> set[str]:
        """The long options this tree's bench accepts (from its ``--help``)."""
        if bench not in self._flags:
            out = subprocess.run(
                [sys.executable, str(self.path / "bench" / f"{bench}.py"), "--help"],
                cwd=self.path,
                env=self.env(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            self._flags[bench] = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out))
        return self._flags[bench]

    def adapt(self, bench: str, argv: list[str]) -> list[str]:
        """``argv`` without the options this tree's bench does not know (nor their values)."""
        known, out, skip = self.flags(bench), [], False
        for i, tok in enumerate(argv):
            if skip:
                skip = False
                continue
            name = tok.split("=", 1)[0]
            if tok.startswith("--") and name not in known:
                has_value = (
                    "=" not in tok and i + 1 < len(argv) and not argv[i + 1].startswith("--")
                )
                print(f"  [{self.label}] {bench}.py has no {name}: left out", flush=True)
                skip = has_value
                continue
            out.append(tok)
        return out


# ----------------------------------------------------------------------- runs


def run_bench(tree: BenchTree, bench: str, argv: list[str], out_name: str) -> dict[str, Any]:
    """Run ``tree``'s bench with ``argv``, echoing its output; its JSON document."""
    cmd = [sys.executable, str(tree.path / "bench" / f"{bench}.py"), *argv, "--out", out_name]
    print(f"\n$ PYTHONPATH={tree.path / 'src'} {shlex.join(cmd[1:])}", flush=True)
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=tree.path,
        env=tree.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"  [{tree.label}] {line}", end="", flush=True)
    if proc.wait() != 0:
        raise RuntimeError(f"{tree.label} {bench}.py failed (exit {proc.returncode})")
    doc: dict[str, Any] = json.loads((tree.path / "bench" / "out" / f"{out_name}.json").read_text())
    doc["_seconds"], doc["_loadavg_before"] = time.perf_counter() - t0, load
    return doc


def ingest_metrics(doc: dict[str, Any]) -> dict[str, float]:
    """spans/s, server CPU µs/span and p95 ms per client count (mean over its runs), and
    the one-core rates."""
    by_clients: dict[int, list[dict[str, Any]]] = {}
    for r in doc["runs"]:
        if r.get("server", "current") == "current":
            by_clients.setdefault(r["clients"], []).append(r)
    out = {}
    for n, runs in sorted(by_clients.items()):
        for key, name in (
            ("spans_per_s", "spans/s"),
            ("server_cpu_us_per_span", "server CPU µs/span"),
            ("latency_p95_ms", "p95 ms"),
        ):
            out[f"ingest {n} clients: {name}"] = statistics.mean(r[key] for r in runs)
    for key in INGEST_RATES:
        if key in doc.get("in_process", {}):
            out[f"ingest one core: {key.removesuffix('_spans_per_s_1core')} spans/s"] = doc[
                "in_process"
            ][key]
    return out


def query_metrics(doc: dict[str, Any]) -> dict[str, float]:
    out = {}
    for r in doc["results"]:
        for t in r["timings"]:
            where = f"query {r['spans'] / 1e6:g}M {t['query']} ({t['via']})"
            out[f"{where}: median ms"] = t["median_ms"]
            out[f"{where}: p95 ms"] = t["p95_ms"]
    return out


METRICS = {"ingest": ingest_metrics, "query": query_metrics}


def higher_is_better(metric: str) -> bool:
    return metric.endswith("spans/s")


# ----------------------------------------------------------------------- summary


def summarise(runs: list[dict[str, Any]], old: str, new: str) -> list[dict[str, Any]]:
    """Per metric: each tree's median over the rounds, new/old, spreads, verdict."""
    values: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        for metric, v in r["metrics"].items():
            values.setdefault(metric, {}).setdefault(r["tree"], []).append(v)
    rows = []
    for metric, by_tree in values.items():
        if old not in by_tree or new not in by_tree:
            continue
        o, n = by_tree[old], by_tree[new]
        ratio = (
            statistics.median(n) / statistics.median(o) if statistics.median(o) else float("nan")
        )
        noise = max(spread(o), spread(n))
        if min(len(o), len(n)) < 2:
            verdict = ""
        elif abs(ratio - 1) <= noise:
            verdict = "within noise"
        else:
            better = (ratio > 1) == higher_is_better(metric)
            verdict = "better" if better else "worse"
        rows.append(
            {
                "metric": metric,
                "old": statistics.median(o),
                "new": statistics.median(n),
                "ratio": ratio,
                "old_spread": spread(o),
                "new_spread": spread(n),
                "rounds": min(len(o), len(n)),
                "verdict": verdict,
            }
        )
    return rows


def report(
    rows: list[dict[str, Any]], runs: list[dict[str, Any]], old: BenchTree, new: BenchTree
) -> None:
    c.print_table(
        "Runs",
        ["round", "bench", "tree", "commit", "s", "loadavg before"],
        [
            [r["round"], r["bench"], r["tree"], r["commit"], r["seconds"], r["loadavg_before"][0]]
            for r in runs
        ],
    )
    c.print_table(
        f"{old.label} ({old.commit}) vs {new.label} ({new.commit}): medians over the rounds",
        ["metric", old.label, new.label, "new/old", "old spread", "new spread", "verdict"],
        [
            [
                r["metric"],
                r["old"],
                r["new"],
                f"{r['ratio']:.3f}",
                f"{100 * r['old_spread']:.0f}%",
                f"{100 * r['new_spread']:.0f}%",
                r["verdict"],
            ]
            for r in rows
        ],
    )


# ----------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    work = Path(args.work_dir or tempfile.gettempdir())
    old = BenchTree.checkout("old", args.old, work)
    new = BenchTree.checkout("new", args.new, work) if args.new else BenchTree.this("new")
    data = {t.label: work / f"heron-compare-query-{t.commit}" for t in (old, new)}
    print(f"old: {old.commit} at {old.path}\nnew: {new.commit} at {new.path}", flush=True)
    runs = []
    try:
        for rnd in range(1, args.rounds + 1):
            order = (old, new) if rnd % 2 else (new, old)
            for bench in args.benches:
                for tree in order:
                    argv = shlex.split(getattr(args, f"{bench}_args"))
                    if bench == "query":
                        argv += ["--data-dir", str(data[tree.label])]
                    out_name = f"compare-{bench}-{tree.label}-{rnd}"
                    doc = run_bench(tree, bench, tree.adapt(bench, argv), out_name)
                    runs.append(
                        {
                            "round": rnd,
                            "bench": bench,
                            "tree": tree.label,
                            "commit": tree.commit,
                            "seconds": doc["_seconds"],
                            "loadavg_before": doc["_loadavg_before"],
                            "metrics": METRICS[bench](doc),
                        }
                    )
    finally:
        if not args.keep:
            for t in (old, new):
                t.remove()
            for d in data.values():
                shutil.rmtree(d, ignore_errors=True)
    rows = summarise(runs, old.label, new.label)
    report(rows, runs, old, new)
    doc = {
        "bench": "compare_commits",
        "machine": m,
        "args": vars(args),
        "old": {"commit": old.commit, "path": str(old.path)},
        "new": {"commit": new.commit, "path": str(new.path)},
        "runs": runs,
        "summary": rows,
    }
    c.write_json(args.out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--old", default=OLD, help=f"the old commit (default {OLD})")
    p.add_argument(
        "--new", help="the new commit (default: this checkout as it is, changes included)"
    )
    p.add_argument("--rounds", type=int, default=3, help="rounds, trees alternating (default 3)")
    p.add_argument(
        "--benches",
        default="ingest,query",
        type=lambda s: [b for b in s.split(",") if b],
        help="comma-separated, of ingest,query (default both)",
    )
    for bench, default in DEFAULT_ARGS.items():
        p.add_argument(
            f"--{bench}-args",
            default=default,
            help=f"arguments for {bench}.py, one string (default {default!r})",
        )
    p.add_argument("--work-dir", help="where worktrees and query stores go (default: temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the worktrees and query stores")
    p.add_argument(
        "--out", default="compare_commits", help="JSON name under bench/out/ (compare_commits)"
    )
    args = p.parse_args(argv)
    if set(args.benches) - set(METRICS) or not args.benches:
        p.error(f"--benches: choose from {', '.join(METRICS)}")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
