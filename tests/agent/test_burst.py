"""Bursts: the default queue holds 100,000 spans made in a tight loop; drops warn once.

The burst runs ``heron.init()`` in a real process against a real ``heron serve`` and
counts what the server stored; the drop tests give the queue no room on purpose.
"""

from __future__ import annotations

import json
import logging
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from heron.agent.exporter import CountingSpanExporter
from heron.agent.processor import (
    FULL_QUEUE_WARNING_INTERVAL_S,
    CountingBatchSpanProcessor,
    slim,
)
from tests.agent.helpers import agent_env, closed_port, python

pytestmark = pytest.mark.e2e

BURST = 100_000

# Spans as fast as the loop can end them, then the stats once everything is flushed.
BURST_APP = """
import json, sys, heron
from opentelemetry import trace
heron.init(service="burst", endpoint=sys.argv[1], key=sys.argv[2])
tracer = trace.get_tracer("burst")
for i in range(int(sys.argv[3])):
    with tracer.start_as_current_span("burst-op", attributes={"i": i}):
        pass
flushed = heron.flush(300)
print(json.dumps({"flushed": flushed, "stats": heron.stats().__dict__}))
"""


def run_burst(heron: Any, tmp_path: Path, n: int, **env: str) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        python("-c", textwrap.dedent(BURST_APP), heron.url, heron.key, str(n)),
        env={**agent_env(tmp_path, **env), "OTEL_BSP_SCHEDULE_DELAY": "1000"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr, done.stderr
    return json.loads(done.stdout), done.stderr


def stored(heron: Any) -> tuple[int, int]:
    """Spans of service "burst" in the stopped server's file: all, and distinct ids."""
    heron.stop()
    con = duckdb.connect(str(heron.data_dir / "heron.duckdb"), read_only=True)
    try:
        row = con.execute(
            "SELECT count(*), count(DISTINCT span_id) FROM spans WHERE service = 'burst'"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), int(row[1])


def test_default_queue_holds_a_burst_of_100k_spans(heron_server: Any, tmp_path: Path) -> None:
    result, stderr = run_burst(heron_server, tmp_path, BURST)
    stats = result["stats"]
    assert result["flushed"] is True, stats
    assert (stats["exported"], stats["dropped"], stats["queued"]) == (BURST, 0, 0), stats
    assert "queue is full" not in stderr and "dropping" not in stderr.lower(), stderr
    assert stored(heron_server) == (BURST, BURST)


def test_a_tiny_queue_drops_counts_and_warns_once(heron_server: Any, tmp_path: Path) -> None:
    n = 5000
    result, stderr = run_burst(heron_server, tmp_path, n, OTEL_BSP_MAX_QUEUE_SIZE="50")
    stats = result["stats"]
    assert stats["dropped"] > 0, stats
    assert stats["exported"] + stats["dropped"] == n and stats["queued"] == 0, stats
    assert stderr.count("the span queue is full (50 spans waiting for export)") == 1, stderr
    assert "heron.stats().dropped" in stderr
    assert "Queue full" not in stderr  # the SDK's own message is not repeated
    assert stored(heron_server) == (stats["exported"], stats["exported"])


def test_the_full_queue_warning_repeats_at_most_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1000.0]
    # Nothing listens: the worker is stuck retrying its first batch and the queue fills.
    exporter = CountingSpanExporter(
        lambda: OTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces", timeout=0.5
        )
    )
    processor = CountingBatchSpanProcessor(
        exporter,
        max_queue_size=10,
        max_export_batch_size=10,
        schedule_delay_millis=60_000,
        clock=lambda: now[0],
    )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")

    def emit(n: int) -> None:
        for _ in range(n):
            with tracer.start_as_current_span("op"):
                pass

    def warnings() -> int:
        return sum("span queue is full" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="heron.agent"):
        emit(100)
        assert warnings() == 1
        now[0] += FULL_QUEUE_WARNING_INTERVAL_S - 1
        emit(100)
        assert warnings() == 1
        now[0] += 1
        emit(100)
        assert warnings() == 2
    assert processor.queued() == 10
    exporter.shutdown()  # aborts the retries
    processor.shutdown()
    # 300 spans ended: 10 still queued, at most 10 in the stuck export, the rest dropped.
    assert processor.queue_dropped(exporter.stats.received) >= 280


def test_a_slimmed_span_exports_the_same_and_keeps_real_events() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    ended: list[ReadableSpan] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            ended.append(span)

    provider.add_span_processor(Keep())
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("plain"):
        pass
    with tracer.start_as_current_span("with-event") as span:
        span.add_event("cache miss", {"key": "k"})
    plain, eventful = (slim(s) for s in ended)
    assert plain._events == () and plain._links == ()
    assert (plain.events, plain.links, plain.dropped_events, plain.dropped_links) == ((), (), 0, 0)
    assert [e.name for e in eventful.events] == ["cache miss"]
    assert eventful._events != ()  # a list with content is kept as the SDK made it
    # The OTLP encoding reads both the same way.
    encoded = encode_spans([plain, eventful]).resource_spans[0].scope_spans[0].spans
    assert [len(s.events) for s in encoded] == [0, 1]
