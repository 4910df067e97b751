"""The demo's traffic generator: a realistic request mix against ``demo-shop``.

It runs on a thread in the runner's process and is not instrumented: its requests start
the traces. It first tours every route once (so each shows up within seconds, including a
failing checkout), then sends a weighted random mix at a modest rate.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from heron.demo.inventory import PRODUCT_COUNT
from heron.demo.shop import DECLINED_CARD_SUFFIX, REVIEW_WORDS

log = logging.getLogger("heron.demo.traffic")

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "400000000000" + DECLINED_CARD_SUFFIX
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Call:
    """One request to the shop: method, path and JSON body."""

    method: str
    path: str
    json: dict[str, Any] | None = None


def checkout(rng: random.Random, *, declined: bool = False) -> Call:
    items = [
        {"product_id": rng.randint(1, PRODUCT_COUNT), "qty": rng.randint(1, 3)}
        for _ in range(rng.randint(1, 3))
    ]
    card = DECLINED_CARD if declined else GOOD_CARD
    return Call(
        "POST", "/checkout", {"customer_id": rng.randint(1, 25), "items": items, "card": card}
    )


def tour(rng: random.Random) -> list[Call]:
    """Every route once, including one checkout that fails."""
    return [
        Call("GET", "/products"),
        Call("GET", f"/products/{rng.randint(1, PRODUCT_COUNT)}"),
        Call("GET", f"/search?q={rng.choice(REVIEW_WORDS)}"),
        checkout(rng),
        Call("GET", "/orders"),
        Call("GET", "/v2/orders"),
        checkout(rng, declined=True),
    ]


# (weight, call factory): product pages dominate, as in any shop.
MIX: list[tuple[int, Callable[[random.Random], Call]]] = [
    (20, lambda r: Call("GET", f"/products?page={r.randint(1, 3)}")),
    (35, lambda r: Call("GET", f"/products/{r.randint(1, PRODUCT_COUNT + 2)}")),  # a few 404s
    (10, lambda r: Call("GET", f"/search?q={r.choice(REVIEW_WORDS)}")),
    (15, lambda r: checkout(r, declined=r.random() < 0.2)),
    (10, lambda r: Call("GET", "/orders")),
    (5, lambda r: Call("GET", "/v2/orders")),
]


def next_call(rng: random.Random) -> Call:
    weights = [w for w, _ in MIX]
    factory = rng.choices([f for _, f in MIX], weights=weights)[0]
    return factory(rng)


class TrafficGenerator:
    """Sends ``rate`` requests per second (on average) to ``base_url`` until stopped."""

    def __init__(self, base_url: str, *, rate: float = 4.0, seed: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.interval_s = 1.0 / rate
        self.rng = random.Random(seed)
        self.sent = 0
        self.failed = 0  # 5xx answers and transport errors
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = REQUEST_TIMEOUT_S + 1) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        with requests.Session() as session:
            for call in tour(self.rng):
                if self._stop.wait(self.interval_s):
                    return
                self._send(session, call)
            while not self._stop.wait(self.rng.expovariate(1.0 / self.interval_s)):
                self._send(session, next_call(self.rng))

    def _send(self, session: requests.Session, call: Call) -> None:
        self.sent += 1
        try:
            r = session.request(
                call.method, self.base_url + call.path, json=call.json, timeout=REQUEST_TIMEOUT_S
            )
        except requests.RequestException as e:
            self.failed += 1
            log.debug("demo traffic: %s %s failed: %s", call.method, call.path, e)
            return
        if r.status_code >= 500:
            self.failed += 1
