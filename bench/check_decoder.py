"""Check that the ingest fast path stores exactly what the reference decoder would.

``decode_protobuf_batch`` (raw-bytes walker + caches, used by ``POST /v1/traces``) must
produce the same rows, rejections and rollups as ``decode_protobuf`` (upb objects →
``Span``) for realistic requests and for awkward ones: events, links, array/kvlist/bytes
values, old attribute names, duplicate keys, invalid ids/times/kinds, unknown fields,
non-canonical field order, status before attributes, big varints.

    python bench/check_decoder.py --requests 300
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

from heron.server.analyze.span_scrub import SpanScrubber
from heron.server.ingest.otlp import decode_protobuf, decode_protobuf_batch
from heron.server.ingest.pipeline import prepare_spans
from heron.server.store.duckdb_store import spans_to_arrow


def _awkward_request(rng: random.Random) -> Any:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    for _ in range(rng.randint(1, 3)):
        rs = req.resource_spans.add()
        if rng.random() < 0.8:
            c._add_attrs(rs.resource.attributes, c.resource_attrs(rng.choice(list(c.SERVICES)), 0))
        if rng.random() < 0.2:
            kv = rs.resource.attributes.add()
            kv.key = "deployment.environment"
            kv.value.string_value = "staging"
        for _ in range(rng.randint(1, 2)):
            ss = rs.scope_spans.add()
            if rng.random() < 0.7:
                ss.scope.name = rng.choice(["flask", "psycopg", ""])
            for _ in range(rng.randint(0, 12)):
                _awkward_span(rng, ss.spans.add())
    return req


def _awkward_span(rng: random.Random, s: Any) -> None:
    def maybe(p: float) -> bool:
        return rng.random() < p

    s.trace_id = bytes(16) if maybe(0.03) else rng.randbytes(rng.choice([16, 16, 16, 15]))
    s.span_id = bytes(8) if maybe(0.03) else rng.randbytes(rng.choice([8, 8, 8, 9]))
    if maybe(0.7):
        s.parent_span_id = rng.randbytes(rng.choice([8, 8, 8, 4]))
    if maybe(0.1):
        s.trace_state = "vendor=x"
    s.name = rng.choice(["GET /x", "SELECT", "", "ünïcödé", "x" * 200])
    s.kind = rng.choice([0, 1, 2, 3, 4, 5, 5, 2, 9])
    start = rng.choice([c.now_ns(), 0, 1, 2**63 - 10])
    s.start_time_unix_nano = start
    s.end_time_unix_nano = max(0, start + rng.randint(-5, 10**9))
    keys = [
        "http.request.method",
        "http.method",
        "http.route",
        "http.response.status_code",
        "http.status_code",
        "db.system.name",
        "db.system",
        "db.query.text",
        "db.statement",
        "url.path",
        "server.port",
        "flag",
        "ratio",
        "blob",
        "list",
        "map",
        "empty",
    ]
    for _ in range(rng.randint(0, 12)):
        kv = s.attributes.add()
        kv.key = rng.choice(keys)
        kind = rng.randint(0, 8)
        if kind == 0:
            kv.value.string_value = rng.choice(["GET", "/users/{id}", "postgresql", "x" * 300])
        elif kind == 1:
            kv.value.int_value = rng.choice([200, 503, -1, 70000, 2**62])
        elif kind == 2:
            kv.value.bool_value = maybe(0.5)
        elif kind == 3:
            kv.value.double_value = rng.choice([0.5, 200.0, float("inf")])
        elif kind == 4:
            kv.value.bytes_value = b"\x00\x01\xff"
        elif kind == 5:
            kv.value.array_value.values.add().string_value = "a"
            kv.value.array_value.values.add().int_value = 3
        elif kind == 6:
            sub = kv.value.kvlist_value.values.add()
            sub.key, sub.value.string_value = "k", "v"
        elif kind == 7:
            kv.value.string_value = str(rng.randint(100, 599))
        # kind 8: value left empty (no oneof set)
    if maybe(0.2):
        e = s.events.add()
        e.time_unix_nano, e.name = s.start_time_unix_nano, "exception"
        c._add_attrs(e.attributes, {"exception.type": "ValueError", "exception.message": "bad"})
    if maybe(0.1):
        ln = s.links.add()
        ln.trace_id, ln.span_id = rng.randbytes(16), rng.randbytes(8)
    if maybe(0.6):
        s.status.code = rng.choice([0, 1, 2, 7])
        if maybe(0.5):
            s.status.message = "boom"
    if maybe(0.1):
        s.dropped_attributes_count = 3
    if maybe(0.1):
        s.flags = 0x301


def _mutate(rng: random.Random, body: bytes) -> bytes:
    """Wire-level variations the protobuf library would not produce itself."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest.FromString(body)
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                raw = s.SerializeToString()
                fields = _split_fields(raw)
                if rng.random() < 0.3:
                    rng.shuffle(fields)  # non-canonical order
                if rng.random() < 0.2:
                    fields.insert(
                        rng.randrange(len(fields) + 1), b"\xf8\x3e\x05"
                    )  # unknown varint field 1007
                if rng.random() < 0.1:
                    fields.append(b"\x7a\x02\x18\x02")  # a second status: code=ERROR, merged
                s.Clear()
                s.MergeFromString(b"".join(fields))
    return req.SerializeToString()


def _split_fields(raw: bytes) -> list[bytes]:
    from heron.server.ingest.otlp.wire import _skip, _varint

    out, i = [], 0
    while i < len(raw):
        start = i
        tag, i = _varint(raw, i)
        i = _skip(raw, i, tag & 7)
        out.append(raw[start:i])
    return out


def same(body: bytes) -> tuple[bool, str]:
    ref = decode_protobuf(body)
    fast = decode_protobuf_batch(body)
    if (ref.rejected, ref.errors) != (fast.rejected, fast.errors):
        return (
            False,
            f"rejections differ: {ref.rejected} {ref.errors} vs {fast.rejected} {fast.errors}",
        )
    if not ref.spans and not len(fast.spans):
        return True, ""
    wa = prepare_spans(1, ref.spans, SpanScrubber())
    wb = prepare_spans(1, fast.spans, SpanScrubber())
    a, b = spans_to_arrow(wa), spans_to_arrow(wb)
    if not a.equals(b):
        cols = [n for n in a.column_names if not a.column(n).equals(b.column(n))]
        return False, f"rows differ in columns {cols}"
    if wa.rollups != wb.rollups:
        return False, "rollups differ"
    return True, ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests", type=int, default=300, help="requests of each kind (default 300)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    failures = 0
    now = c.now_ns()
    cases = 0
    for i in range(args.requests):
        bodies = [
            c.build_request(
                c.TraceGenerator(seed=i), rng.choice([1, 10, 512]), now - c.NS, now
            ).SerializeToString(),
            _awkward_request(rng).SerializeToString(),
        ]
        bodies.append(_mutate(rng, bodies[1]))
        for body in bodies:
            cases += 1
            ok, why = same(body)
            if not ok:
                failures += 1
                if failures <= 5:
                    print(f"MISMATCH (request {i}): {why}")
    print(f"{cases - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
