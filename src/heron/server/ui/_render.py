"""Templates and responses: Jinja2 with autoescaping everywhere, and number formatting.

Telemetry strings (service, span and attribute names and values, messages) reach HTML
only through autoescaped expressions or ``|tojson`` inside ``<script
type="application/json">`` (which escapes ``<``, ``>``, ``&`` and ``'``); no template
marks any of them safe. Pages get the security headers themselves, so they are protected
even where the app-wide middleware is not installed.
"""

from __future__ import annotations

import gzip
import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import Response

from heron.server.analyze.grouping import display_type
from heron.server.ui.security import PAGE_HEADERS

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
VENDOR_FILES = ("vendor/uPlot.iife.min.js", "vendor/uPlot.min.css")
PALETTE_SIZE = 12
_GZIP_MIN_BYTES = 16 * 1024


def color_index(name: str) -> int:
    """A stable palette slot for a service name (FNV-1a of its UTF-8 bytes)."""
    h = 0x811C9DC5
    for byte in name.encode("utf-8", "surrogatepass"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h % PALETTE_SIZE


def fmt_ms(value: float | None) -> str:
    """Milliseconds for people: 840 µs, 12.3 ms, 1.24 s, 3.5 min."""
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} µs"
    if value < 10:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.2f} s"
    return f"{value / 60_000:.1f} min"


def fmt_pct(value: float | None) -> str:
    if value is None:
        return "–"
    pct = value * 100
    if pct == 0:
        return "0%"
    if pct < 0:  # an overspent error budget
        return f"{pct:,.0f}%" if pct <= -10 else f"{pct:.1f}%"
    if pct < 0.01:
        return "<0.01%"
    return f"{pct:.2f}%" if pct < 10 else f"{pct:.1f}%"


def fmt_num(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def fmt_time(ns: int) -> str:
    """UTC time of day (the browser rewrites it in local time from ``datetime``)."""
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def iso_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(timespec="milliseconds")


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()


def _file_version(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return None


class Renderer:
    """The template environment plus the static files' cache-busting versions."""

    def __init__(self) -> None:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.policies["json.dumps_function"] = _dumps
        env.filters.update(
            ms=fmt_ms,
            pct=fmt_pct,
            num=fmt_num,
            time=fmt_time,
            iso=iso_ns,
            color=color_index,
            bare_type=display_type,
        )
        env.globals["static"] = self.static_url
        self.env = env
        self._versions: dict[str, str | None] = {}

    def static_url(self, name: str) -> str:
        if name not in self._versions:
            self._versions[name] = _file_version(STATIC_DIR / name)
        version = self._versions[name]
        return f"/static/{name}?v={version}" if version else f"/static/{name}"

    @property
    def charts_available(self) -> bool:
        return all((STATIC_DIR / f).is_file() for f in VENDOR_FILES)

    def page(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        html = self.env.get_template(template).render(
            request=request, charts_available=self.charts_available, **context
        )
        return html_response(request, html, status)


def html_response(request: Request, html: str, status: int = 200) -> Response:
    """An HTML response with the page headers, gzipped when large and accepted."""
    body = html.encode()
    headers = {**PAGE_HEADERS, "Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    if len(body) >= _GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=4)
        headers["Content-Encoding"] = "gzip"
    return Response(body, status, headers=headers, media_type="text/html; charset=utf-8")
