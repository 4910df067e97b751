"""Agent burst: spans ended in a tight loop, how many reach Heron, and what the queue costs.

Starts ``heron serve``, then for each batching setting runs a fresh Python process that
calls ``heron.init()`` and ends ``--spans`` spans as fast as it can (one attribute each),
then ``heron.flush()``. Reported per setting: seconds to end the spans and to flush,
spans exported and dropped (``heron.stats()``), the longest the queue got and the
process's peak RSS (sampled every 50 ms), so Heron's defaults are compared with the
OpenTelemetry SDK's in the same run.

    python bench/agent_burst.py --spans 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c
from ingest import KEY, Server

SETTINGS = {
    "heron defaults": {},
    "OTel SDK defaults": {
        "OTEL_BSP_MAX_QUEUE_SIZE": "2048",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512",
        "OTEL_BSP_SCHEDULE_DELAY": "5000",
    },
}

APP = """
import json, sys, threading, time
import psutil, heron
from opentelemetry import trace

heron.init(service="burst-bench", endpoint=sys.argv[1], key=sys.argv[2])
tracer = trace.get_tracer("burst")
proc, peak, done = psutil.Process(), {"queued": 0, "rss": 0}, threading.Event()

def sample():
    while not done.wait(0.05):
        peak["queued"] = max(peak["queued"], heron.stats().queued)
        peak["rss"] = max(peak["rss"], proc.memory_info().rss)

threading.Thread(target=sample, daemon=True).start()
rss0 = proc.memory_info().rss
t0 = time.perf_counter()
for i in range(int(sys.argv[3])):
    with tracer.start_as_current_span("burst-op", attributes={"i": i}):
        pass
t1 = time.perf_counter()
flushed = heron.flush(600)
t2 = time.perf_counter()
done.set()
s = heron.stats()
print(json.dumps({"end_s": t1 - t0, "flush_s": t2 - t1, "flushed": flushed,
                  "exported": s.exported, "dropped": s.dropped, "peak_queued": peak["queued"],
                  "rss_before_mib": rss0 / 2**20, "peak_rss_mib": peak["rss"] / 2**20}))
"""


def burst(server: Server, spans: int, env_extra: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
    env["PYTHONPATH"] = str(c.ROOT / "src")
    env.update(env_extra)
    url = f"http://127.0.0.1:{server.port}"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(APP), url, KEY, str(spans)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--spans", type=int, default=100_000)
    args = p.parse_args()
    m = c.machine()
    print(f"machine: {c.machine_line(m)}", flush=True)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="heron-burst-") as tmp:
        server = Server(Path(tmp), src=str(c.ROOT / "src")).start()
        try:
            for name, env in SETTINGS.items():
                runs[name] = burst(server, args.spans, env)
        finally:
            server.stop()
    c.print_table(
        f"{args.spans:,} spans ended in a tight loop, then heron.flush()",
        [
            "setting",
            "end (s)",
            "flush (s)",
            "exported",
            "dropped",
            "peak queue",
            "RSS before (MiB)",
            "peak RSS (MiB)",
        ],
        [
            (
                name,
                r["end_s"],
                r["flush_s"],
                r["exported"],
                r["dropped"],
                r["peak_queued"],
                r["rss_before_mib"],
                r["peak_rss_mib"],
            )
            for name, r in runs.items()
        ],
    )
    c.write_json("agent_burst", {"machine": m, "spans": args.spans, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
