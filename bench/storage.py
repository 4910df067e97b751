"""Storage benchmark: bytes on disk per span, for realistic HTTP/DB traces.

"bytes/span" is the file's size over the spans; "used B/span" counts only the blocks in
use (DuckDB never shrinks a file: blocks freed when a checkpoint rewrites the last,
partly-filled row group stay in the file and are reused as it grows).

Spans go through the same path as ``POST /v1/traces`` minus HTTP: OTLP protobuf bodies →
``decode_protobuf_batch`` → ``DuckDBStore.submit_spans`` (group commit), then the store
is closed (CHECKPOINT) and the file measured. Each ``--checkpoint-mb`` value is a
separate store with the same spans (16 is DuckDB's default WAL threshold). Variants
measure schema proposals on the same rows copied into a fresh file: as they are (the
reference), without the trace-id index, and with the resource stored once per distinct
resource (a ``resources`` table and a ``resource_id`` column) instead of on every span.

    python bench/storage.py --spans 1000000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

TARGET_BYTES_PER_SPAN = 80


def make_bodies(n_spans: int, seed: int = 1) -> list[bytes]:
    """Protobuf request bodies of 512 spans, times spread over the last 24 hours."""
    gen = c.TraceGenerator(seed=seed)
    now = c.now_ns()
    bodies = []
    for _ in range(max(1, n_spans // 512)):
        bodies.append(c.build_request(gen, 512, now - 86_400 * c.NS, now).SerializeToString())
    return bodies


def fill_store(path: Path, bodies: list[bytes], checkpoint_mb: int) -> dict[str, Any]:
    from heron.server.ingest.otlp import decode_protobuf_batch
    from heron.server.ingest.pipeline import Pipeline
    from heron.server.store.duckdb_store import DuckDBStore

    store = DuckDBStore(path, checkpoint_threshold_mb=checkpoint_mb).start()
    pipeline = Pipeline(store)
    t0 = time.perf_counter()
    futures = []
    n = 0
    for body in bodies:
        spans = decode_protobuf_batch(body).spans
        n += len(spans)
        futures.append(pipeline.submit_spans(1, spans))
        if len(futures) >= 16:
            for f in futures:
                f.result()
            futures.clear()
    for f in futures:
        f.result()
    stats = dict(store.stats)
    store.close()
    elapsed = time.perf_counter() - t0
    return {"spans": n, "fill_s": elapsed, "commits": stats["commits"]}


def db_facts(path: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        spans = con.execute("SELECT count(*) FROM spans").fetchone()[0]
        rollups = con.execute("SELECT count(*) FROM rollup_1m").fetchone()[0]
        size = con.execute("PRAGMA database_size").fetchone()
        names = [d[0] for d in con.description]
        info = dict(zip(names, size, strict=True))
    finally:
        con.close()
    wal = path.with_name(path.name + ".wal")
    return {
        "spans": spans,
        "rollup_rows": rollups,
        "file_bytes": path.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "used_blocks": info.get("used_blocks"),
        "free_blocks": info.get("free_blocks"),
        "block_size": info.get("block_size"),
    }


def variant(src: Path, dst_dir: Path, name: str) -> dict[str, Any]:
    """Copy the spans into a fresh file with one schema change, and measure it."""
    import duckdb

    dst = dst_dir / f"{name}.duckdb"
    con = duckdb.connect(str(dst))
    try:
        con.execute(f"ATTACH '{src}' AS src (READ_ONLY)")
        if name == "as_is":
            con.execute("CREATE TABLE spans AS SELECT * FROM src.spans")
            con.execute("CREATE INDEX spans_trace_id ON spans (trace_id)")
        elif name == "no_trace_index":
            con.execute("CREATE TABLE spans AS SELECT * FROM src.spans")
        elif name == "resource_table":
            con.execute(
                "CREATE TABLE resources AS SELECT hash(resource) AS id, any_value(resource) AS "
                "resource FROM src.spans GROUP BY ALL"
            )
            con.execute(
                "CREATE TABLE spans AS SELECT * EXCLUDE (resource), hash(resource) AS resource_id "
                "FROM src.spans"
            )
            con.execute("CREATE INDEX spans_trace_id ON spans (trace_id)")
        con.execute("CREATE TABLE rollup_1m AS SELECT * FROM src.rollup_1m")
        con.execute("DETACH src")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"variant": name, **db_facts(dst)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    t0 = time.perf_counter()
    bodies = make_bodies(args.spans)
    print(f"built {len(bodies)} requests in {time.perf_counter() - t0:.0f} s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="heron-bench-storage-"))
    results, variants = [], []
    try:
        for mb in args.checkpoint_mb:
            path = work / f"ckpt{mb}" / "heron.duckdb"
            fill = fill_store(path, bodies, mb)
            facts = db_facts(path)
            results.append(
                {
                    "checkpoint_mb": mb,
                    **fill,
                    **facts,
                    "bytes_per_span": facts["file_bytes"] / facts["spans"],
                }
            )
            print(f"  checkpoint {mb} MB: {results[-1]['bytes_per_span']:.1f} B/span", flush=True)
        if args.variants:
            best = min(results, key=lambda r: r["bytes_per_span"])
            src = work / f"ckpt{best['checkpoint_mb']}" / "heron.duckdb"
            for name in ("as_is", "no_trace_index", "resource_table"):
                v = variant(src, work, name)
                v["bytes_per_span"] = v["file_bytes"] / v["spans"]
                variants.append(v)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    body_bytes = sum(len(b) for b in bodies) / (len(bodies) * 512)
    c.print_table(
        f"Storage: {results[0]['spans']:,} realistic spans, DuckDB file after CHECKPOINT",
        [
            "checkpoint_threshold",
            "file MiB",
            "bytes/span",
            "used blocks",
            "free blocks",
            "used B/span",
            "rollup rows",
            "fill s",
            f"≤ {TARGET_BYTES_PER_SPAN} B/span",
        ],
        [
            [
                f"{r['checkpoint_mb']} MB",
                r["file_bytes"] / 2**20,
                r["bytes_per_span"],
                r["used_blocks"],
                r["free_blocks"],
                r["used_blocks"] * r["block_size"] / r["spans"],
                r["rollup_rows"],
                r["fill_s"],
                "yes" if r["bytes_per_span"] <= TARGET_BYTES_PER_SPAN else "no",
            ]
            for r in results
        ],
    )
    if variants:
        c.print_table(
            "Schema proposals, same rows (fresh file, one CHECKPOINT)",
            ["variant", "file MiB", "bytes/span"],
            [[v["variant"], v["file_bytes"] / 2**20, v["bytes_per_span"]] for v in variants],
        )
    print(f"\nOTLP protobuf on the wire: {body_bytes:.0f} B/span (uncompressed)")
    heron_default = next(
        (r for r in results if r["checkpoint_mb"] == args.server_default_mb), results[-1]
    )
    doc = {
        "bench": "storage",
        "machine": m,
        "args": vars(args),
        "results": results,
        "variants": variants,
        "wire_bytes_per_span": body_bytes,
        "target_bytes_per_span": TARGET_BYTES_PER_SPAN,
        "target_met": heron_default["bytes_per_span"] <= TARGET_BYTES_PER_SPAN,
    }
    c.write_json(args.out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--spans", type=int, default=1_000_000, help="spans to store (default 1,000,000)"
    )
    p.add_argument(
        "--checkpoint-mb",
        default="16,64",
        type=lambda s: [int(x) for x in s.split(",")],
        help="DuckDB checkpoint thresholds to compare, MB (default 16,64)",
    )
    p.add_argument(
        "--server-default-mb",
        type=int,
        default=64,
        help="the threshold heron serve uses, judged against the target (default 64)",
    )
    p.add_argument(
        "--no-variants",
        dest="variants",
        action="store_false",
        help="skip the schema-proposal variants",
    )
    p.add_argument("--keep", action="store_true", help="keep the DuckDB files")
    p.add_argument("--out", default="storage", help="JSON name under bench/out/ (default storage)")
    args = p.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
