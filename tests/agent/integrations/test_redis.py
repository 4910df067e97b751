"""redis integration, against the real Redis server: commands and pipelines, no values."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from heron.agent.integrations import redis as integration
from tests.agent.dbs import REDIS, attrs, canary, client_spans, exported_text, reach, unique


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    c = redis.Redis(**REDIS)  # created before setup(): covered all the same
    reach("Redis", c.ping)
    integration.setup()
    integration.setup()  # idempotent
    yield c
    integration.teardown()
    c.close()


def test_commands_become_client_spans_without_their_arguments(
    client: redis.Redis, spans: InMemorySpanExporter
) -> None:
    key, secret = unique("heron:key"), canary()
    client.set(key, secret, ex=60)
    assert client.get(key) == secret.encode()
    client.delete(key)

    set_, get, delete = client_spans(spans)
    assert (set_.name, get.name, delete.name) == ("SET", "GET", "DEL")
    assert set_.kind is SpanKind.CLIENT
    a = attrs(set_)
    assert a["db.system.name"] == "redis"
    assert a["db.operation.name"] == "SET"
    assert a["db.namespace"] == "0"
    assert a["db.query.text"] == "SET ? ? ? ?"
    assert (a["server.address"], a["server.port"]) == ("127.0.0.1", 6379)
    assert secret not in exported_text(spans) and key not in exported_text(spans)


def test_pipelines_are_one_span(client: redis.Redis, spans: InMemorySpanExporter) -> None:
    key, secret = unique("heron:key"), canary()
    with client.pipeline() as pipe:
        pipe.set(key, secret).get(key).delete(key)
        assert pipe.execute()[1] == secret.encode()
    (span,) = client_spans(spans)
    assert span.name == "SET GET DEL"
    assert attrs(span)["db.namespace"] == "0"
    assert secret not in exported_text(spans)


def test_async_client(client: redis.Redis, spans: InMemorySpanExporter) -> None:
    async def work() -> bytes | None:
        async with redis.asyncio.Redis(**REDIS) as aclient:
            await aclient.set("heron:async", "v", ex=60)
            return await aclient.get("heron:async")

    assert asyncio.run(work()) == b"v"
    assert [s.name for s in client_spans(spans)] == ["SET", "GET"]
    assert attrs(client_spans(spans)[1])["db.operation.name"] == "GET"
