"""A real Prometheus (Debian's) scrapes a real ``heron serve``'s ``/metrics`` with the API
token; the values are read back through Prometheus's HTTP API."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import HeronProcess
from tests.server.test_metrics_endpoint import otlp, span
from tests.support.prometheus import heron_job, promtool_check_metrics, start_prometheus

pytestmark = pytest.mark.e2e

N = 7
SERIES = '{service="shop",environment="prod",method="GET",route="/orders"}'


def post_spans(h: HeronProcess, n: int) -> None:
    """``n`` requests of 20 ms, one span each, dated now (after the server started)."""
    now = time.time_ns()
    for i in range(n):
        r = httpx.post(
            f"{h.url}/v1/traces",
            content=otlp([span(start_ns=now + i, duration_ms=20)]),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {h.key}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text


def test_prometheus_scrapes_heron_with_the_api_token(
    heron_server: HeronProcess, tmp_path: Path
) -> None:
    h = heron_server
    assert httpx.get(f"{h.url}/metrics", timeout=10).status_code == 401
    post_spans(h, N)
    text = httpx.get(
        f"{h.url}/metrics", headers={"Authorization": f"Bearer {h.token}"}, timeout=10
    ).text
    rc, out = promtool_check_metrics(text)
    assert rc == 0 and out == "", out

    prom = start_prometheus(
        tmp_path / "prometheus",
        scrape_configs=[
            heron_job("heron", h.url, token=h.token),
            heron_job("heron-no-token", h.url, token=None),
        ],
    )
    try:
        assert prom.wait_for('up{job="heron"}', lambda v: v == 1) == 1
        assert prom.wait_for('up{job="heron-no-token"}', lambda v: v is not None) == 0
        assert prom.wait_for(f"http_server_requests_total{SERIES}", lambda v: v == N) == N
        assert prom.value(f"http_server_errors_total{SERIES}") == 0
        hist = "http_server_request_duration_seconds"
        assert prom.value(f'{hist}_bucket{{route="/orders",le="0.01"}}') == 0
        assert prom.value(f'{hist}_bucket{{route="/orders",le="0.025"}}') == N
        assert prom.value(f'{hist}_count{{route="/orders"}}') == N
        assert prom.value(f'{hist}_sum{{route="/orders"}}') == pytest.approx(N * 0.02)
        p50 = prom.value(f'histogram_quantile(0.5, {hist}_bucket{{route="/orders"}})')
        assert p50 is not None and 0.01 < p50 <= 0.025
        spans = 'heron_store_committed_items_total{job="heron",kind="spans"}'
        assert prom.value(spans) == N
        ingest = 'heron_http_requests_total{job="heron",route="/v1/traces",code="200"}'
        assert prom.value(ingest) == N
        assert prom.value('heron_store_up{job="heron"}') == 1
        assert (prom.value('process_resident_memory_bytes{job="heron"}') or 0) > 10 * 2**20
        # More requests: the counter grows by exactly as many.
        post_spans(h, 3)
        assert prom.wait_for(f"http_server_requests_total{SERIES}", lambda v: v == N + 3) == N + 3
    finally:
        prom.stop()
