"""``heron demo`` end to end: real subprocesses, real sockets, the real read API.

Within 30 s of launch the API must show both demo services, the shop's normal, slow,
erroring and N+1 endpoints, and a trace crossing both services; within 90 s the headless
Chromium's visits must fill the RUM views; then Ctrl-C (SIGINT) must stop everything with
exit code 0 and leave no child process behind (Chromium included).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from heron.demo import DEMO_API_TOKEN, INVENTORY_SERVICE, SHOP_SERVICE
from heron.demo._sql import span_name

pytestmark = pytest.mark.e2e

READY_WITHIN_S = 30.0
RUM_WITHIN_S = 90.0  # Chromium's first journeys, each page load's beacons on leaving it
EXIT_WITHIN_S = 45.0
SHOP_ENDPOINTS = {
    "GET /products/<int:product_id>",  # normal, calls demo-inventory
    "GET /search",  # slow
    "POST /checkout",  # erroring
    "GET /orders",  # N+1
    "GET /v2/orders",  # the N+1 fixed with a JOIN
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    """A ``heron demo`` subprocess whose output is collected on a thread."""

    def __init__(self, tmp_path: Path, *args: str, **env_vars: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
        env.update(env_vars)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "heron",
                "demo",
                "--port",
                str(self.port),
                "--data-dir",
                str(tmp_path / "demo-data"),
                *args,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.output)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in the demo's output:\n{self.output}")

    def api(self, path: str, token: str, **params: str) -> Any:
        r = httpx.get(
            f"http://127.0.0.1:{self.port}{path}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        return r.json() if r.status_code == 200 else None

    def wait_for_api(
        self,
        path: str,
        token: str,
        ok: Callable[[Any], bool],
        within_s: float = READY_WITHIN_S,
        **params: str,
    ) -> Any:
        """Poll until ``ok(json)``; the deadline is ``within_s`` after launch."""
        last = None
        while time.monotonic() < self.started + within_s:
            last = self.api(path, token, **params)
            if last is not None and ok(last):
                return last
            time.sleep(0.5)
        raise AssertionError(
            f"{path} {params} not ready within {within_s:.0f}s "
            f"of launch; last answer: {last}\noutput:\n{self.output}"
        )

    def finish(self, sig: int | None = None) -> int:
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(EXIT_WITHIN_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(5)
            assert self.proc.stdout is not None
            self.proc.stdout.close()


def still_running(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def children_after_banner(demo: Demo) -> list[psutil.Process]:
    """The server and both apps, read once the demo says it is running."""
    demo.wait_for_output(r"Press Ctrl-C to stop", READY_WITHIN_S)
    children = psutil.Process(demo.proc.pid).children(recursive=True)
    assert len(children) >= 3, children
    return children


def test_demo_shows_services_endpoints_and_cross_service_traces(tmp_path: Path) -> None:
    demo = Demo(tmp_path, "--duration", "240")
    children: list[psutil.Process] = []
    try:
        token = demo.wait_for_output(r"API token:\s+(\S+)", READY_WITHIN_S).group(1)
        assert token == DEMO_API_TOKEN
        children = children_after_banner(demo)
        assert f"curl -s -H 'Authorization: Bearer {token}'" in demo.output
        check_one_time_sign_in(demo)

        demo.wait_for_api(
            "/api/v1/services",
            token,
            lambda j: {SHOP_SERVICE, INVENTORY_SERVICE} <= {s["service"] for s in j["services"]},
        )
        endpoints = demo.wait_for_api(
            f"/api/v1/services/{SHOP_SERVICE}/endpoints",
            token,
            lambda j: (
                {e["endpoint"] for e in j["endpoints"]} >= SHOP_ENDPOINTS
                and any(
                    e["endpoint"] == "POST /checkout" and e["error_rate"] > 0
                    for e in j["endpoints"]
                )
            ),
        )
        by_name = {e["endpoint"]: e for e in endpoints["endpoints"]}
        assert (
            by_name["GET /search"]["p95_ms"] > by_name["GET /products/<int:product_id>"]["p95_ms"]
        ), by_name
        demo.wait_for_api(
            "/api/v1/traces",
            token,
            lambda j: any(
                {SHOP_SERVICE, INVENTORY_SERVICE} <= set(t["services"]) for t in j["traces"]
            ),
            service=SHOP_SERVICE,
        )
        # A failing checkout (a declined card, or the inventory's 409 when stock runs
        # short) is an issue with the request's trace, reported once; the apps' log lines
        # arrive with their traces.
        checkout_errors = {"PaymentDeclined", "HTTPError"}
        issues = demo.wait_for_api(
            "/api/v1/issues",
            token,
            lambda j: any(i["exc_type"] in checkout_errors for i in j["issues"]),
        )["issues"]
        assert len({i["exc_type"] for i in issues}) == len(issues), issues  # no duplicates
        failed = next(i for i in issues if i["exc_type"] in checkout_errors)
        assert failed["culprit"].endswith((" in _checkout", " in _charge")), failed
        assert failed["releases"], failed
        detail = demo.api(f"/api/v1/issues/{failed['id']}", token)
        assert detail is not None and detail["latest"]["trace_id"]
        assert detail["latest"]["transaction"] == "POST /checkout"
        logs = demo.wait_for_api(
            "/api/v1/logs",
            token,
            lambda j: any(x["logger"] == "demo.shop" and x["trace_id"] for x in j["logs"]),
            service=SHOP_SERVICE,
        )
        line = next(x for x in logs["logs"] if x["logger"] == "demo.shop" and x["trace_id"])
        assert line["severity"] in ("info", "warn"), line
        check_slow_search_is_explained(demo, token)
        check_metrics(demo, token)
        check_rum(demo, token)
        # Chromium started after the banner: it must stop with the demo too.
        later = psutil.Process(demo.proc.pid).children(recursive=True)
        assert any("chrom" in p.name().lower() for p in later), later
        children += [p for p in later if p not in children]
        check_alerts_fire_and_arrive(demo, token)
    finally:
        rc = demo.finish(signal.SIGINT)
    assert rc == 0, demo.output
    assert "Demo stopped." in demo.output
    assert still_running(children) == []


ALERTS_WITHIN_S = 180.0  # the demo's rules: 2-minute windows, for 1m, 15 s interval


def check_alerts_fire_and_arrive(demo: Demo, token: str) -> None:
    """The demo's rule file fires on the slow search and the failing checkout, and the
    notifications reach the log channel and the demo's webhook receiver page."""
    sink = demo.wait_for_output(r"webhook page:\s+(http://\S+)", 5).group(1)
    wanted = {"Slow search", "Checkout failing"}
    got: set[str] = set()
    received: list[Any] = []
    while time.monotonic() < demo.started + ALERTS_WITHIN_S and got != wanted:
        received = httpx.get(f"{sink}/received.json", timeout=10).json()
        got = {
            a["labels"]["alertname"]
            for r in received
            if r["payload"].get("status") == "firing"
            for a in r["payload"]["alerts"]
        } & wanted
        time.sleep(1)
    assert got == wanted, (received, demo.output[-3000:])
    firing = demo.api("/api/v1/alerts", token, state="firing")["alerts"]
    assert wanted <= {a["labels"]["alertname"] for a in firing}, firing
    search = next(a for a in firing if a["labels"]["alertname"] == "Slow search")
    assert search["labels"]["endpoint"] == "GET /search" and search["value"] > 100, search
    assert "GET /search p95 is" in search["annotations"]["summary"], search
    page = httpx.get(sink, timeout=10).text
    assert "Slow search" in page or "GET /search p95 is" in page
    log = demo.api("/api/v1/alerts/notifications", token)["notifications"]
    assert any(n["status"] == "sent" and n["channel"] == "demo log" for n in log), log
    # The demo's SLOs: the failing checkout spends the availability budget.
    slos = {s["name"]: s for s in demo.api("/api/v1/slos", token)["slos"]}
    assert set(slos) == {"Checkout availability", "Search under 300 ms"}, slos
    checkout = slos["Checkout availability"]
    assert checkout["status"]["budget_remaining"] < 0, checkout  # ~25 % errors vs 1 %


def check_rum(demo: Demo, token: str) -> None:
    """Chromium shops on the shop's pages (a desktop and an iPhone-like context): page
    views and web vitals of both device classes, the heavy hero image as a slow resource,
    the slow Add to cart as a long interaction, and the coupon's TypeError as an issue."""
    assert "RUM:" in demo.output and "no browser traffic" not in demo.output, demo.output

    def filled(j: dict[str, Any]) -> bool:
        o = j["overview"]
        vitals = {v["name"]: v["count"] for v in o["vitals"]}
        devices = {d for d, vs in o["by_device"].items() if any(v["count"] for v in vs)}
        return (
            o["views"] >= 2
            and all(vitals.get(n) for n in ("LCP", "FCP", "TTFB"))
            and {"desktop", "mobile"} <= devices
        )

    overview = demo.wait_for_api("/api/v1/rum/overview", token, filled, RUM_WITHIN_S)
    lcp = next(v for v in overview["overview"]["vitals"] if v["name"] == "LCP")
    assert 1000 < lcp["p75"] < 60_000, lcp  # the hero image arrives after ~1.3 s

    def slow_parts(j: dict[str, Any]) -> bool:
        d = j["detail"]
        return any(r["name"].endswith("/hero.png") for r in d["resources"]) and any(
            "add-to-cart" in i["target"] for i in d["interactions"]
        )

    page = demo.wait_for_api(
        "/api/v1/rum/page", token, slow_parts, RUM_WITHIN_S, page="/shop/products/:id"
    )["detail"]
    hero = next(r for r in page["resources"] if r["name"].endswith("/hero.png"))
    assert hero["p75"] > 1000 and hero["target"] == "img", hero
    click = next(i for i in page["interactions"] if "add-to-cart" in i["target"])
    assert click["p75"] > 200, click  # the handler busy-waits 250 ms
    issues = demo.wait_for_api(
        "/api/v1/issues",
        token,
        lambda j: any(i["exc_type"] == "TypeError" for i in j["issues"]),
        RUM_WITHIN_S,
    )["issues"]
    coupon = next(i for i in issues if i["exc_type"] == "TypeError")
    latest = demo.api(f"/api/v1/issues/{coupon['id']}", token)["latest"]
    assert latest["platform"] == "javascript" and latest["service"] == "shop-web", latest
    assert any(f["function"] == "applyCoupon" for f in latest["exceptions"][-1]["frames"])


def check_metrics(demo: Demo, token: str) -> None:
    """Both services send runtime metrics, and the shop its business metrics: orders
    placed (a counter) and payment amounts (a histogram), within the demo's first minute."""
    wanted = {"shop.orders.placed", "shop.payment.amount", "process.cpu.utilization"}

    def by_name(j: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {m["name"]: m for m in j["metrics"]}

    def arrived(j: dict[str, Any]) -> bool:
        got = by_name(j)
        cpu = got.get("process.cpu.utilization", {}).get("services", [])
        return wanted <= set(got) and {SHOP_SERVICE, INVENTORY_SERVICE} <= set(cpu)

    catalog = by_name(demo.wait_for_api("/api/v1/metrics", token, arrived))
    assert catalog["shop.orders.placed"]["kind"] == "counter", catalog["shop.orders.placed"]
    assert catalog["shop.payment.amount"]["kind"] == "histogram"
    placed = demo.api("/api/v1/metrics/query", token, metric="shop.orders.placed", agg="increase")
    assert placed is not None
    total = sum(v or 0 for s in placed["series"] for _, v in s["points"])
    assert total >= 1, placed


def check_slow_search_is_explained(demo: Demo, token: str) -> None:
    """The search's SELECT is slower than the demo's EXPLAIN threshold: the slow query
    log groups its calls and shows SQLite's plan of them (its unindexed scans)."""

    def explained_search(group: dict[str, Any]) -> bool:
        return "FROM products p" in (group["display"] or "") and bool(group["plan"])

    groups = demo.wait_for_api(
        "/api/v1/db/slow", token, lambda j: any(explained_search(g) for g in j["groups"])
    )["groups"]
    search = next(g for g in groups if explained_search(g))
    assert (search["db_system"], search["plan_format"]) == ("sqlite", "text"), search
    assert search["services"] == [SHOP_SERVICE] and search["endpoints"] == ["GET /search"]
    assert search["count"] >= 1 and search["max_ms"] >= 100, search
    plan = search["plan"].splitlines()
    assert plan[0] == "SCAN p" and any(x.strip() == "SCAN r2" for x in plan), plan
    assert any("CORRELATED SCALAR SUBQUERY" in x for x in plan), plan
    fps = {g["fingerprint"] for g in groups}
    assert len(fps) == len(groups), groups  # one row per query shape


def check_one_time_sign_in(demo: Demo) -> None:
    """The banner's link signs the demo user in once, and only once."""
    link = demo.wait_for_output(r"sign in:\s+(http://127\.0\.0\.1:\d+/login/once\?token=\S+)", 1)
    url = link.group(1)
    with httpx.Client(timeout=10) as browser:
        r = browser.get(url)
        assert (r.status_code, r.headers["location"]) == (303, "/")
        assert "heron_session" in browser.cookies
        base = f"http://127.0.0.1:{demo.port}"
        assert browser.get(f"{base}/api/v1/services").status_code == 200
        page = browser.get(f"{base}/", headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text
    with httpx.Client(timeout=10) as again:
        r = again.get(url)
        assert r.status_code == 400 and "already used" in r.text
        assert "heron_session" not in again.cookies
    password = demo.wait_for_output(r"or user demo, password (\S+)\)", 1).group(1)
    with httpx.Client(base_url=f"http://127.0.0.1:{demo.port}", timeout=10) as browser:
        form = browser.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf
        r = browser.post(
            "/login",
            data={"username": "demo", "password": password, "csrf_token": csrf.group(1)},
        )
        assert r.status_code == 303 and "heron_session" in browser.cookies


def test_demo_stops_by_itself_after_duration(tmp_path: Path) -> None:
    demo = Demo(tmp_path, "--duration", "8")
    try:
        children = children_after_banner(demo)
    finally:
        rc = demo.finish()
    assert rc == 0, demo.output
    assert still_running(children) == []
    for name in ("server", "shop", "inventory"):
        assert (tmp_path / "demo-data" / "logs" / f"{name}.log").exists()


def test_demo_runs_without_a_browser(tmp_path: Path) -> None:
    """No Chromium: one line says there is no browser traffic; everything else runs."""
    missing = tmp_path / "no-chromium"
    demo = Demo(tmp_path, "--duration", "8", HERON_CHROMIUM=str(missing))
    try:
        children = children_after_banner(demo)
        demo.wait_for_api("/api/v1/services", DEMO_API_TOKEN, lambda j: bool(j["services"]))
    finally:
        rc = demo.finish()
    assert rc == 0, demo.output
    notes = [x for x in demo.lines if "no browser traffic" in x]
    assert len(notes) == 2, demo.output  # the warning, and the banner's RUM line
    assert notes[0].startswith(f"heron demo: no browser traffic: no Chromium at {missing}")
    assert "browser traffic stopped" not in demo.output
    assert still_running(children) == []


def test_demo_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "heron",
                "demo",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "d"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 2
    assert f"port {port}" in r.stderr


def test_demo_refuses_a_data_dir_it_did_not_create(tmp_path: Path) -> None:
    data = tmp_path / "heron-data"
    data.mkdir()
    (data / "heron.duckdb").write_bytes(b"")  # as if a real `heron serve` had used it
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "heron",
            "demo",
            "--port",
            str(free_port()),
            "--data-dir",
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "not created by `heron demo`" in r.stderr
    assert sorted(p.name for p in data.iterdir()) == ["heron.duckdb"]


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT id FROM orders WHERE id = ?", "SELECT orders"),
        ("SELECT p.id, (SELECT 1 FROM reviews r) FROM products p", "SELECT products"),
        ("INSERT INTO orders (a) VALUES (?) RETURNING id", "INSERT orders"),
        ("update stock set quantity = 1", "UPDATE stock"),
        ("PRAGMA journal_mode", "PRAGMA"),
    ],
)
def test_database_span_names_use_the_statements_own_table(sql: str, name: str) -> None:
    assert span_name(sql) == name
