"""Same-run old/new: server CPU per ``POST /v1/traces`` request, rounds alternating.

Starts two ``heron serve`` (a baseline source tree's ``src/`` and this tree's), warms
both, then runs ``rounds`` rounds; each round posts ``requests`` protobuf requests of
``spans`` spans (0: an empty body, auth + HTTP only) from 4 keep-alive clients to one
server then the other (order swapped every round). Prints per side the median server
CPU µs/request (whole process, and the event-loop thread alone) and the median of the
per-round new/old ratios. Per-request CPU, not throughput: small requests are bound by
the writer's commits, not by the event loop.

    python bench/ingest_route_cpu.py /tmp/base/src 0 5000 12
    python bench/ingest_route_cpu.py /tmp/base/src 10 500 10
"""

from __future__ import annotations

import http.client
import statistics as st
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest as b

HERE = str(Path(__file__).resolve().parent.parent / "src")


def load(port: int, bodies: list[tuple[bytes, bytes]] | None, n_req: int, threads: int = 4) -> None:
    headers = {"Content-Type": "application/x-protobuf", "Authorization": "Bearer " + b.KEY}

    def worker(ti: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(n_req // threads):
            body = b.fresh_body(bodies[i % len(bodies)], ti, i) if bodies else b""
            conn.request("POST", "/v1/traces", body, headers)
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
        conn.close()

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def main() -> None:
    base, spans, n_req, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    tmp = Path(tempfile.mkdtemp(prefix="route-cpu-"))
    sides = {}
    for name, src in (("old", base), ("new", HERE)):
        (tmp / name).mkdir()
        s = b.Server(tmp / name, src=src).start()
        assert s.proc is not None
        sides[name] = (s, b.ProcessMonitor(s.proc.pid), s.proc.pid)
    bodies = b.build_bodies(0, 8, spans) if spans else None
    res: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    try:
        for s, _, _ in sides.values():
            load(s.port, bodies, 200)
        for r in range(rounds):
            for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                s, m, pid = sides[name]
                c0, l0 = m.cpu(), m.thread_cpu()[pid]
                load(s.port, bodies, n_req)
                c1, l1 = m.cpu(), m.thread_cpu()[pid]
                res[name].append(((c1 - c0) / n_req * 1e6, (l1 - l0) / n_req * 1e6))
    finally:
        for s, _, _ in sides.values():
            s.stop()
    for i, what in enumerate(("process", "event-loop thread")):
        for name, v in res.items():
            print(f"{name}: {what} CPU µs/request median {st.median(x[i] for x in v):.0f}")
        ratio = st.median(a[i] / o[i] for a, o in zip(res["new"], res["old"], strict=True))
        print(f"spans={spans} new/old {what} CPU per request (median per-round ratio): {ratio:.3f}")


if __name__ == "__main__":
    main()
