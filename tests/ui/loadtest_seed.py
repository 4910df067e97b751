"""Seed data for the load-test pages: two runs' worth of entry spans, as OTLP-JSON.

Service ``lt-shop`` serves ``GET /lt/products`` (50 % slower in the second window: the
regression the compare page must show), ``GET /lt/health`` (unchanged), ``GET /lt/rare``
(too few requests to compare) and a DB span per product request. Each window is ``WINDOW_S`` long with ``PER_S`` requests a second per
endpoint, so both endpoints have hundreds of requests a side. Times are relative to
``now_ns`` (fixed clock in-process, wall clock for a real ``heron serve``); the caller
creates the runs over those windows through the real API (``windows()``).
"""

from __future__ import annotations

import random

from tests.ui.seed import CLIENT, MS, SERVER, Seed, Sp, _http

SERVICE = "lt-shop"
SLOW = "GET /lt/products"
STEADY = "GET /lt/health"
RARE = "GET /lt/rare"
RARE_PER_WINDOW = 5
WINDOW_S = 60
PER_S = 8
SLOWDOWN = 1.5
XSS_RUN = "<script>alert('run')</script>"
XSS_LABEL = "<img src=x onerror=alert('label')>"
S = 1_000_000_000


def windows(now_ns: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(start, end) of the baseline and of the slowed run, both in the last hour."""
    base = now_ns - 30 * 60 * S
    run = now_ns - 10 * 60 * S
    return (base, base + WINDOW_S * S), (run, run + WINDOW_S * S)


def build(now_ns: int, seed_value: int = 11) -> Seed:
    rng = random.Random(seed_value)
    seed = Seed(now_ns)
    (b0, _), (r0, _) = windows(now_ns)
    n = 0
    for start, factor in ((b0, 1.0), (r0, SLOWDOWN)):
        for k in range(WINDOW_S * PER_S):
            at = start + k * S // PER_S + rng.randrange(S // PER_S // 2)
            n += 1
            dur = int(rng.lognormvariate(3.0, 0.3) * MS * factor)
            root = seed.add(
                SERVICE,
                "prod",
                "1.0",
                Sp(
                    0x170000 + n,
                    seed.sid(),
                    0,
                    SLOW,
                    SERVER,
                    at,
                    dur,
                    _http("GET", "/lt/products", 200),
                ),
            )
            seed.add(
                SERVICE,
                "prod",
                "1.0",
                Sp(
                    root.trace,
                    seed.sid(),
                    root.span,
                    "SELECT products",
                    CLIENT,
                    at + MS,
                    dur // 3,
                    {"db.system": "postgresql", "db.statement": "SELECT * FROM products"},
                ),
            )
            n += 1
            fail = k % 50 == 0
            seed.add(
                SERVICE,
                "prod",
                "1.0",
                Sp(
                    0x170000 + n,
                    seed.sid(),
                    0,
                    STEADY,
                    SERVER,
                    at + 3 * MS,
                    int(rng.lognormvariate(1.0, 0.3) * MS),
                    _http("GET", "/lt/health", 500 if fail else 200),
                    error="health check failed" if fail else None,
                ),
            )
        for k in range(RARE_PER_WINDOW):
            n += 1
            seed.add(
                SERVICE,
                "prod",
                "1.0",
                Sp(
                    0x170000 + n,
                    seed.sid(),
                    0,
                    RARE,
                    SERVER,
                    start + (k + 1) * 5 * S,
                    20 * MS,
                    _http("GET", "/lt/rare", 200),
                ),
            )
    return seed
