"""Prometheus remote write into Heron: the real Prometheus from Debian scrapes a tiny
exporter on loopback (a counter that grows by 5 per scrape, a gauge, a classic
histogram) and remote-writes to ``heron serve``'s ``/api/v1/write``; the values are read
back through the store's query layer. Also the receiver's answers to bad requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cramjam
import httpx
import pytest

from heron.server.query._common import TimeRange
from heron.server.query.metrics import SeriesQuery, query_series
from heron.server.store.duckdb_store import DuckDBStore
from tests.conftest import HeronProcess, make_heron
from tests.support.prometheus import start_prometheus

STEP = 5


class Exporter(BaseHTTPRequestHandler):
    scrapes = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with Exporter.lock:
            Exporter.scrapes += 1
            n = Exporter.scrapes
        body = (
            "# HELP shop_orders_total Orders placed.\n"
            "# TYPE shop_orders_total counter\n"
            f'shop_orders_total{{region="eu"}} {STEP * n}\n'
            "# HELP shop_temperature_celsius Oven temperature.\n"
            "# TYPE shop_temperature_celsius gauge\n"
            "shop_temperature_celsius 21.5\n"
            "# HELP shop_latency_seconds Checkout latency.\n"
            "# TYPE shop_latency_seconds histogram\n"
            f'shop_latency_seconds_bucket{{le="0.1"}} {n}\n'
            f'shop_latency_seconds_bucket{{le="+Inf"}} {2 * n}\n'
            f"shop_latency_seconds_sum {0.5 * n}\n"
            f"shop_latency_seconds_count {2 * n}\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_real_prometheus_remote_writes_into_heron(tmp_path: Path, exporter: str) -> None:
    (tmp_path / "heron").mkdir()
    h = make_heron(tmp_path / "heron").start()
    prom = start_prometheus(
        tmp_path / "prom",
        scrape_configs=[
            {
                "job_name": "shopapp",
                "scrape_interval": "1s",
                "static_configs": [{"targets": [exporter]}],
            }
        ],
        remote_write=[
            {
                "url": f"{h.url}/api/v1/write",
                "authorization": {"credentials": h.key},
                "queue_config": {"batch_send_deadline": "1s", "max_backoff": "1s"},
                "metadata_config": {"send_interval": "1s"},
            }
        ],
    )
    try:
        prom.wait_for('shop_orders_total{region="eu"}', lambda v: v is not None and v >= 8 * STEP)
        time.sleep(4)  # a few more remote-write rounds
    finally:
        prom.stop()
        h.stop()
    assert "Traceback" not in h.log(), h.log()[-3000:]
    store = DuckDBStore(h.data_dir / "heron.duckdb").start()
    try:
        now = time.time_ns()
        tr = TimeRange(now - 600 * 10**9, now + 120 * 10**9)

        def run(metric: str, agg: str, **kw: object):  # type: ignore[no-untyped-def]
            return query_series(store, 1, SeriesQuery(metric, agg, step_s=60, **kw), tr)  # type: ignore[arg-type]

        orders = run("shop_orders_total", "sum")
        assert orders.kind == "counter"
        (series,) = orders.series
        assert series.labels == {}
        increase = sum(v for _, v in series.points if v is not None)
        # every scrape adds STEP; the first sample is only the baseline
        assert increase > 0 and increase % STEP == 0
        by = run("shop_orders_total", "sum", group_by=("service", "region", "instance"))
        assert [s.labels for s in by.series] == [
            {"service": "shopapp", "region": "eu", "instance": exporter}
        ]
        temp = run("shop_temperature_celsius", "avg")
        assert temp.kind == "gauge"
        assert {v for s in temp.series for _, v in s.points if v is not None} == {21.5}
        # a classic histogram stays as counter series: _bucket{le}, _sum, _count
        buckets = run("shop_latency_seconds_bucket", "sum", group_by=("le",))
        got = {s.labels["le"]: sum(v or 0 for _, v in s.points) for s in buckets.series}
        count = sum(
            v or 0 for s in run("shop_latency_seconds_count", "sum").series for _, v in s.points
        )
        assert set(got) == {"0.1", "+Inf"} and got["+Inf"] == 2 * got["0.1"] == count > 0
        up = run("up", "avg")
        assert {v for s in up.series for _, v in s.points if v is not None} == {1.0}
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeronProcess]:
    h = make_heron(tmp_path_factory.mktemp("rw")).start()
    yield h
    h.stop()


def rw(h: HeronProcess, body: bytes, **headers: str) -> httpx.Response:
    hdrs = {
        "content-type": "application/x-protobuf",
        "content-encoding": "snappy",
        "authorization": f"Bearer {h.key}",
        "x-prometheus-remote-write-version": "0.1.0",
        **headers,
    }
    return httpx.post(f"{h.url}/api/v1/write", content=body, headers=hdrs, timeout=30)


def test_remote_write_bad_requests(server: HeronProcess) -> None:
    r = rw(server, b"not snappy at all")
    assert r.status_code == 400 and "snappy" in r.text
    r = rw(server, bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff\xff\x0f junk")))
    assert r.status_code == 400 and "WriteRequest" in r.text
    r = rw(server, bytes(cramjam.snappy.compress_raw(b"")), authorization="Bearer nope")
    assert r.status_code == 401
    r = rw(server, b"", **{"content-encoding": "gzip"})
    assert r.status_code == 415 and "snappy" in r.text
    r = rw(server, bytes(cramjam.snappy.compress_raw(b"")))
    assert r.status_code == 204
    assert httpx.get(f"{server.url}/healthz").status_code == 200
