"""``heron.init()`` in a real process: configuration paths, idempotence, exit-time flush."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import agent_env, python, wait_spans

pytestmark = pytest.mark.e2e


def run(tmp_path: Path, code: str, **env: str) -> tuple[str, str]:
    done = subprocess.run(
        python("-c", textwrap.dedent(code)),
        env=agent_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr, done.stderr
    return done.stdout, done.stderr


def test_keywords_set_resource_and_key_and_init_is_idempotent(
    heron_server: Any, tmp_path: Path
) -> None:
    out, err = run(
        tmp_path,
        f"""
        import json, heron
        heron.init(service="kw-service", endpoint={heron_server.url!r}, key={heron_server.key!r},
                   environment="staging", release="4.5.6")
        heron.init(service="another")  # ignored, with a warning
        for i in range(3):
            with heron.span("step", i=i):
                pass
        print(json.dumps({{"flushed": heron.flush(10), "stats": heron.stats().__dict__}}))
    """,
    )
    result = json.loads(out)
    assert result["flushed"] is True
    assert result["stats"]["exported"] == 3 and result["stats"]["dropped"] == 0
    assert "heron.init() was already called" in err

    spans = wait_spans(heron_server, lambda s: len(s) == 3, service="kw-service")
    resource = spans[0]["resource"]
    assert resource["service.name"] == "kw-service"
    assert resource["deployment.environment.name"] == "staging"
    assert resource["service.version"] == "4.5.6"
    assert {s["environment"] for s in spans} == {"staging"}
    assert sorted(s["attributes"]["i"] for s in spans) == [0, 1, 2]


def test_otel_variables_alone_configure_the_agent(heron_server: Any, tmp_path: Path) -> None:
    run(
        tmp_path,
        """
        import heron
        heron.init()
        with heron.span("from-otel-env"):
            pass
    """,
        OTEL_SERVICE_NAME="otel-env-service",
        OTEL_EXPORTER_OTLP_ENDPOINT=heron_server.url,
        OTEL_EXPORTER_OTLP_HEADERS=f"x-heron-key={heron_server.key}",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=qa,team=payments",
    )
    # No flush in the program: the exit-time flush sends the span.
    (span,) = wait_spans(heron_server, lambda s: len(s) == 1, service="otel-env-service")
    assert span["name"] == "from-otel-env" and span["environment"] == "qa"
    assert span["resource"]["team"] == "payments"


def test_exit_flush_sends_what_the_schedule_has_not(heron_server: Any, tmp_path: Path) -> None:
    run(
        tmp_path,
        """
        import heron
        heron.init()
        for i in range(20):
            with heron.span("late", n=i):
                pass
    """,
        HERON_SERVICE="exit-flush",
        HERON_ENDPOINT=heron_server.url,
        HERON_KEY=heron_server.key,
        OTEL_BSP_SCHEDULE_DELAY="600000",
    )
    wait_spans(heron_server, lambda s: len(s) == 20, service="exit-flush")


def test_disabled_agent_does_nothing(tmp_path: Path) -> None:
    out, _ = run(
        tmp_path,
        """
        import heron
        from opentelemetry import trace
        heron.init(service="x")
        with heron.span("ignored"):
            pass
        print(type(trace.get_tracer_provider()).__name__, heron.flush(), heron.shutdown())
    """,
        HERON_ENABLED="false",
    )
    assert out.split() == ["ProxyTracerProvider", "True", "True"]


def test_an_existing_sdk_provider_is_joined(heron_server: Any, tmp_path: Path) -> None:
    out, _ = run(
        tmp_path,
        f"""
        import heron
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.sdk.resources import Resource

        own = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({{"service.name": "own-provider"}}))
        provider.add_span_processor(SimpleSpanProcessor(own))
        trace.set_tracer_provider(provider)
        heron.init(endpoint={heron_server.url!r}, key={heron_server.key!r})
        with heron.span("shared"):
            pass
        print(heron.flush(10), len(own.get_finished_spans()))
    """,
    )
    assert out.split() == ["True", "1"]
    wait_spans(heron_server, lambda s: [x["name"] for x in s] == ["shared"], service="own-provider")
