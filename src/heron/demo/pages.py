"""The demo shop's HTML pages, with Heron's browser SDK: what real users would load.

``/shop`` (product list), ``/shop/products/<id>``, ``/shop/cart`` and ``/shop/checkout``
are server-rendered (Jinja, autoescaped). Each page carries the backend trace in a
``traceparent`` ``<meta>`` tag (``heron.traceparent_meta()``) and loads ``/rum.js`` from the
Heron server with the demo's browser key, so its page load and the request that served it
are one trace. The pages are slow on purpose, in the ways RUM must show:

- a heavy hero image (~0.7 MB of noise, answered after ``IMAGE_DELAY_S``): the LCP element
  and a resource slower than the SDK's 1 s threshold;
- a heavy script (answered after ``SCRIPT_DELAY_S``, then ~150 ms of work: a long task);
- "Add to cart" busy-waits ~250 ms before it ``fetch()``es the shop's JSON product route
  (a slow interaction whose request joins a backend trace);
- "Apply coupon" throws a ``TypeError`` and a failed "Place order" rejects a promise no one
  handles (JavaScript errors that become Heron issues).

The cart is a cookie of product ids, so the pages need no session store.
"""

from __future__ import annotations

import random
import struct
import time
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import requests
from flask import Blueprint, Flask, Response, abort, g, render_template, request

import heron
from heron.demo._sql import Database

RUM_APP = "shop-web"  # the browser app's name in Heron (the "service" of browser spans)
IMAGE_DELAY_S = 1.3
SCRIPT_DELAY_S = 1.1
IMAGE_SIZE = (640, 360)  # noise does not compress: ~0.7 MB
CART_COOKIE = "cart"
CART_LIMIT = 20
PAGE_SIZE = 12
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class RumSettings:
    """Where the pages load the SDK from and what they tell it."""

    heron_url: str  # the Heron server's base URL, as the browser reaches it
    browser_key: str
    release: str
    environment: str = "demo"

    @property
    def script_url(self) -> str:
        return self.heron_url.rstrip("/") + "/rum.js"


def register(app: Flask, db: Database, inventory_url: str, rum: RumSettings | None) -> None:
    """Add the HTML pages to the shop; without ``rum`` they load no SDK."""
    app.jinja_env.globals.update(heron=heron, rum=rum, rum_app=RUM_APP)
    app.register_blueprint(_blueprint(db, inventory_url))


def _blueprint(db: Database, inventory_url: str) -> Blueprint:
    bp = Blueprint("pages", __name__, template_folder="templates", url_prefix="/shop")

    @bp.get("")
    def product_list() -> str:
        page = max(request.args.get("page", 1, type=int), 1)
        rows = db.query(
            g.con,
            "SELECT id, name, category, price_cents FROM products ORDER BY id LIMIT ? OFFSET ?",
            (PAGE_SIZE, (page - 1) * PAGE_SIZE),
        )
        return render_template("shop/list.html", products=rows, page=page)

    @bp.get("/products/<int:product_id>")
    def product(product_id: int) -> str:
        rows = _products(db, [product_id])
        if not rows:
            abort(404)
        stock = _stock(inventory_url, product_id)
        return render_template("shop/product.html", product=rows[0], stock=stock)

    @bp.get("/cart")
    def cart() -> str:
        items = _products(db, _cart_ids())
        total = sum(int(p["price_cents"]) for p in items)
        return render_template("shop/cart.html", items=items, total=total)

    @bp.get("/checkout")
    def checkout() -> str:
        items = _products(db, _cart_ids())
        total = sum(int(p["price_cents"]) for p in items)
        return render_template("shop/checkout.html", items=items, total=total)

    @bp.get("/assets/hero.png")
    def hero() -> Response:
        time.sleep(IMAGE_DELAY_S)
        return _uncached(Response(_noise_png(*IMAGE_SIZE), mimetype="image/png"))

    @bp.get("/assets/heavy.js")
    def heavy_script() -> Response:
        time.sleep(SCRIPT_DELAY_S)
        body = (STATIC / "heavy.js").read_bytes()
        return _uncached(Response(body, mimetype="text/javascript"))

    @bp.get("/assets/shop.js")
    def shop_script() -> Response:
        return Response((STATIC / "shop.js").read_bytes(), mimetype="text/javascript")

    @bp.get("/assets/shop.css")
    def shop_css() -> Response:
        return Response((STATIC / "shop.css").read_bytes(), mimetype="text/css")

    return bp


def _products(db: Database, ids: list[int]) -> list[Any]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    sql = f"SELECT id, name, category, price_cents FROM products WHERE id IN ({marks})"  # noqa: S608 - "?" only
    return db.query(g.con, sql, ids)


def _stock(inventory_url: str, product_id: int) -> int | None:
    try:
        r = requests.get(f"{inventory_url}/stock/{product_id}", timeout=3.0)
    except requests.RequestException:
        return None
    return int(r.json().get("quantity", 0)) if r.ok else None


def _cart_ids() -> list[int]:
    raw = request.cookies.get(CART_COOKIE, "")
    ids = [int(x) for x in raw.split(".") if x.isdigit()]
    return ids[:CART_LIMIT]


def _uncached(response: Response) -> Response:
    # Every view pays the full delay, so every page load reports the slow resources.
    response.headers["Cache-Control"] = "no-store"
    return response


@cache
def _noise_png(width: int, height: int) -> bytes:
    """An RGB PNG of random pixels: big on the wire, whatever the compression."""
    rng = random.Random(13)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )
