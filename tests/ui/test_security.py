"""Telemetry strings are rendered inert on every page, under a strict CSP."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from bs4 import BeautifulSoup, Tag
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from heron.server.ui.security import CSP, PAGE_HEADERS, add_security_headers
from tests.ui.conftest import Ui
from tests.ui.seed import (
    XSS_KEY,
    XSS_MESSAGE,
    XSS_ROUTE,
    XSS_SERVICE,
    XSS_SPAN,
    XSS_STRINGS,
    XSS_VALUE,
)

XSS_ENDPOINT = f"GET {XSS_ROUTE}"


def xss_pages(ui: Ui) -> list[str]:
    assert ui.seed is not None
    svc = quote(XSS_SERVICE, safe="")
    return [
        "/",
        f"/service?service={svc}",
        f"/endpoint?service={svc}&endpoint={quote(XSS_ENDPOINT, safe='')}",
        f"/traces?service={svc}",
        f"/traces?attr={quote(XSS_KEY + '=' + XSS_VALUE, safe='')}",
        f"/traces/{ui.seed.xss_trace}",
        "/map",
        f"/?env={quote(XSS_VALUE, safe='')}",
        f"/?from={quote(XSS_SPAN, safe='')}",  # echoed in the error message
    ]


def test_csp_forbids_inline_scripts() -> None:
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in CSP
    assert directives["default-src"] == "'none'"
    assert directives["object-src" if "object-src" in directives else "default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"


def test_every_page_sends_the_security_headers(ui: Ui) -> None:
    for path in [*xss_pages(ui), "/traces/" + "0" * 32]:
        r = ui.get(path)
        for name, value in PAGE_HEADERS.items():
            assert r.headers.get(name) == value, (path, name)
        assert r.headers["cache-control"] == "no-store"


def test_scripts_are_external_or_inert_json(ui: Ui) -> None:
    for path in xss_pages(ui):
        soup = BeautifulSoup(ui.get(path).text, "html.parser")
        for script in soup.find_all("script"):
            if script.get("src"):
                assert str(script["src"]).startswith("/static/") and not script.string
            else:
                assert script.get("type") == "application/json", (path, script)
                json.loads(script.string or "")
        for tag in soup.find_all(True):
            assert not any(a.lower().startswith("on") for a in tag.attrs), (path, tag.name)
            assert "style" not in tag.attrs, (path, tag.name)  # style-src has no unsafe-inline
            for attr in ("href", "src", "action"):
                value = str(tag.get(attr, ""))
                assert not value.lower().lstrip().startswith(("javascript:", "data:")), (path, tag)


def test_payloads_are_text_not_markup(ui: Ui) -> None:
    seen: set[str] = set()
    for path in xss_pages(ui):
        html = ui.get(path).text
        soup = BeautifulSoup(html, "html.parser")
        # The payloads' tags never became elements...
        assert not soup.find("img", src="x"), path
        assert not soup.find("svg", onload=True), path
        assert all(
            s.get("src") or s.get("type") == "application/json" for s in soup.find_all("script")
        )
        # ...and appear escaped in the HTML source, or \u003c-escaped inside JSON blocks.
        blocks = soup.find_all("script", type="application/json")
        assert all("<" not in (b.string or "") for b in blocks)
        decoded = [json.dumps(json.loads(b.string or ""), ensure_ascii=False) for b in blocks]
        for payload in XSS_STRINGS:
            assert payload not in html, (path, payload)
            if soup.find_all(string=lambda t, p=payload: p in t):
                seen.add(payload)
            if any(json.dumps(payload, ensure_ascii=False)[1:-1] in d for d in decoded):
                seen.add(payload)
    # Every payload was shown somewhere (as text), so the check above was not vacuous.
    assert seen >= {XSS_SERVICE, XSS_SPAN, XSS_KEY, XSS_VALUE, XSS_MESSAGE, XSS_ROUTE}


def test_json_blocks_cannot_close_their_script(ui: Ui) -> None:
    assert ui.seed is not None
    html = ui.get(f"/traces/{ui.seed.xss_trace}").text
    soup = BeautifulSoup(html, "html.parser")
    block = soup.find("script", id="trace-data")
    assert isinstance(block, Tag)
    raw = block.string or ""
    assert "</" not in raw and "<" not in raw and "\\u003c/script\\u003e" in raw
    doc = json.loads(raw)
    root = doc["spans"][0]
    assert root[3] == XSS_SPAN
    assert root[9]["attributes"][XSS_KEY] == XSS_VALUE
    assert root[9]["events"][0]["attributes"]["exception.message"] == XSS_MESSAGE
    assert doc["services"][root[2]][0] == XSS_SERVICE


def test_links_built_from_names_stay_on_the_site(ui: Ui) -> None:
    soup = BeautifulSoup(ui.get("/").text, "html.parser")
    row = next(r for r in soup.select("#services tbody tr") if XSS_SERVICE in r.get_text())
    href = str(row.find("a")["href"])
    assert href.startswith("/service?service=%3Cscript%3E")


@pytest.mark.parametrize("preset", [False, True])
def test_middleware_adds_missing_headers_only(preset: bool) -> None:
    import anyio
    import httpx

    app = FastAPI()
    add_security_headers(app)

    @app.get("/x")
    def x() -> PlainTextResponse:
        headers = {"X-Frame-Options": "SAMEORIGIN"} if preset else {}
        return PlainTextResponse("ok", headers=headers)

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/x")

    r = anyio.run(fetch)
    assert r.headers["content-security-policy"] == CSP
    assert r.headers.get_list("x-frame-options") == (["SAMEORIGIN"] if preset else ["DENY"])
    assert r.headers["x-content-type-options"] == "nosniff"
