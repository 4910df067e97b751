"""SIGKILL during ingest: every span whose request got 200 survives a restart."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import make_heron
from tests.e2e.otlp_util import make_request, stored_trace_counts


def test_acknowledged_spans_survive_sigkill(tmp_path: Path) -> None:
    h = make_heron(tmp_path).start()
    acked: dict[bytes, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                body, tid = make_request(50)
                try:
                    r = c.post(
                        f"{h.url}/v1/traces",
                        content=body,
                        headers={"content-type": "application/x-protobuf", "x-heron-key": h.key},
                    )
                except httpx.HTTPError:
                    continue  # the server died mid-request: not acknowledged
                if r.status_code == 200:
                    with lock:
                        acked[tid] = 50

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    h.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) >= 40, "ingest made too little progress to test anything"

    h.start()  # replays the write-ahead log
    assert httpx.get(f"{h.url}/healthz").status_code == 200
    h.stop()
    stored = stored_trace_counts(h.data_dir)
    missing = [tid.hex() for tid in acked if stored.get(tid) != 50]
    assert not missing, f"{len(missing)} acknowledged traces lost or partial after SIGKILL"
