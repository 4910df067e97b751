"""An app traced only by sentry-sdk (2.x: transactions; 3.x: streamed span items) shows
endpoints, RED figures, traces and database queries in Heron, read back through the JSON
API of a real ``heron serve``.

sentry-sdk 3.x is the dev dependency; 2.x is installed once (``pip install --target``)
into a directory beside the virtualenv and put first on the app's ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HeronProcess

APP = Path(__file__).parent / "apps" / "sentry_tracing_app.py"
SENTRY_2 = "2.76.0"
ORDERS = "GET /orders/<int:order_id>"


@pytest.fixture(scope="session")
def sentry_sdk_2() -> Path:
    """A directory holding sentry-sdk 2.x (its dependencies are the venv's)."""
    target = Path(sys.prefix) / "heron-test-deps" / f"sentry-sdk-{SENTRY_2}"
    if not (target / "sentry_sdk").is_dir():
        partial = target.with_name(target.name + f".{os.getpid()}")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
            + [str(partial), f"sentry-sdk=={SENTRY_2}"],
            check=True,
            timeout=300,
        )
        partial.rename(target)
    return target


def run_app(h: HeronProcess, pythonpath: str) -> tuple[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else dict(os.environ)
    dsn = f"http://{h.key}@127.0.0.1:{h.port}/1"
    proc = subprocess.run(
        [sys.executable, str(APP), dsn], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    version, *trace_ids = proc.stdout.split()
    return version, trace_ids


def endpoints(h: HeronProcess) -> dict[str, dict[str, Any]]:
    doc = h.wait_for(
        "/api/v1/services/shop/endpoints",
        lambda d: (
            {e["endpoint"]: e["requests"] for e in d["endpoints"]}.get(ORDERS) == 2
            and any(e["endpoint"] == "GET /boom" for e in d["endpoints"])
        ),
    )
    return {e["endpoint"]: e for e in doc["endpoints"]}


@pytest.mark.parametrize("major", ["2", "3"])
def test_sentry_sdk_traces_show_as_endpoints_traces_and_queries(
    heron_server: HeronProcess, major: str, request: pytest.FixtureRequest
) -> None:
    h = heron_server
    path = str(request.getfixturevalue("sentry_sdk_2")) if major == "2" else ""
    version, trace_ids = run_app(h, path)
    assert version.split(".")[0] == major
    assert len(trace_ids) == 3
    # RED per endpoint, under the service named by the release "shop@2.0.1".
    eps = endpoints(h)
    orders, boom = eps[ORDERS], eps["GET /boom"]
    assert (orders["errors"], boom["requests"], boom["errors"]) == (0, 1, 1)
    assert orders["p50_ms"] > 0 and boom["error_rate"] == 1.0
    services = {s["service"] for s in h.api("/api/v1/services").json()["services"]}
    assert services == {"shop"}  # not unknown_service, not the host "web-7"
    # The trace waterfall: the server span and its children.
    trace = h.api(f"/api/v1/traces/{trace_ids[0]}").json()
    root = next(s for s in trace["spans"] if s["parent_id"] is None)
    assert (root["name"], root["kind"], root["status"]) == (ORDERS, "server", "ok")
    assert root["attributes"]["http.route"] == "/orders/<int:order_id>"
    assert root["attributes"]["http.response.status_code"] == 200
    assert root["attributes"]["url.path"] == "/orders/7"
    assert root["release"] == "shop@2.0.1" and root["environment"] == "staging"
    children = [s for s in trace["spans"] if s["parent_id"] == root["span_id"]]
    named = Counter((s["name"], s["kind"]) for s in children)
    assert named[("SELECT", "client")] == 2 and named[("compute", "internal")] == 1
    queries = sorted(
        s["attributes"]["db.query.text"]
        for s in children
        if s["kind"] == "client"
        if "db.query.text" in s["attributes"]
    )
    assert queries == [
        "SELECT count(*) FROM items WHERE order_id = ?",
        "SELECT total FROM orders WHERE id = ?",
    ]
    assert all(root["start_ns"] <= s["start_ns"] for s in children)
    # The failed request: an error span, and its error event under the same service.
    boom_trace = h.api(f"/api/v1/traces/{trace_ids[2]}").json()
    assert boom_trace["error"] is True
    issues = h.wait_for("/api/v1/issues", lambda d: len(d["issues"]) == 1)["issues"]
    assert issues[0]["title"] == "RuntimeError: the till is on fire"
    assert issues[0]["services"] == ["shop"]

    # Database queries, fingerprinted: two calls of each statement.
    def select_calls(doc: dict[str, Any]) -> dict[str, int]:
        return {q["display"]: q["calls"] for q in doc["queries"] if q["display"][:6] == "SELECT"}

    doc = h.wait_for("/api/v1/db/queries", lambda d: len(select_calls(d)) == 2, service="shop")
    assert select_calls(doc) == {
        "SELECT total FROM orders WHERE id = ?": 2,
        "SELECT count(*) FROM items WHERE order_id = ?": 2,
    }
