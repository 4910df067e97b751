"""RUM browser SDK benchmark: bundle sizes and the main-thread cost of a page with vs without it.

Sizes: ``rum.js``, ``rum.mjs`` and ``rum-react.mjs`` as built by ``scripts/build_assets.py``
(raw and gzipped at level 9; the budget for ``rum.js``, web-vitals included, is 10 KiB).

Cost: real Chromium (``/usr/bin/chromium``) loads the same shop page from a loopback HTTP
server, once with ``rum.js`` (script tag, auto-init, beaconing to the same server) and once
without, interleaved (A B B A …) in one run. For each load, a fresh page: navigate, wait
for ``load`` and 500 ms (the SDK's load-time work, its observers, the page's fetches), call
``heron.flush()`` when present (the beacon), then read CDP ``Performance.getMetrics``:
``ScriptDuration`` (JS on the main thread) and ``TaskDuration`` (all main-thread tasks).
Medians over ``--loads`` loads of each; the delta and ratio are the SDK's cost per page.

    python bench/rum_sdk.py              # 30 loads of each
    python bench/rum_sdk.py --loads 50
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c

VENDOR = c.ROOT / "src" / "heron" / "server" / "ui" / "static" / "vendor"
BUNDLES = ("rum.js", "rum.mjs", "rum-react.mjs")
CHROMIUM = os.environ.get("HERON_CHROMIUM", "/usr/bin/chromium")
BUDGET = 10240

CARDS = "".join(
    f'<li class="card"><h3>Product {i}</h3><p>{"Soft cotton, machine washable. " * 3}</p>'
    f'<button class="buy" data-id="{i}">Add to cart</button></li>'
    for i in range(200)
)
APP_JS = """
const total = [...document.querySelectorAll('.card')].reduce((n, el) => n + el.textContent.length, 0);
document.title = 'Shop (' + total + ')';
Promise.all([fetch('/api/cart'), fetch('/api/recommendations')]).then(rs => Promise.all(rs.map(r => r.json())))
  .then(([cart, recs]) => { document.getElementById('cart').textContent = cart.items + ' items'; });
"""


def page(with_sdk: bool, origin: str) -> bytes:
    sdk = (
        f'<script src="/rum.js" data-key="hk_bench" data-app="bench" data-endpoint="{origin}"></script>'
        if with_sdk
        else ""
    )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>Shop</title>{sdk}</head>"
        f'<body><header><h1>Shop</h1><span id="cart"></span></header><ul>{CARDS}</ul>'
        f"<script>{APP_JS}</script></body></html>"
    ).encode()


class Site:
    """Loopback server: /with, /without, the bundles, two JSON APIs and a beacon sink."""

    def __init__(self) -> None:
        self.beacons = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def reply(
                self, body: bytes, ctype: str, status: int = 200, cache: str = "no-store"
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", cache)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in ("/with", "/without"):
                    self.reply(page(path == "/with", site.origin), "text/html; charset=utf-8")
                elif path.lstrip("/") in BUNDLES:
                    # as `heron serve` answers: cached for an hour (so V8's code cache helps)
                    body = (VENDOR / path.lstrip("/")).read_bytes()
                    self.reply(body, "text/javascript", cache="public, max-age=3600")
                elif path == "/api/cart":
                    self.reply(b'{"items": 3}', "application/json")
                elif path == "/api/recommendations":
                    self.reply(b'{"ids": [1, 2, 3]}', "application/json")
                else:
                    self.reply(b"not found", "text/plain", 404)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                site.beacons += 1
                self.reply(b"", "text/plain", 202)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sizes() -> list[dict[str, Any]]:
    out = []
    for name in BUNDLES:
        raw = (VENDOR / name).read_bytes()
        out.append({"file": name, "bytes": len(raw), "gzip_bytes": len(gzip.compress(raw, 9))})
    return out


def one_load(context: Any, url: str) -> dict[str, float]:
    p = context.new_page()
    try:
        cdp = context.new_cdp_session(p)
        cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
        p.goto(url, wait_until="load")
        p.wait_for_timeout(500)
        p.evaluate("window.heron && heron.flush()")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return {
            "script_ms": metrics["ScriptDuration"] * 1000,
            "task_ms": metrics["TaskDuration"] * 1000,
        }
    finally:
        p.close()


def measure(loads: int) -> dict[str, list[dict[str, float]]]:
    from playwright.sync_api import sync_playwright

    site = Site()
    runs: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
            )
            context = browser.new_context()
            for variant in ("without", "with"):  # warm-up, not counted
                one_load(context, f"{site.origin}/{variant}")
            for i in range(loads):
                order = ("without", "with") if i % 2 == 0 else ("with", "without")
                for variant in order:
                    runs[variant].append(one_load(context, f"{site.origin}/{variant}"))
            browser.close()
    finally:
        site.stop()
    if site.beacons < loads:
        raise SystemExit(f"only {site.beacons} beacons for {loads} loads with the SDK")
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=30, help="loads of each page (≥ 20)")
    args = parser.parse_args()
    missing = [n for n in BUNDLES if not (VENDOR / n).is_file()]
    if missing:
        print(f"missing {missing}: run scripts/build_assets.py", file=sys.stderr)
        return 1
    m = c.machine()
    load_before = os.getloadavg()
    print(c.machine_line(m), f"— load average {load_before[0]:.2f}", flush=True)
    size_rows = sizes()
    c.print_table(
        "RUM SDK bundles",
        ["file", "bytes", "gzip -9 bytes", "budget"],
        [
            [s["file"], s["bytes"], s["gzip_bytes"], BUDGET if s["file"] == "rum.js" else ""]
            for s in size_rows
        ],
    )
    runs = measure(args.loads)
    med = {
        v: {k: statistics.median(r[k] for r in runs[v]) for k in ("script_ms", "task_ms")}
        for v in runs
    }
    p95 = {
        v: {k: c.percentile([r[k] for r in runs[v]], 0.95) for k in ("script_ms", "task_ms")}
        for v in runs
    }
    rows = []
    for k, label in (("script_ms", "ScriptDuration"), ("task_ms", "TaskDuration")):
        delta = med["with"][k] - med["without"][k]
        ratio = med["with"][k] / med["without"][k] if med["without"][k] else float("nan")
        rows.append(
            [
                label,
                med["without"][k],
                med["with"][k],
                delta,
                ratio,
                p95["without"][k],
                p95["with"][k],
            ]
        )
    c.print_table(
        f"Main-thread cost per page load (Chromium, median of {args.loads} interleaved loads each)",
        ["metric (ms)", "without SDK", "with SDK", "delta", "ratio", "p95 without", "p95 with"],
        rows,
    )
    c.write_json(
        "rum_sdk",
        {
            "machine": m,
            "load_average_before": load_before,
            "chromium": CHROMIUM,
            "loads": args.loads,
            "sizes": size_rows,
            "median": med,
            "p95": p95,
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
