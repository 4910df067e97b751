"""The ingest pipeline: spans, events and logs are scrubbed, fingerprinted, grouped and
rolled up before the writer, which stores the write batches as given."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from heron._scrub import FILTERED
from heron.server.analyze.event_scrub import EventScrubber
from heron.server.analyze.fingerprint import sql_info
from heron.server.analyze.grouping import fingerprint
from heron.server.analyze.span_scrub import SpanScrubber
from heron.server.histogram import bucket_of
from heron.server.ingest.pipeline import Pipeline, prepare_events, prepare_spans
from heron.server.model import ErrorEvent, LogRecord, Span
from heron.server.model.rollup import merge_rollups, rollup_rows
from heron.server.model.span import SpanBatch
from heron.server.model.write import EventWrite, SpanWrite
from heron.server.store.base import QueueFull
from heron.server.store.duckdb_store import DuckDBStore

SECRET = "s3cr3t-CANARY-pipeline"
MINUTE_NS = 60 * 1_000_000_000
NOW_NS = 1_800_000_000 * 1_000_000_000


def span(name: str = "GET /orders", **kw: Any) -> Span:
    fields: dict[str, Any] = {
        "trace_id": b"\x02" * 16,
        "span_id": 1,
        "parent_id": 0,
        "start_ns": NOW_NS,
        "duration_ns": 5_000_000,
        "name": name,
        "kind": 2,
        "status": 0,
        "status_message": "",
        "service": "shop",
        "environment": "prod",
        "release": "1.0",
        "resource": {"service.name": "shop"},
    }
    return Span(**(fields | kw))


def query(statement: str, span_id: int = 2) -> Span:
    return span(
        statement,
        span_id=span_id,
        parent_id=1,
        kind=3,
        db_system="postgresql",
        db_statement=statement,
    )


def event(message: str = "boom") -> ErrorEvent:
    return ErrorEvent(
        event_id="b" * 32,
        time_ns=NOW_NS,
        received_ns=NOW_NS,
        service="shop",
        environment="prod",
        release="1.0",
        level="error",
        platform="python",
        source="sentry",
        exc_type="ValueError",
        message=message,
        culprit="",
        tags={"customer_pin": SECRET, "region": "eu"},
    )


def log(body: str) -> LogRecord:
    return LogRecord(
        time_ns=NOW_NS,
        observed_ns=NOW_NS,
        trace_id=None,
        span_id=0,
        severity_number=9,
        severity_text="INFO",
        body=body,
        service="shop",
        environment="prod",
        release="1.0",
        attributes={"customer_pin": SECRET},
    )


def test_spans_are_obfuscated_fingerprinted_scrubbed_and_rolled_up() -> None:
    spans = [
        span(f"GET /cb?token={SECRET}", attributes={"url.query": f"token={SECRET}"}),
        query("SELECT * FROM orders WHERE id = 42"),
        span("GET /orders", span_id=3, start_ns=NOW_NS + MINUTE_NS, status=2),
    ]
    write = prepare_spans(7, spans, SpanScrubber())
    assert write.project_id == 7 and len(write) == 3
    assert isinstance(write.spans, SpanBatch)
    assert SECRET not in repr(write.spans.rows)
    rows = list(write.spans)
    assert rows[0].name == "GET /cb"
    assert rows[0].attributes["url.query"] == f"token={FILTERED}"
    assert rows[1].db_statement == "SELECT * FROM orders WHERE id = ?"
    expected = sql_info("SELECT * FROM orders WHERE id = 42", "postgresql").fingerprint
    assert write.fingerprints == [None, expected, None]
    minute = NOW_NS // MINUTE_NS * 60
    bucket = bucket_of(5_000_000)
    assert write.rollups == {
        (7, minute, "shop", "prod", "1.0", "GET /cb", bucket): [1, 0, 5_000_000],
        (7, minute + 60, "shop", "prod", "1.0", "GET /orders", bucket): [1, 1, 5_000_000],
    }


def test_configured_keys_reach_spans_events_and_logs() -> None:
    pipeline = Pipeline(DuckDBStore(":memory:"), ["customer_pin"])
    write = prepare_spans(1, [span(attributes={"customer_pin": SECRET})], pipeline.span_scrubber)
    assert list(write.spans)[0].attributes == {"customer_pin": FILTERED}
    out = prepare_events(1, [event()], [log("hello")], pipeline.event_scrubber)
    assert out.events[0].tags == {"customer_pin": FILTERED, "region": "eu"}
    assert out.logs[0].attributes == {"customer_pin": FILTERED}


def test_events_are_scrubbed_then_grouped() -> None:
    ev = event(f"login failed with password={SECRET}")
    write = prepare_events(3, [ev], [log(f"token={SECRET}")], EventScrubber())
    assert isinstance(write, EventWrite) and write.project_id == 3 and len(write) == 2
    (out,) = write.events
    assert SECRET not in out.message
    assert out.issue_fingerprint == fingerprint(out) and out.issue_fingerprint
    assert write.logs[0].body == f"token={FILTERED}"


def test_merged_rollups_add_up() -> None:
    a: dict[tuple[Any, ...], list[int]] = {}
    b: dict[tuple[Any, ...], list[int]] = {}
    rollup_rows(1, [span()], a)
    rollup_rows(1, [span(status=2), span("GET /cart")], b)
    merged = merge_rollups([a, b])
    assert merged[next(iter(a))] == [2, 1, 10_000_000]
    assert sum(v[0] for v in merged.values()) == 3
    assert merge_rollups([a]) is a


def test_the_writer_stores_a_write_batch_as_given(tmp_path: Path) -> None:
    """The store computes nothing: what it persists is the batch's rows, fingerprints and
    rollups, even ones the pipeline would never have produced."""
    store = DuckDBStore(tmp_path / "h.duckdb", commit_interval_ms=0).start()
    try:
        batch = SpanBatch.from_spans([query("SELECT 1 FROM t WHERE x = 5")])
        key = (1, 60, "svc", "env", "rel", "made up", 3)
        write = SpanWrite(1, batch, [12345], {key: [4, 1, 99]})
        assert store.submit_spans(write).result(10) == 1
        assert store.read("SELECT db_statement, db_fingerprint FROM spans") == [
            ("SELECT 1 FROM t WHERE x = 5", 12345)
        ]
        rows = store.read("SELECT endpoint, count, errors, sum_ns FROM rollup_1m")
        assert rows == [("made up", 4, 1, 99)]
    finally:
        store.close()


def test_through_the_writer_rows_and_rollups_hold_no_secret(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb", commit_interval_ms=0).start()
    try:
        pipeline = Pipeline(store, ["customer_pin"])
        spans = [
            span(f"GET /cb?token={SECRET}", attributes={"customer_pin": SECRET}),
            query(f"SELECT * FROM users WHERE pin = '{SECRET}'"),  # noqa: S608 - span data
        ]
        assert pipeline.submit_spans(1, spans).result(10) == 2
        assert pipeline.submit_events(1, [event()], [log("hello")]).result(10) == 2
        dump = orjson.dumps(
            store.read("SELECT * FROM spans")
            + store.read("SELECT * FROM rollup_1m")
            + store.read("SELECT * FROM error_events")
            + store.read("SELECT * FROM logs"),
            default=repr,
        )
        assert SECRET.encode() not in dump
        assert store.read("SELECT count(*) FROM issues") == [(1,)]
        assert store.read("SELECT count(*) FROM spans WHERE db_fingerprint IS NOT NULL") == [(1,)]
    finally:
        store.close()


def test_a_full_queue_refuses_the_prepared_batch(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "q.duckdb", queue_max_spans=1, commit_interval_ms=0).start()
    try:
        pipeline = Pipeline(store)
        release = threading.Event()
        busy = store.submit_write(lambda con: release.wait(30))
        first = pipeline.submit_spans(1, [span()])
        with pytest.raises(QueueFull):
            pipeline.submit_spans(1, [span(span_id=5)])
        release.set()
        busy.result(30)
        assert first.result(30) == 1
    finally:
        store.close()


def test_a_metric_batch_that_cannot_convert_fails_alone(tmp_path: Path) -> None:
    """Metric batches become Arrow tables on the writer: one whose value is out of its
    column's range fails its own request only; the batch committed with it is stored."""
    from heron.server.model.metric import MetricPoint, MetricWrite

    def point(count: int, route: str) -> MetricPoint:
        return MetricPoint(
            1_700_000_000 * 10**9, "h", "histogram", "svc", {"r": route}, 1.5, count=count
        )

    store = DuckDBStore(tmp_path / "m.duckdb", commit_interval_ms=0).start()
    try:
        release = threading.Event()
        busy = store.submit_write(lambda con: release.wait(30))
        bad = store.submit_metrics(MetricWrite(1, [point(-1, "/bad")]))  # count is UBIGINT
        good = store.submit_metrics(MetricWrite(1, [point(3, "/good")]))
        release.set()  # both are queued: the writer takes them into one commit
        busy.result(30)
        assert good.result(30) == 1
        with pytest.raises(Exception, match="integer|overflow|range|negative"):
            bad.result(30)
        assert store.read("SELECT count, value FROM metric_points") == [(3, 1.5)]
        assert store.read("SELECT attributes FROM metric_series") == [('{"r":"/good"}',)]
        assert store._queued_points == 0
    finally:
        store.close()
