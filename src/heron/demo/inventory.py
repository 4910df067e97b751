"""``demo-inventory``: the stock service the demo shop calls over HTTP.

Routes: ``GET /stock/<product_id>`` (stock level) and ``POST /reservations`` (reserve
items for an order; 409 when a product runs out, which the shop does not handle). A
product that runs out is restocked right after, so shortages stay occasional.

Run by the demo runner: ``python -m heron.demo.inventory --db ... --ready-file ...``.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, jsonify, request

from heron.demo import INVENTORY_SERVICE
from heron.demo._serve import parse_args, serve_app
from heron.demo._sql import Database

log = logging.getLogger("demo.inventory")

PRODUCT_COUNT = 60
WAREHOUSES = ("ams-1", "fra-2", "lis-1")
RESTOCK_QUANTITY = 25


def seed(path: Path, products: int = PRODUCT_COUNT, rng_seed: int = 11) -> None:
    """Create a fresh stock table: most products in stock, a few nearly sold out."""
    path.unlink(missing_ok=True)
    rng = random.Random(rng_seed)
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(
            "CREATE TABLE stock (product_id INTEGER PRIMARY KEY, warehouse TEXT NOT NULL,"
            " quantity INTEGER NOT NULL)"
        )
        con.executemany(
            "INSERT INTO stock VALUES (?, ?, ?)",
            [
                (i, rng.choice(WAREHOUSES), rng.choice((0, 40, 60, 80, 90, 120, 150, 200)))
                for i in range(1, products + 1)
            ],
        )
    con.close()


def create_app(db: Database) -> Flask:
    app = Flask(INVENTORY_SERVICE)

    @app.before_request
    def _open() -> None:
        g.con = db.connect()

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        con = g.pop("con", None)
        if con is not None:
            con.close()

    @app.get("/stock/<int:product_id>")
    def stock(product_id: int) -> Any:
        rows = db.query(
            g.con,
            "SELECT product_id, warehouse, quantity FROM stock WHERE product_id = ?",
            (product_id,),
        )
        if not rows:
            abort(404)
        return jsonify(dict(rows[0]))

    @app.post("/reservations")
    def reserve() -> Any:
        items = (request.get_json(silent=True) or {}).get("items") or []
        if not items:
            return jsonify(error="no items"), 400
        short = [i for i in items if not _take(db, g.con, int(i["product_id"]), int(i["qty"]))]
        if short:
            g.con.rollback()
            _restock(db, g.con, [int(i["product_id"]) for i in short])
            log.warning("out of stock: %s; restocked", [int(i["product_id"]) for i in short])
            return jsonify(error="insufficient stock", items=short), 409
        g.con.commit()
        return jsonify(reserved=items), 201

    return app


def _take(db: Database, con: sqlite3.Connection, product_id: int, qty: int) -> bool:
    rows = db.query(
        con,
        "UPDATE stock SET quantity = quantity - ? WHERE product_id = ? AND quantity >= ?"
        " RETURNING quantity",
        (qty, product_id, qty),
    )
    return bool(rows)


def _restock(db: Database, con: sqlite3.Connection, product_ids: list[int]) -> None:
    for product_id in product_ids:
        db.query(
            con,
            "UPDATE stock SET quantity = quantity + ? WHERE product_id = ? RETURNING quantity",
            (RESTOCK_QUANTITY, product_id),
        )
    con.commit()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv, description=__doc__ or "")
    seed(args.db)
    return serve_app(INVENTORY_SERVICE, args, lambda: create_app(Database(args.db)))


if __name__ == "__main__":
    sys.exit(main())
