"""The web UI in-process: the real app (lifespan, auth, ingest) over httpx.ASGITransport.

Data arrives the way it does in production, as OTLP-JSON POSTs to ``/v1/traces``; the
clock is fixed so ranges and pages are deterministic. ``ui.soup(path)`` signs in once and
returns the page parsed by BeautifulSoup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI

from heron.server.app import create_app
from heron.server.config import Config
from tests.ui import seed as seed_data

NOW_NS = 1_700_000_000 * 1_000_000_000 + 123_456_789
PASSWORD = "ui-test-password"
INGEST_KEY = "hk_ui_test_key_0123456789"
HTML = {"accept": "text/html"}


@dataclass
class Ui:
    """A synchronous face on the in-process app; ``client`` carries the session cookie."""

    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    app: FastAPI
    seed: seed_data.Seed | None

    def get(self, path: str, **kw: Any) -> httpx.Response:
        headers = {**HTML, **kw.pop("headers", {})}
        return self.portal.call(lambda: self.client.get(path, headers=headers, **kw))

    def anonymous_get(self, path: str) -> httpx.Response:
        """GET without the session (a fresh client on the same app)."""

        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://heron.test") as c:
                return await c.get(path, headers=HTML)

        return self.portal.call(fetch)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.portal.call(lambda: self.client.post(path, **kw))

    def ok(self, path: str) -> httpx.Response:
        r = self.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:2000])
        return r

    def soup(self, path: str, status: int = 200) -> BeautifulSoup:
        r = self.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:2000])
        return BeautifulSoup(r.text, "html.parser")

    def sign_in(self) -> None:
        page = self.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page
        r = self.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert r.status_code == 303, r.text

    def ingest(self, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            r = self.post("/v1/traces", json=body, headers={"x-heron-key": INGEST_KEY})
            assert r.status_code == 200, r.text


def _start(tmp: Path, seed: seed_data.Seed | None) -> Iterator[Ui]:
    config = Config(
        data_dir=str(tmp), ingest_key=INGEST_KEY, admin_password=PASSWORD, commit_interval_ms=0
    )
    app = create_app(config, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://heron.test"
        )
        ui = Ui(portal, client, app, seed)
        try:
            if seed is not None:
                ui.ingest(seed.requests())
            ui.sign_in()
            yield ui
        finally:
            portal.call(client.aclose)


@pytest.fixture(scope="session")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """Signed in, seeded with tests/ui/seed.py's data."""
    yield from _start(tmp_path_factory.mktemp("ui"), seed_data.build(NOW_NS))


@pytest.fixture
def empty_ui(tmp_path: Path) -> Iterator[Ui]:
    """Signed in, no data at all."""
    yield from _start(tmp_path, None)
