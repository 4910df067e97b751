"""The unmodified official OpenTelemetry exporter sends to Heron with standard variables."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import APPS, agent_env, python, wait_spans

pytestmark = pytest.mark.e2e


def test_official_otlp_http_exporter_is_accepted(heron_server: Any, tmp_path: Path) -> None:
    env = agent_env(
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=heron_server.url,
        OTEL_EXPORTER_OTLP_HEADERS=f"x-heron-key={heron_server.key}",
        OTEL_SERVICE_NAME="plain-otel",
    )
    done = subprocess.run(
        python(str(APPS / "plain_otel.py")), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "sent" in done.stdout
    assert "Failed to export" not in done.stderr

    spans = wait_spans(heron_server, lambda s: len(s) == 2, service="plain-otel")
    by_name = {s["name"]: s for s in spans}
    root, child = by_name["GET /plain/{id}"], by_name["compute"]
    assert root["kind"] == "server" and root["attributes"]["http.route"] == "/plain/{id}"
    assert child["parent_id"] == root["span_id"] and child["attributes"] == {"step": 1}
    assert child["duration_ms"] >= 20
    assert root["resource"]["telemetry.sdk.name"] == "opentelemetry"
