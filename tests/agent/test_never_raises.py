"""The agent never raises into the app: Heron down or unreachable, or bad configuration.

Each case runs the app in a subprocess, because ``heron.init()`` is once per process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import APPS, agent_env, free_port, python

pytestmark = pytest.mark.e2e


def run_app(
    tmp_path: Path, *args: str, timeout: float = 60, **env: str
) -> tuple[dict[str, Any], str, float]:
    started = time.monotonic()
    done = subprocess.run(
        python(str(APPS / "resilient.py"), *args),
        env=agent_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr, elapsed


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A server that accepts connections (into the backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_heron_down_requests_still_succeed_and_drops_are_counted(tmp_path: Path) -> None:
    out, stderr, _ = run_app(
        tmp_path,
        HERON_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        HERON_KEY="hk_whatever",
        OTEL_BSP_MAX_QUEUE_SIZE="20",  # the queue overflows too
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="10",
    )
    assert out["statuses"] == [200]
    assert out["flush_ok"] is False and out["flush_s"] < 1.5
    assert out["shutdown_ok"] is False and out["shutdown_s"] < 1.5
    assert out["stats"]["dropped"] > 0 and out["stats"]["exported"] == 0
    assert out["stats"]["internal_errors"] == 0
    # Once per outage and signal: spans, and the metrics (runtime metrics always export).
    assert stderr.count("heron: could not export") == 2, stderr
    assert stderr.count("heron: could not export metrics") == 1, stderr
    repeated = ("Transient error", "Failed to export", "Queue full")
    assert sum(stderr.count(line) for line in repeated) <= 2, stderr


def test_exit_is_bounded_when_heron_never_answers(tmp_path: Path, blackhole: str) -> None:
    # No explicit shutdown: the atexit flush must give up after shutdown_timeout.
    out, _, elapsed = run_app(
        tmp_path,
        "--no-shutdown",
        HERON_ENDPOINT=blackhole,
        HERON_SHUTDOWN_TIMEOUT="1",
        OTEL_EXPORTER_OTLP_TIMEOUT="30",
    )
    assert out["statuses"] == [200]
    assert out["flush_ok"] is False and out["flush_s"] < 1.5
    assert elapsed < 15  # interpreter start + imports + 50 requests + 1 s flush + 1 s exit


def test_bad_configuration_is_reported_not_raised(tmp_path: Path) -> None:
    out, stderr, _ = run_app(
        tmp_path,
        HERON_ENDPOINT="::not a url::",
        HERON_ENABLED="maybe",
        HERON_SHUTDOWN_TIMEOUT="later",
        OTEL_BSP_MAX_QUEUE_SIZE="-3",
        OTEL_BSP_SCHEDULE_DELAY="soon",
        OTEL_TRACES_EXPORTER="zipkin",
        RESILIENT_INIT_KWARGS=json.dumps({"service": 42, "instrument": ["flask", "nope"]}),
    )
    assert out["statuses"] == [200]
    assert out["stats"]["dropped"] > 0 and out["stats"]["internal_errors"] == 0
    for complaint in (
        "is not an http(s) URL",
        "HERON_ENABLED='maybe'",
        "HERON_SHUTDOWN_TIMEOUT",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_BSP_SCHEDULE_DELAY",
        "zipkin",
        "service=42 is not a string",
        "unknown integration 'nope'",
    ):
        assert complaint in stderr


def test_a_bad_key_drops_spans_without_raising(heron_server: Any, tmp_path: Path) -> None:
    out, stderr, _ = run_app(tmp_path, HERON_ENDPOINT=heron_server.url, HERON_KEY="hk_wrong")
    assert out["statuses"] == [200]
    assert out["stats"]["dropped"] > 0
    assert "401" in stderr  # the exporter's own reason, logged once
