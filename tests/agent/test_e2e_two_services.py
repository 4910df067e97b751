"""A trace across two real services: Flask (werkzeug) → requests/httpx → FastAPI (uvicorn).

Both call ``heron.init()`` and export to a real ``heron serve``; the assertions read
Heron's JSON API: routes, status codes, durations, and the parent/child link that W3C
``traceparent`` carries from the frontend's client span to the backend's server span.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.agent.helpers import (
    APPS,
    Procs,
    Span,
    agent_env,
    free_port,
    python,
    server_spans,
    wait_spans,
)

pytestmark = pytest.mark.e2e

FRONTEND_ROUTE = "/orders/<int:order_id>"
BACKEND_ROUTE = "/items/{item_id}"


@pytest.fixture
def services(heron_server: Any, procs: Procs, tmp_path: Any) -> tuple[str, str]:
    backend_port, frontend_port = free_port(), free_port()
    backend_url = f"http://127.0.0.1:{backend_port}"
    backend = procs.start(
        python(str(APPS / "backend.py"), str(backend_port)),
        agent_env(
            tmp_path,
            HERON_SERVICE="backend",
            HERON_ENDPOINT=heron_server.url,
            HERON_KEY=heron_server.key,
            HERON_ENVIRONMENT="test",
        ),
        "backend",
    )
    frontend = procs.start(
        python(str(APPS / "frontend.py"), str(frontend_port)),
        agent_env(
            tmp_path,
            HERON_URL=heron_server.url,
            HERON_TEST_KEY=heron_server.key,
            BACKEND_URL=backend_url,
        ),
        "frontend",
    )
    procs.wait_http(backend, f"{backend_url}/health")
    frontend_url = f"http://127.0.0.1:{frontend_port}"
    procs.wait_http(frontend, f"{frontend_url}/health")
    return frontend_url, backend_url


def _route(span: Span) -> str | None:
    return span["attributes"].get("http.route")


def _one_trace_per_request(spans: list[Span], route: str, n: int) -> bool:
    return (
        len([s for s in server_spans(spans, "frontend") if _route(s) == route]) >= n
        and len([s for s in server_spans(spans, "backend") if _route(s) == BACKEND_ROUTE]) >= n
    )


def test_trace_crosses_flask_and_fastapi(heron_server: Any, services: tuple[str, str]) -> None:
    frontend_url, _ = services
    for order_id in (1, 2, 3):
        r = httpx.get(f"{frontend_url}/orders/{order_id}", timeout=10)
        assert r.status_code == 200
        assert r.json() == {"order": order_id, "item": {"item": order_id}}

    spans = wait_spans(
        heron_server, lambda s: _one_trace_per_request(s, FRONTEND_ROUTE, 3), service="frontend"
    )

    frontend = [s for s in server_spans(spans, "frontend") if _route(s) == FRONTEND_ROUTE]
    assert len({s["trace_id"] for s in frontend}) == 3
    for root in frontend:
        trace = [s for s in spans if s["trace_id"] == root["trace_id"]]
        by_id = {s["span_id"]: s for s in trace}
        assert root["name"] == f"GET {FRONTEND_ROUTE}"
        assert root["parent_id"] is None
        assert root["attributes"]["http.response.status_code"] == 200
        assert root["attributes"]["http.request.method"] == "GET"
        assert root["duration_ms"] > 30 + 50  # its own sleep plus the backend's
        assert root["environment"] == "test" and root["release"] == "1.2.3"

        (backend,) = server_spans(trace, "backend")
        assert backend["name"] == f"GET {BACKEND_ROUTE}"
        assert _route(backend) == BACKEND_ROUTE
        assert backend["attributes"]["http.response.status_code"] == 200
        assert backend["duration_ms"] > 50
        assert backend["environment"] == "test"

        client = by_id[backend["parent_id"]]  # the backend's parent is in the frontend...
        assert client["service"] == "frontend" and client["kind"] == "client"
        assert client["parent_id"] == root["span_id"]  # ...under the Flask request span
        assert client["attributes"]["http.response.status_code"] == 200
        # The client waited for the backend's sleep. (Not ">= the backend span": a server
        # span ends after its response is written, which can be after the client has it.)
        assert client["duration_ms"] > 50


def test_httpx_client_also_propagates(heron_server: Any, services: tuple[str, str]) -> None:
    frontend_url, _ = services
    assert httpx.get(f"{frontend_url}/stock/7", timeout=10).status_code == 200

    spans = wait_spans(
        heron_server,
        lambda s: _one_trace_per_request(s, "/stock/<int:item_id>", 1),
        service="frontend",
    )
    (root,) = [s for s in server_spans(spans, "frontend") if _route(s) == "/stock/<int:item_id>"]
    trace = [s for s in spans if s["trace_id"] == root["trace_id"]]
    (backend,) = server_spans(trace, "backend")
    client = next(s for s in trace if s["span_id"] == backend["parent_id"])
    assert client["kind"] == "client" and client["service"] == "frontend"
    assert client["parent_id"] == root["span_id"]


def test_endpoints_and_errors_are_queryable(heron_server: Any, services: tuple[str, str]) -> None:
    frontend_url, _ = services
    assert httpx.get(f"{frontend_url}/orders/9", timeout=10).status_code == 200
    assert httpx.get(f"{frontend_url}/fail", timeout=10).status_code == 500

    doc = heron_server.wait_for(
        "/api/v1/services/frontend/endpoints",
        lambda d: (
            {"GET /orders/<int:order_id>", "GET /fail"} <= {e["endpoint"] for e in d["endpoints"]}
        ),
    )
    fail = next(e for e in doc["endpoints"] if e["endpoint"] == "GET /fail")
    assert fail["errors"] == 1

    spans = wait_spans(
        heron_server, lambda s: any(_route(x) == "/fail" for x in s), service="frontend"
    )
    (failed,) = [s for s in spans if _route(s) == "/fail"]
    assert failed["status"] == "error"
    assert failed["attributes"]["http.response.status_code"] == 500
    assert any(e["name"] == "exception" for e in failed["events"])
    backend = heron_server.wait_for("/api/v1/services/backend/endpoints", lambda d: d["endpoints"])
    assert "GET /items/{item_id}" in {e["endpoint"] for e in backend["endpoints"]}
