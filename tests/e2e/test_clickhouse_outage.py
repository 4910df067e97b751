"""ClickHouse goes away under a running ``heron serve`` and comes back.

A real server process on the ClickHouse backend, talking over HTTP to a ClickHouse
(``tests/support/chdb_server.py``: the chdb engine behind ClickHouse's HTTP interface)
that the test stops and restarts on the same port and data directory. While it is down,
ingest answers 503 with ``Retry-After`` (nothing is acknowledged that was not stored),
reads answer 503 as JSON and ``/healthz`` says why; when it is back, the same server
stores and answers again without a restart, and what was acknowledged before is there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.conftest import HeronProcess, free_port, make_heron

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


class ClickHouse:
    """The test ClickHouse server as a process that can be stopped and started again."""

    def __init__(self, data: Path, log: Path) -> None:
        self.port, self.data, self.log = free_port(), data, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.chdb_server"]
                + ["--port", str(self.port), "--path", str(self.data)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def export(service: str) -> tuple[bytes, str]:
    """A protobuf export request of one two-span trace, timed now; (body, trace id)."""
    tid, root = os.urandom(16), os.urandom(8)
    now = time.time_ns()
    route = KeyValue(key="http.route", value=AnyValue(string_value="/pay"))
    spans = [
        Span(trace_id=tid, span_id=root, name="POST /pay", kind=2, attributes=[route],
             start_time_unix_nano=now - 5_000_000, end_time_unix_nano=now),
        Span(trace_id=tid, span_id=os.urandom(8), parent_span_id=root, name="charge", kind=3,
             start_time_unix_nano=now - 4_000_000, end_time_unix_nano=now - 1_000_000),
    ]  # fmt: skip
    name = KeyValue(key="service.name", value=AnyValue(string_value=service))
    req = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[name]), scope_spans=[ScopeSpans(spans=spans)]
            )
        ]
    )
    return req.SerializeToString(), tid.hex()


def post(h: HeronProcess, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{h.url}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf", "x-heron-key": h.key},
        timeout=30,
    )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ClickHouse, HeronProcess]]:
    ch = ClickHouse(tmp_path / "ch-data", tmp_path / "ch.log")
    ch.start()
    h = make_heron(tmp_path, HERON_STORAGE_BACKEND="clickhouse", HERON_CLICKHOUSE_URL=ch.url)
    try:
        h.start(timeout=60)
        yield ch, h
    finally:
        h.stop()
        ch.stop()


def test_clickhouse_down_is_503_and_the_server_recovers_by_itself(
    setup: tuple[ClickHouse, HeronProcess],
) -> None:
    ch, h = setup
    body, before = export("payments")
    assert post(h, body).status_code == 200  # acknowledged: in ClickHouse

    ch.stop()
    body_down, during = export("payments")
    r = post(h, body_down)
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    read = h.api("/api/v1/services")
    assert read.status_code == 503 and "error" in read.json()
    health = httpx.get(f"{h.url}/healthz", timeout=10)
    assert health.status_code == 503 and "ClickHouse" in health.text

    ch.start()  # same port, same data: the server finds it again without a restart
    deadline = time.monotonic() + 60
    while (r := post(h, body_down)).status_code != 200:  # what a client's retry does
        assert r.status_code == 503 and time.monotonic() < deadline, r.text
        time.sleep(0.5)
    assert httpx.get(f"{h.url}/healthz", timeout=10).status_code == 200
    for trace_id in (before, during):
        trace = h.wait_for(f"/api/v1/traces/{trace_id}", lambda j: len(j["spans"]) == 2)
        assert {s["name"] for s in trace["spans"]} == {"POST /pay", "charge"}
    services = h.wait_for("/api/v1/services", lambda j: bool(j["services"]))
    assert [(s["service"], s["requests"]) for s in services["services"]] == [("payments", 2)]
