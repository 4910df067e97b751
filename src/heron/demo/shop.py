"""``demo-shop``: a small Flask web shop on SQLite with one route per classic problem.

- ``GET /products`` and ``GET /products/<id>``: normal; the detail page asks
  ``demo-inventory`` for stock over HTTP, so its traces cross services.
- ``GET /search?q=``: slow; correlated subqueries over an unindexed reviews table.
- ``POST /checkout``: erroring; a declined card raises, and so does the inventory's 409
  (the shop calls ``raise_for_status()`` and handles neither), both ending in a 500.
- ``GET /orders``: N+1; one query for the orders, then one more per order for its items.
  ``order_items.order_id`` has no index, so each of those 20 queries scans the table
  (~5 ms): the loop costs ~100 ms, as an N+1 over a network database would.
- ``GET /v2/orders``: the fix; the same data in one JOIN (one scan, ~10 ms). Heron must
  flag the first and not this one.
- ``/admin/slowdown``: the load-test demo's knob (:mod:`heron.demo.loadtest`), off
  unless ``HERON_DEMO_SLOWDOWN`` or a POST turns it on.
- ``/shop/...``: the HTML pages real users load, with Heron's browser SDK
  (:mod:`heron.demo.pages`).

Run by the demo runner: ``python -m heron.demo.shop --db ... --inventory-url ...``.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from flask import Flask, abort, g, jsonify, request

import heron
from heron._version import __version__
from heron.demo import SHOP_SERVICE, pages
from heron.demo._serve import parse_args, serve_app
from heron.demo._sql import Database
from heron.demo.inventory import PRODUCT_COUNT
from heron.demo.loadtest import install_slowdown

log = logging.getLogger("demo.shop")

ADJECTIVES = (
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Nordic",
    "Pro",
    "Rustic",
    "Smart",
    "Travel",
    "Ultra",
)
NOUNS = (
    "Backpack",
    "Blender",
    "Desk Lamp",
    "Espresso Maker",
    "Headphones",
    "Kettle",
    "Notebook",
    "Rain Jacket",
    "Sneakers",
    "Water Bottle",
)
CATEGORIES = ("home", "kitchen", "outdoor", "office", "audio")
REVIEW_WORDS = (
    "great",
    "fast",
    "cheap",
    "broken",
    "love",
    "sturdy",
    "flimsy",
    "quiet",
    "loud",
    "cozy",
    "sharp",
    "light",
    "heavy",
    "perfect",
    "awful",
    "returned",
    "gift",
    "battery",
    "color",
    "size",
    "shipping",
    "price",
    "quality",
    "daily",
)
REVIEW_COUNT = 40_000  # enough for the unindexed search to take ~0.2-0.5 s (20k: ~0.1 s here)
ORDER_COUNT = 50_000  # order history: ~125k unindexed order_items, ~5 ms a lookup
RECENT_ORDERS = 20
DECLINED_CARD_SUFFIX = "0002"  # like the payment providers' test cards
INVENTORY_TIMEOUT_S = 3.0

SEARCH_SQL = """
SELECT p.id, p.name, p.price_cents,
       (SELECT AVG(r2.rating) FROM reviews r2 WHERE r2.product_id = p.id) AS rating,
       (SELECT COUNT(*) FROM reviews r3 WHERE r3.product_id = p.id AND r3.body LIKE ?)
         AS mentions
FROM products p
WHERE p.name LIKE ?
   OR EXISTS (SELECT 1 FROM reviews r WHERE r.product_id = p.id AND r.body LIKE ?)
ORDER BY mentions DESC, rating DESC
LIMIT 10
"""


class PaymentDeclined(RuntimeError):
    """The (simulated) payment provider refused the card."""


def seed(path: Path, rng_seed: int = 7) -> None:
    """Create a fresh shop database.

    ``reviews.product_id`` and ``order_items.order_id`` are left unindexed on purpose.
    """
    path.unlink(missing_ok=True)
    rng = random.Random(rng_seed)
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(_SCHEMA)
        con.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)",
            [(i, f"Customer {i}", f"customer{i}@example.test") for i in range(1, 26)],
        )
        con.executemany(
            "INSERT INTO products VALUES (?, ?, ?, ?)",
            [
                (
                    i,
                    f"{ADJECTIVES[i % 10]} {NOUNS[(i // 10) % 10]} {i}",
                    rng.choice(CATEGORIES),
                    rng.randrange(499, 19_999),
                )
                for i in range(1, PRODUCT_COUNT + 1)
            ],
        )
        con.executemany(
            "INSERT INTO reviews (product_id, customer_id, rating, body) VALUES (?, ?, ?, ?)",
            [
                (
                    rng.randint(1, PRODUCT_COUNT),
                    rng.randint(1, 25),
                    rng.randint(1, 5),
                    " ".join(rng.choices(REVIEW_WORDS, k=10)),
                )
                for _ in range(REVIEW_COUNT)
            ],
        )
        _seed_orders(con, rng)
    con.close()


_SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
                       price_cents INTEGER NOT NULL);
CREATE TABLE reviews (id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL,
                      customer_id INTEGER NOT NULL, rating INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
                     created_at REAL NOT NULL, total_cents INTEGER NOT NULL);
CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,
                          product_id INTEGER NOT NULL, qty INTEGER NOT NULL,
                          price_cents INTEGER NOT NULL);
CREATE TABLE payments (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
                       amount_cents INTEGER NOT NULL, status TEXT NOT NULL, at REAL NOT NULL);
"""


def _seed_orders(con: sqlite3.Connection, rng: random.Random) -> None:
    """Two years of order history, one order every ~20 minutes, 1-4 items each."""
    now = time.time()
    orders, items = [], []
    for order_id in range(1, ORDER_COUNT + 1):
        lines = [
            (order_id, rng.randint(1, PRODUCT_COUNT), rng.randint(1, 3), rng.randrange(499, 9999))
            for _ in range(rng.randint(1, 4))
        ]
        total = sum(qty * price for _, _, qty, price in lines)
        at = now - 1200.0 * (ORDER_COUNT + 1 - order_id)
        orders.append((order_id, rng.randint(1, 25), at, total))
        items.extend(lines)
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", orders)
    con.executemany(
        "INSERT INTO order_items (order_id, product_id, qty, price_cents) VALUES (?, ?, ?, ?)",
        items,
    )


def create_app(db: Database, inventory_url: str, rum: pages.RumSettings | None = None) -> Flask:
    app = Flask(SHOP_SERVICE)
    install_slowdown(app)  # first, so its clock covers the other hooks (docs/demo.md)

    @app.before_request
    def _open() -> None:
        g.con = db.connect()

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        con = g.pop("con", None)
        if con is not None:
            con.close()

    @app.get("/products")
    def products() -> Any:
        page = max(request.args.get("page", 1, type=int), 1)
        rows = db.query(
            g.con,
            "SELECT id, name, category, price_cents FROM products ORDER BY id LIMIT 20 OFFSET ?",
            ((page - 1) * 20,),
        )
        return jsonify(products=[dict(r) for r in rows], page=page)

    @app.get("/products/<int:product_id>")
    def product(product_id: int) -> Any:
        rows = db.query(
            g.con,
            "SELECT id, name, category, price_cents FROM products WHERE id = ?",
            (product_id,),
        )
        if not rows:
            abort(404)
        stock = requests.get(f"{inventory_url}/stock/{product_id}", timeout=INVENTORY_TIMEOUT_S)
        return jsonify(product=dict(rows[0]), stock=stock.json() if stock.ok else None)

    @app.get("/search")
    def search() -> Any:
        like = f"%{request.args.get('q', '')}%"
        rows = db.query(g.con, SEARCH_SQL, (like, like, like))
        log.info("search %r: %d results", request.args.get("q", ""), len(rows))
        return jsonify(results=[dict(r) for r in rows])

    @app.post("/checkout")
    def checkout() -> Any:
        body = request.get_json(silent=True) or {}
        items = body.get("items") or []
        if not items:
            return jsonify(error="empty cart"), 400
        return _checkout(
            db,
            g.con,
            inventory_url,
            int(body.get("customer_id", 1)),
            items,
            str(body.get("card", "")),
        )

    @app.get("/orders")
    def orders() -> Any:
        return jsonify(orders=_recent_orders(db, g.con))

    @app.get("/v2/orders")
    def orders_v2() -> Any:
        return jsonify(orders=_recent_orders_joined(db, g.con))

    pages.register(app, db, inventory_url, rum)
    return app


def _checkout(
    db: Database,
    con: sqlite3.Connection,
    inventory_url: str,
    customer_id: int,
    items: list[dict[str, int]],
    card: str,
) -> Any:
    ids = [int(i["product_id"]) for i in items]
    marks = ",".join("?" * len(ids))
    sql = f"SELECT id, price_cents FROM products WHERE id IN ({marks})"  # noqa: S608 - "?" only
    prices = {r["id"]: r["price_cents"] for r in db.query(con, sql, ids)}
    if len(prices) != len(set(ids)):
        return jsonify(error="unknown product"), 400
    total = sum(prices[int(i["product_id"])] * int(i["qty"]) for i in items)
    reservation = requests.post(
        f"{inventory_url}/reservations", json={"items": items}, timeout=INVENTORY_TIMEOUT_S
    )
    reservation.raise_for_status()  # the demo's bug: a 409 (out of stock) becomes a 500
    _charge(db, con, customer_id, total, card)
    order = db.query(
        con,
        "INSERT INTO orders (customer_id, created_at, total_cents) VALUES (?, ?, ?) RETURNING id",
        (customer_id, time.time(), total),
    )
    order_id = order[0]["id"]
    for i in items:
        db.query(
            con,
            "INSERT INTO order_items (order_id, product_id, qty, price_cents) VALUES (?, ?, ?, ?)",
            (order_id, i["product_id"], i["qty"], prices[int(i["product_id"])]),
        )
    con.commit()
    # Business metrics: what the shop sells, beside how its requests perform.
    heron.counter("shop.orders.placed", unit="{order}", description="Orders placed").add(1)
    log.info(
        "order %s placed: customer %s, %d items, %d cents", order_id, customer_id, len(items), total
    )
    return jsonify(order_id=order_id, total_cents=total), 201


def _charge(
    db: Database, con: sqlite3.Connection, customer_id: int, amount: int, card: str
) -> None:
    status = "declined" if card.endswith(DECLINED_CARD_SUFFIX) else "captured"
    db.query(
        con,
        "INSERT INTO payments (customer_id, amount_cents, status, at) VALUES (?, ?, ?, ?)",
        (customer_id, amount, status, time.time()),
    )
    con.commit()
    heron.record_metric("shop.payment.amount", amount / 100, unit="USD", status=status)
    if status == "declined":
        log.warning("payment declined: customer %s, %d cents", customer_id, amount)
        raise PaymentDeclined(f"card ending {card[-4:]} declined for {amount} cents")


def _recent_orders(db: Database, con: sqlite3.Connection) -> list[dict[str, Any]]:
    """The N+1: one query for the orders, then one query per order for its items."""
    orders = db.query(
        con,
        "SELECT id, customer_id, created_at, total_cents FROM orders ORDER BY id DESC LIMIT ?",
        (RECENT_ORDERS,),
    )
    out = []
    for o in orders:
        items = db.query(
            con,
            "SELECT product_id, qty, price_cents FROM order_items WHERE order_id = ?",
            (o["id"],),
        )
        out.append({**dict(o), "items": [dict(i) for i in items]})
    return out


RECENT_ORDERS_SQL = """
SELECT o.id, o.customer_id, o.created_at, o.total_cents, i.product_id, i.qty, i.price_cents
FROM orders o JOIN order_items i ON i.order_id = o.id
WHERE o.id > (SELECT MAX(id) FROM orders) - ?
ORDER BY o.id DESC, i.id
"""


def _recent_orders_joined(db: Database, con: sqlite3.Connection) -> list[dict[str, Any]]:
    """The fix for :func:`_recent_orders`: the same answer from one JOIN."""
    out: list[dict[str, Any]] = []
    for row in db.query(con, RECENT_ORDERS_SQL, (RECENT_ORDERS,)):
        if not out or out[-1]["id"] != row["id"]:
            out.append({k: row[k] for k in ("id", "customer_id", "created_at", "total_cents")})
            out[-1]["items"] = []
        out[-1]["items"].append({k: row[k] for k in ("product_id", "qty", "price_cents")})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv, description=__doc__ or "")
    if not args.inventory_url:
        print("demo-shop: --inventory-url is required", file=sys.stderr)
        return 2
    seed(args.db)
    rum = None
    if args.browser_key:
        rum = pages.RumSettings(args.heron_url, args.browser_key, release=__version__)
    return serve_app(
        SHOP_SERVICE, args, lambda: create_app(Database(args.db), args.inventory_url, rum)
    )


if __name__ == "__main__":
    sys.exit(main())
