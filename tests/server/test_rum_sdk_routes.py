"""GET /rum.js, /rum.mjs, /rum-react.mjs: public on every role, cacheable, loadable from
any origin; a missing bundle is a 404 saying how to build it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.ingest.rum_sdk import VENDOR, SdkFiles, add_sdk_routes


class Client:
    """httpx over ASGI, synchronously (no lifespan: these routes need no store)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def get(self, path: str, **kw: object) -> httpx.Response:
        return self.request("GET", path, **kw)

    def head(self, path: str) -> httpx.Response:
        return self.request("HEAD", path)

    def request(self, method: str, path: str, **kw: object) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.request(method, path, **kw)  # type: ignore[arg-type]

        return asyncio.run(go())


@pytest.mark.parametrize("role", ["all", "ingest", "query", "jobs"])
def test_every_role_serves_the_sdk_publicly(role: str, tmp_path: Path) -> None:
    config = Config(data_dir=str(tmp_path), role=role, ingest_key="hk_" + "k" * 24)
    client = Client(create_app(config))
    for name in ("rum.js", "rum.mjs", "rum-react.mjs"):
        r = client.get(f"/{name}", headers={"Origin": "https://shop.example"})
        assert r.status_code == 200, (role, name, r.text[:200])
        assert r.content == (VENDOR / name).read_bytes()
        assert r.headers["content-type"] == "text/javascript; charset=utf-8"
        assert r.headers["cache-control"] == "public, max-age=3600"
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["cross-origin-resource-policy"] == "cross-origin"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert b"heron" in client.get("/rum.js").content
    assert client.get("/rum-react.mjs").text.startswith("import{track as")
    assert client.head("/rum.js").status_code == 200


def test_a_missing_bundle_is_a_404_naming_the_build(tmp_path: Path) -> None:
    app = FastAPI()
    add_sdk_routes(app, SdkFiles(tmp_path))
    r = Client(app).get("/rum.js")
    assert r.status_code == 404
    assert "scripts/build_assets.py" in r.text
    assert r.headers["cache-control"] == "no-store"
