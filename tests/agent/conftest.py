"""Agent test fixtures.

- ``internal_errors`` (autouse): the agent's guard re-raises instead of swallowing, and an
  error it swallowed anyway (in a background thread) fails the test at teardown, the
  pattern of sentry-python's ``internal_exceptions`` fixture.
- ``spans``: the OpenTelemetry API's global tracer provider, set once for the session to
  an SDK provider with an in-memory exporter, recording only while a test uses this
  fixture. In-process tests use it; everything that needs ``heron.init()`` itself runs
  in a subprocess.
- ``procs``: starts subprocesses (apps, WSGI/ASGI servers) and kills them in teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from heron.agent import guard
from heron.agent.runtime import SEMCONV_OPT_IN
from tests.agent.helpers import Procs

APPS = Path(__file__).parent / "apps"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "swallows_internal_errors: the test checks that the guard swallows errors"
    )


@pytest.fixture(autouse=True)
def internal_errors(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[BaseException]]:
    errors: list[BaseException] = []
    if request.node.get_closest_marker("swallows_internal_errors"):
        yield errors
        return
    monkeypatch.setattr(guard, "RAISE", True)
    monkeypatch.setattr(guard, "on_error", errors.append)
    yield errors
    if errors:
        raise errors[0]


class _OnlyDuringTests(Sampler):
    """Samples while a test uses ``spans``; otherwise spans are non-recording.

    The global provider outlives the agent tests, and other tests in the same session
    (e.g. in-process ASGI tests of the server) must not record into it meanwhile.
    """

    active = False

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if not self.active:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)

    def get_description(self) -> str:
        return "OnlyDuringTests"


@pytest.fixture(scope="session")
def _memory_pipeline() -> Iterator[tuple[InMemorySpanExporter, _OnlyDuringTests]]:
    exporter, sampler = InMemorySpanExporter(), _OnlyDuringTests()
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with pytest.MonkeyPatch.context() as mp:
        # What heron.init() does before setting up integrations: current semconv names.
        mp.setenv(*SEMCONV_OPT_IN)
        from opentelemetry.instrumentation._semconv import (
            _OpenTelemetrySemanticConventionStability,
        )

        _OpenTelemetrySemanticConventionStability._initialize()
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.fail("another global TracerProvider was set before the agent tests")
    yield exporter, sampler
    provider.shutdown()


@pytest.fixture
def spans(
    _memory_pipeline: tuple[InMemorySpanExporter, _OnlyDuringTests],
) -> Iterator[InMemorySpanExporter]:
    """Spans finished during the test (``spans.get_finished_spans()``)."""
    exporter, sampler = _memory_pipeline
    exporter.clear()
    sampler.active = True
    yield exporter
    sampler.active = False
    exporter.clear()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    yield p
    for proc, _ in p.started:
        Procs.kill(proc)
