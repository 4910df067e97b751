"""Helpers for the database tests: the real servers, unique names, settings, spans.

The tests use the PostgreSQL, MariaDB and Redis servers running on this machine (and CI's).
A server that cannot be reached fails the test that needs it, with the reason: these
tests never skip.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from heron.agent import _explain
from heron.agent.integrations import _db

PG_HOST, PG_PORT, PG_USER, PG_DB = "127.0.0.1", 5432, "postgres", "test"
PG_CONNINFO = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DB}"
PG_URL = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
MARIADB: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
REDIS: dict[str, Any] = {"host": "127.0.0.1", "port": 6379}

T = TypeVar("T")


def reach(what: str, connect: Callable[[], T]) -> T:
    """``connect()``, or fail the test saying which server is missing."""
    try:
        return connect()
    except Exception as exc:
        pytest.fail(f"{what} is required by this test and could not be reached: {exc!r}")


def unique(prefix: str = "heron_t") -> str:
    """A table (or key) name no other test run uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def canary() -> str:
    """A literal that must never appear in exported data (unless record_sql='raw')."""
    return f"canary-{uuid.uuid4().hex}"


@contextmanager
def db_settings(**changes: Any) -> Iterator[_db.DbSettings]:
    """Database settings for one test (``record_sql``, ``explain_threshold_ms``...)."""
    settings = _db.DbSettings(**changes)
    previous = _db.set_settings(settings)
    try:
        yield settings
    finally:
        _db.set_settings(previous)


@contextmanager
def fresh_explainer(**options: Any) -> Iterator[_explain.Explainer]:
    """A new default explainer (its rate limits start empty), restored afterwards."""
    explainer = _explain.Explainer(**options)
    previous, _explain._default = _explain._default, explainer
    try:
        yield explainer
    finally:
        assert explainer.wait_idle(30), "an EXPLAIN was still running at the end of the test"
        _explain._default = previous


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def client_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]


def explain_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name.startswith("EXPLAIN ")]


def exported_text(spans: InMemorySpanExporter) -> str:
    """Everything the spans would export, as one string (to look for canaries)."""
    return "\n".join(s.to_json() for s in spans.get_finished_spans())


# --------------------------------------------------------- the end-to-end database app


class RecordingProxy:
    """A loopback HTTP proxy to Heron that keeps every request body the agent sends.

    Heron's server may scrub data on ingest too; the bodies show what left the process.
    """

    def __init__(self, upstream: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        self.bodies: list[bytes] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    proxy.bodies.append(gzip.decompress(body))
                else:
                    proxy.bodies.append(body)
                skip = {"host", "content-length", "connection"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                answer = httpx.post(upstream + self.path, content=body, headers=headers, timeout=30)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def run_db_app(heron: Any, tmp_path: Path, secret: str, **env: str) -> tuple[dict[str, Any], bytes]:
    """Run ``apps/db_app.py`` against ``heron`` through a :class:`RecordingProxy`.

    Returns the app's JSON line and every byte the agent sent.
    """
    from tests.agent.helpers import APPS, agent_env, python

    proxy = RecordingProxy(heron.url)
    try:
        run = subprocess.run(
            python(str(APPS / "db_app.py"), secret, str(tmp_path)),
            env=agent_env(
                tmp_path,
                HERON_SERVICE="db-app",
                HERON_ENDPOINT=proxy.url,
                HERON_KEY=heron.key,
                **env,
            ),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        result = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        proxy.close()
    return result, b"".join(proxy.bodies)


def wait_trace(heron: Any, trace_id: str, ready: Callable[[list[dict[str, Any]]], bool]) -> Any:
    """The stored trace, once ``ready(spans)`` holds (Heron commits asynchronously)."""
    return heron.wait_for(f"/api/v1/traces/{trace_id}", lambda doc: ready(doc["spans"]))
