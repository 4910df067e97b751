"""Disk full during ingest and checkpoints: 503 only for what was not stored, /healthz
says so, and once there is room again writes resume without a restart — every span
acknowledged stored exactly once.

The data directory is a small tmpfs this test mounts (it runs as root, as CI does); a
test that cannot mount fails.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from heron.server.ingest.pipeline import Pipeline
from heron.server.model import Span as ModelSpan
from heron.server.model.metric import MetricPoint, MetricWrite
from heron.server.store.base import StorageUnavailable
from heron.server.store.duckdb_store import DuckDBStore
from tests.conftest import HeronProcess, make_heron
from tests.e2e.test_auth_e2e import sign_in

pytestmark = pytest.mark.e2e

FS_SIZE_MB = 48
SPANS_PER_REQUEST = 200
CLIENTS = 3
PASSWORD = "disk-full-password"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE_MB}m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, f"this test needs root to mount a tmpfs: {r.stderr.strip()}"
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def _request(n: int = SPANS_PER_REQUEST) -> tuple[bytes, list[int]]:
    """One export request of ``n`` spans with fresh random ids; returns (body, span ids)."""
    tid = os.urandom(16)
    ids = [os.urandom(8) for _ in range(n)]
    now = time.time_ns()
    spans = [
        Span(
            trace_id=tid,
            span_id=sid,
            parent_span_id=b"" if i == 0 else ids[0],
            name="GET /fill" if i == 0 else f"SELECT {i}",
            kind=2 if i == 0 else 3,
            start_time_unix_nano=now + i,
            end_time_unix_nano=now + 1_000_000,
            attributes=[KeyValue(key="padding", value=AnyValue(string_value=os.urandom(32).hex()))],
        )
        for i, sid in enumerate(ids)
    ]
    name = KeyValue(key="service.name", value=AnyValue(string_value="disk-full"))
    req = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[name]), scope_spans=[ScopeSpans(spans=spans)]
            )
        ]
    )
    return req.SerializeToString(), [int.from_bytes(s, "big") for s in ids]


@dataclass
class Ingest:
    """Clients sending requests continuously. A request answered 503 is retried until
    it is acknowledged, except every fourth, which is abandoned (so it must not be
    stored)."""

    h: HeronProcess
    acked: list[int] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)
    answers: list[tuple[float, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        return threads

    def count(self, status: int, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for t, s, _ in self.answers if s == status and t >= since)

    def _client(self) -> None:
        refused = 0
        with httpx.Client(timeout=30) as c:
            while not self.stop.is_set():
                body, ids = _request()
                while True:
                    r = _post(self.h, body, c)
                    with self.lock:
                        self.answers.append(
                            (time.monotonic(), r.status_code, r.headers.get("retry-after"))
                        )
                    if r.status_code == 200:
                        with self.lock:
                            self.acked.extend(ids)
                        break
                    refused += 1
                    if r.status_code != 503 or refused % 4 == 0:
                        with self.lock:
                            self.abandoned.extend(ids)
                        break
                    time.sleep(0.05)


def _post(h: HeronProcess, body: bytes, client: httpx.Client | None = None) -> httpx.Response:
    headers = {"content-type": "application/x-protobuf", "x-heron-key": h.key}
    return (client or httpx).post(f"{h.url}/v1/traces", content=body, headers=headers, timeout=30)


def _fill(mnt: Path, leave_bytes: int) -> Path:
    """Fill the filesystem, then give back ``leave_bytes``."""
    filler = mnt / "filler"
    chunk = b"\0" * (1 << 20)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while os.write(fd, chunk):
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))
    return filler


def _reads_while(h: HeronProcess, seconds: float) -> list[httpx.Response]:
    """API reads, back to back, for ``seconds``."""
    answers = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answers.append(h.api("/api/v1/services"))
        answers.append(h.api("/api/v1/traces", service="disk-full", limit=5))
    return answers


def _health(h: HeronProcess) -> httpx.Response:
    return httpx.get(f"{h.url}/healthz", timeout=10)


def _wait(what: str, predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _stored(db: Path) -> dict[int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT span_id, count(*) FROM spans GROUP BY span_id").fetchall()
    finally:
        con.close()
    return {int(s): n for s, n in rows}


def test_disk_full_heals_without_restart_or_loss(small_fs: Path, tmp_path: Path) -> None:
    # A checkpoint after every commit: the full disk is found by checkpoints (and by
    # write-ahead log appends), not by either alone.
    h = make_heron(tmp_path, HERON_CHECKPOINT_THRESHOLD_MB="0")
    h.data_dir = small_fs / "heron-data"
    h.start()
    ingest = Ingest(h)
    threads = ingest.run()
    alive = False
    try:
        _wait("ingest to start", lambda: len(ingest.acked) >= 5 * SPANS_PER_REQUEST)
        filler = _fill(small_fs, leave_bytes=1 << 20)
        full_since = time.monotonic()

        _wait("503 answers", lambda: ingest.count(503, full_since) >= 3)
        _wait("/healthz to report the failure", lambda: _health(h).status_code == 503)
        health = _health(h).json()
        assert health["status"] == "storage failing"
        assert "No space left on device" in health["storage_error"], health
        # Clients keep retrying against the full disk; reads answer, or a clean 503.
        for read in _reads_while(h, 2.0):
            assert read.status_code in (200, 503), read.text
            if read.status_code == 503:
                assert read.json()["error"].startswith("storage unavailable: ")

        filler.unlink()
        freed = time.monotonic()
        _wait("/healthz to recover", lambda: _health(h).status_code == 200)
        health = _health(h).json()
        assert (health["status"], health["storage_error"]) == ("ok", None)
        _wait("ingest to resume", lambda: ingest.count(200, freed) >= 10)
        assert h.api("/api/v1/services").status_code == 200
        alive = h.proc is not None and h.proc.poll() is None
    finally:
        ingest.stop.set()
        for t in threads:
            t.join(30)
        log = h.log()
        h.stop()
    assert alive, "the server restarted or died"
    # A checkpoint failed (DuckDB then refuses every statement until it is reopened).
    assert "Failed to create checkpoint" in log and "reopened" in log, log[-3000:]

    answers = ingest.answers
    assert {s for _, s, _ in answers} <= {200, 503}, "only 200 and 503 are expected"
    assert all(retry for _, s, retry in answers if s == 503), "a 503 without Retry-After"
    stored = _stored(h.data_dir / "heron.duckdb")
    twice = [s for s, n in stored.items() if n > 1]
    assert not twice, f"{len(twice)} spans stored more than once"
    lost = [s for s in ingest.acked if s not in stored]
    assert not lost, f"{len(lost)} acknowledged spans lost"
    phantom = [s for s in ingest.abandoned if s in stored]
    assert not phantom, f"{len(phantom)} spans answered 503 (and never retried) were stored"
    assert len(stored) == len(ingest.acked)
    assert ingest.abandoned, "no request was refused: the disk never filled"


def _span() -> ModelSpan:
    return ModelSpan(
        trace_id=os.urandom(16),
        span_id=int.from_bytes(os.urandom(8), "big") | 1,
        parent_id=0,
        start_ns=time.time_ns(),
        duration_ns=1_000_000,
        name="GET /a",
        kind=2,
        status=0,
        status_message="",
        service="svc",
        environment="prod",
        release="1",
        http_method="GET",
        http_route="/a",
        http_status=200,
        attributes={"padding": os.urandom(200).hex()},
    )


def test_commit_is_acknowledged_when_only_the_checkpoint_after_it_fails(small_fs: Path) -> None:
    """DuckDB's COMMIT can write the write-ahead log and then fail in its automatic
    checkpoint: that write is durable and must be acknowledged, not answered 503."""
    store = DuckDBStore(small_fs / "heron.duckdb", checkpoint_threshold_mb=0).start()
    try:
        Pipeline(store).submit_spans(1, [_span() for _ in range(2000)]).result(30)
        # Room for a small write-ahead log entry, not for a checkpoint's new blocks.
        filler = _fill(small_fs, leave_bytes=64 << 10)
        one = _span()
        assert Pipeline(store).submit_spans(1, [one]).result(30) == 1
        assert "autocheckpoint failed" in (store.health() or ""), store.health()
        with pytest.raises(StorageUnavailable):  # DuckDB refuses reads until reopened
            store.read("SELECT count(*) FROM spans")
        acked = 0
        with pytest.raises(StorageUnavailable):  # until a write fails: 503 for it
            for _ in range(20):
                acked += Pipeline(store).submit_spans(1, [_span() for _ in range(500)]).result(30)

        filler.unlink()
        _wait("the store to heal", lambda: store.health() is None, timeout=10)
        later = _span()
        assert Pipeline(store).submit_spans(1, [later]).result(30) == 1
        ids = [one.span_id, later.span_id]
        rows = store.read("SELECT count(*) FROM spans WHERE span_id IN (?, ?)", ids)
        assert rows == [(2,)]
    finally:
        store.close()
    assert sum(_stored(small_fs / "heron.duckdb").values()) == 2002 + acked


def test_pages_and_api_answer_503_while_the_database_is_reopened(
    small_fs: Path, tmp_path: Path
) -> None:
    """After a failed checkpoint DuckDB refuses every statement until the file is opened
    again: reads meanwhile are a clean 503 (JSON for the API, a page for the UI)."""
    h = make_heron(tmp_path, HERON_CHECKPOINT_THRESHOLD_MB="0", HERON_ADMIN_PASSWORD=PASSWORD)
    h.data_dir = small_fs / "heron-data"
    h.start()
    try:
        with httpx.Client(base_url=h.url, timeout=30) as web:
            sign_in(web, "admin", PASSWORD)
            assert _post(h, _request()[0]).status_code == 200
            filler = _fill(small_fs, leave_bytes=64 << 10)
            # Room for this request's log entry, not for the checkpoint after it.
            body, ids = _request(1)
            assert _post(h, body).status_code == 200

            api = h.api("/api/v1/services")
            assert api.status_code == 503, api.text
            assert api.headers["retry-after"] == "5"
            assert api.json()["error"].startswith("storage unavailable: ")
            page = web.get("/", headers={"accept": "text/html"})
            assert page.status_code == 503, page.text
            assert "Storage is unavailable" in page.text and page.headers["retry-after"]
            health = _health(h)
            assert health.status_code == 503
            assert "autocheckpoint failed" in health.json()["storage_error"]

            filler.unlink()
            _wait("/healthz to recover", lambda: _health(h).status_code == 200, timeout=10)
            assert web.get("/", headers={"accept": "text/html"}).status_code == 200
            services = h.api("/api/v1/services")
            assert services.status_code == 200, services.text
    finally:
        h.stop()
    assert _stored(h.data_dir / "heron.duckdb")[ids[0]] == 1


def _metric_write(first_series: int, n: int) -> tuple[MetricWrite, set[int]]:
    """``n`` gauge points, one per new series (labels padded so the disk fills fast)."""
    now = time.time_ns()
    points = []
    for i in range(first_series, first_series + n):
        p = MetricPoint(
            time_ns=now,
            name="disk.fill",
            kind="gauge",
            service="svc",
            attributes={"i": str(i), "padding": os.urandom(100).hex()},
            value=float(i),
        )
        p.key()
        points.append(p)
    return MetricWrite(1, points), {p.series for p in points}


def test_metric_points_on_a_full_disk_fail_then_resume_without_loss(small_fs: Path) -> None:
    """A metrics commit that cannot be written fails its writes (StorageUnavailable, the
    503 of /v1/metrics); once there is room the same store stores again; every point
    acknowledged is stored once and none that failed."""
    db = small_fs / "heron.duckdb"
    store = DuckDBStore(db, commit_interval_ms=0, checkpoint_threshold_mb=0).start()
    acked: set[int] = set()
    failed: set[int] = set()
    try:
        write, keys = _metric_write(0, 500)
        assert store.submit_metrics(write).result(30) == 500
        acked |= keys
        filler = _fill(small_fs, leave_bytes=256 << 10)
        first = 500
        for _ in range(50):  # until a commit finds the disk full
            write, keys = _metric_write(first, 2_000)
            first += 2_000
            try:
                store.submit_metrics(write).result(30)
                acked |= keys
            except StorageUnavailable:
                failed |= keys
                break
        assert failed, "no metrics commit failed: the disk never filled"
        assert store.health() is not None
        filler.unlink()
        _wait("the store to heal", lambda: store.health() is None, timeout=30)
        write, keys = _metric_write(first, 500)
        assert store.submit_metrics(write).result(30) == 500
        acked |= keys
    finally:
        store.close()
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT series, count(*) FROM metric_points GROUP BY series").fetchall()
    finally:
        con.close()
    stored = {int(s): n for s, n in rows}
    assert [s for s, n in stored.items() if n > 1] == [], "points stored twice"
    assert acked <= set(stored), f"{len(acked - set(stored))} acknowledged points lost"
    assert not (failed & set(stored)), "points of a failed commit were stored"
