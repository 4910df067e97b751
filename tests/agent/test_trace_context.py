"""The backend's trace handed to the browser: ``heron.traceparent_meta()`` in a template and
the ``Server-Timing: traceparent`` response header, from a real Flask app on loopback
exporting to a real OTLP receiver; both carry the ids of the exported server span."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import heron
from heron.agent.config import resolve_config
from heron.agent.trace_context import ServerTimingPropagator, traceparent_meta
from tests.agent.helpers import APPS, Procs, agent_env, free_port, python
from tests.agent.otlp_receiver import OtlpReceiver

META = re.compile(r'<meta name="traceparent" content="00-([0-9a-f]{32})-([0-9a-f]{16})-01">')
TIMING = re.compile(r'^traceparent;desc="00-([0-9a-f]{32})-([0-9a-f]{16})-01"$')


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


def start_shop(procs: Procs, tmp_path: Path, receiver: OtlpReceiver, **env: str) -> str:
    port = free_port()
    proc = procs.start(
        python(str(APPS / "rum_flask.py"), str(port)),
        agent_env(tmp_path, HERON_ENDPOINT=receiver.url, HERON_SERVICE="shop", **env),
        "shop",
    )
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(proc, f"{url}/health")
    return url


def server_span(receiver: OtlpReceiver, trace_id: str) -> dict[str, Any]:
    def found(r: OtlpReceiver) -> bool:
        return any(s["trace_id"] == trace_id and s["kind"] == 2 for s in r.spans)

    receiver.wait(found)
    (span,) = [s for s in receiver.spans if s["trace_id"] == trace_id and s["kind"] == 2]
    return span


@pytest.mark.e2e
def test_meta_and_server_timing_carry_the_exported_server_span(
    procs: Procs, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    url = start_shop(procs, tmp_path, receiver)
    r = httpx.get(f"{url}/products/42", timeout=10)
    assert r.status_code == 200
    meta = META.search(r.text)
    assert meta, r.text
    timing = TIMING.match(r.headers["server-timing"])
    assert timing, r.headers
    assert meta.groups() == timing.groups()
    assert "&lt;product 42&gt;" in r.text  # the rest of the page is still escaped
    trace_id, span_id = meta.groups()
    span = server_span(receiver, trace_id)
    assert span["span_id"] == span_id
    assert span["name"] == "GET /products/<int:pid>"
    assert span["resource"]["service.name"] == "shop"
    # each request its own trace
    again = META.search(httpx.get(f"{url}/products/43", timeout=10).text)
    assert again and again.group(1) != trace_id


@pytest.mark.e2e
def test_server_timing_can_be_turned_off(
    procs: Procs, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    url = start_shop(procs, tmp_path, receiver, HERON_SERVER_TIMING="false")
    r = httpx.get(f"{url}/products/7", timeout=10)
    assert r.status_code == 200
    assert "server-timing" not in r.headers
    assert META.search(r.text)  # the template helper still works


def test_no_span_no_meta_and_never_raises() -> None:
    assert heron.traceparent_meta() == ""
    carrier: dict[str, str] = {}
    ServerTimingPropagator().inject(carrier)
    assert carrier == {}


def test_meta_of_a_sampled_span_only_and_html_safe() -> None:
    sampled = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(sampled)):
        meta = traceparent_meta()
        carrier: dict[str, str] = {"Server-Timing": "db;dur=53"}
        ServerTimingPropagator().inject(carrier)
    expected = '<meta name="traceparent" content="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01">'
    assert meta == expected and meta.__html__() == expected  # type: ignore[attr-defined]
    assert carrier["Server-Timing"] == (
        'db;dur=53, traceparent;desc="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"'
    )
    unsampled = SpanContext(trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(0))
    with trace.use_span(NonRecordingSpan(unsampled)):
        assert traceparent_meta() == ""
    with trace.use_span(TracerProvider().get_tracer("t").start_span("x")):
        assert META.fullmatch(traceparent_meta())


def test_server_timing_option_and_environment() -> None:
    assert resolve_config(environ={}).server_timing is True
    assert resolve_config(environ={"HERON_SERVER_TIMING": "off"}).server_timing is False
    assert resolve_config(server_timing=False, environ={}).server_timing is False
    bad = resolve_config(environ={"HERON_SERVER_TIMING": "maybe"})
    assert bad.server_timing is True and any("HERON_SERVER_TIMING" in p for p in bad.problems)
