"""The SDK pipeline heron builds (``Agent``), in-process and not installed globally."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from heron.agent.config import resolve_config
from heron.agent.otel import Agent
from tests.agent.helpers import closed_port, wait_spans


def make_agent(endpoint: str, **environ: str) -> Agent:
    return Agent(
        resolve_config(
            service="pipeline", endpoint=endpoint, key=environ.pop("key", None), environ=environ
        )
    )


def emit(agent: Agent, n: int) -> None:
    tracer = agent.provider.get_tracer("test")
    for i in range(n):
        with tracer.start_as_current_span(f"op-{i}"):
            pass


def eventually(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_spans_reach_heron_with_the_resource(heron_server: Any) -> None:
    agent = make_agent(heron_server.url, key=heron_server.key)
    emit(agent, 5)
    assert agent.flush(10)
    assert agent.export_stats().exported == 5 and agent.queued() == 0
    spans = wait_spans(heron_server, lambda s: len(s) == 5, service="pipeline")
    resource = spans[0]["resource"]
    assert resource["telemetry.distro.name"] == "heron"
    assert isinstance(resource["process.pid"], int) and resource["service.instance.id"]
    assert agent.shutdown(5)
    assert agent.shutdown(5)  # idempotent


def test_flush_and_shutdown_are_bounded_when_heron_is_down() -> None:
    agent = make_agent(f"http://127.0.0.1:{closed_port()}")
    emit(agent, 3)
    started = time.monotonic()
    assert agent.flush(0.3) is False
    assert agent.shutdown(0.3) is False
    assert time.monotonic() - started < 1.0
    assert eventually(lambda: agent.export_stats().dropped == 3)


def test_a_full_queue_drops_and_counts() -> None:
    agent = make_agent(
        f"http://127.0.0.1:{closed_port()}",
        OTEL_BSP_MAX_QUEUE_SIZE="10",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="10",
    )
    emit(agent, 50)  # the worker is stuck retrying the first batch meanwhile
    # 10 in the queue, at most 10 in the stuck export: the rest were dropped, and counted.
    assert eventually(lambda: agent.export_stats().dropped >= 30)
    agent.shutdown(0.2)
    assert eventually(lambda: agent.export_stats().dropped == 50), (
        agent.export_stats(),
        agent.queued(),
    )


def test_an_injected_exporter_gets_the_spans() -> None:
    memory = InMemorySpanExporter()
    agent = Agent(resolve_config(environ={}), exporter_factory=lambda: memory)
    emit(agent, 2)
    assert agent.flush(5)
    assert [s.name for s in memory.get_finished_spans()] == ["op-0", "op-1"]
    agent.shutdown(5)


def test_exporter_none_creates_spans_but_exports_nothing() -> None:
    agent = Agent(resolve_config(environ={"OTEL_TRACES_EXPORTER": "none"}))
    assert agent.processor is None
    emit(agent, 1)
    assert agent.flush(1) and agent.shutdown(1)
    assert agent.export_stats().exported == 0


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_zero_or_negative_timeouts_return_at_once(timeout: float) -> None:
    agent = make_agent(f"http://127.0.0.1:{closed_port()}")
    emit(agent, 1)
    started = time.monotonic()
    agent.flush(timeout)
    agent.shutdown(timeout)
    assert time.monotonic() - started < 0.5
