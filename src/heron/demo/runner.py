"""``heron demo``: start the server, the two demo services and traffic; stop them cleanly.

Start order: ``heron serve`` and ``demo-inventory`` together, then ``demo-shop`` (it needs
the inventory's port), then traffic — HTTP requests and a headless Chromium on the shop's
pages — once the server is healthy. The shop's port is chosen up front: the server's RUM
origin allow-list names it. Stop order is the reverse: traffic, then the apps (their agents flush on SIGTERM), then the server. Every socket is
on 127.0.0.1; every child runs in its own process group and is waited for, so nothing
outlives the demo.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from heron.demo import DEMO_API_TOKEN, DEMO_BROWSER_KEY, DEMO_INGEST_KEY
from heron.demo._procs import Child, ChildFailed
from heron.demo.alerts import DEMO_SLOS, AlertSink, rules_toml
from heron.demo.browser import BrowserTraffic
from heron.demo.loadtest import SLOWDOWN_ENV, LoadTestScenario
from heron.demo.traffic import TrafficGenerator
from heron.server.auth import DatabaseInUse, prepare_one_time_sign_in
from heron.server.config import Config

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
APP_STOP_TIMEOUT_S = 10.0
SERVER_STOP_TIMEOUT_S = 20.0
TRAFFIC_RATE = 4.0  # requests/s: visible in the API quickly, light on a 2-core machine
BROWSER_INTERVAL_S = 3.0  # pause between two Chromium journeys (each ~10 s of page loads)
DEMO_MARKER = ".heron-demo"  # marks a data dir as the demo's own
APP_EXPORT_DELAY_MS = "1000"  # OTEL_BSP_SCHEDULE_DELAY: spans show up within ~a second
DEMO_USER = "demo"
SIGN_IN_LINK_TTL_S = 15 * 60


def run_demo(port: int, data_dir: str, duration_s: float | None, *, loadtest: bool = False) -> int:
    """Run the demo until Ctrl-C, SIGTERM or ``duration_s``; 0 on a clean stop.

    ``loadtest``: once it runs, show a regression being caught (:mod:`heron.demo.loadtest`).
    """
    data = Path(data_dir).resolve()
    problem = _preflight(port, data)
    if problem:
        print(f"heron demo: {problem}", file=sys.stderr)
        return 2
    deadline = None if duration_s is None else time.monotonic() + duration_s
    stop = threading.Event()
    demo = Demo(port, data, stop)
    with _stop_on_signals(stop):
        try:
            if demo.start():
                print(demo.banner(), flush=True)
                if loadtest:
                    demo.start_loadtest()
                demo.run_until(deadline)
            rc = 0
        except ChildFailed as e:
            print(f"heron demo: {e}", file=sys.stderr, flush=True)
            rc = 1
        finally:
            demo.shutdown()
    return rc


class Demo:
    """The running pieces of one demo and their order of start and stop."""

    def __init__(self, port: int, data_dir: Path, stop: threading.Event) -> None:
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.data_dir = data_dir
        self.logs = data_dir / "logs"
        self.stop_event = stop
        self.server: Child | None = None
        self.apps: list[Child] = []  # in start order
        self.app_urls: dict[str, str] = {}
        self.traffic: TrafficGenerator | None = None
        self.browser: BrowserTraffic | None = None
        self.browser_note = ""  # why there is no browser traffic, when there is none
        self.shop_port = _free_port()
        self.password = secrets.token_urlsafe(12)  # new each run; printed in the banner
        self.sink: AlertSink | None = None
        self.sign_in_link = ""
        self.loadtest: LoadTestScenario | None = None

    def start(self) -> bool:
        """Start everything; False if a stop was requested meanwhile."""
        (self.data_dir / "apps").mkdir(parents=True, exist_ok=True)
        print(f"Starting the Heron demo (data in {self.data_dir}) ...", flush=True)
        self._prepare_sign_in()
        self.sink = AlertSink().start()
        (self.data_dir / "alert_rules.toml").write_text(rules_toml(self.sink.url + "/hook"))
        self.server = Child.start(
            "heron server",
            [sys.executable, "-m", "heron", "serve"],
            self._server_env(),
            self.logs / "server.log",
        )
        if not self._start_app("inventory", []):
            return False
        shop_args = ["--inventory-url", self.app_urls["inventory"], "--port", str(self.shop_port)]
        if not self._start_app("shop", [*shop_args, "--browser-key", DEMO_BROWSER_KEY]):
            return False
        if not self.server.wait_until(
            self._server_healthy, START_TIMEOUT_S, self.stop_event.is_set
        ):
            return False
        self._check_ingest_key()
        self._create_slos()
        self.traffic = TrafficGenerator(self.app_urls["shop"], rate=TRAFFIC_RATE)
        self.traffic.start()
        self._start_browser()
        return True

    def _start_browser(self) -> None:
        browser = BrowserTraffic(self.app_urls["shop"], interval_s=BROWSER_INTERVAL_S)
        problem = browser.unavailable()
        if problem:
            self.browser_note = f"no browser traffic: {problem}; the RUM pages stay empty"
            print(f"heron demo: {self.browser_note}", flush=True)
            return
        self.browser = browser
        browser.start()

    def start_loadtest(self) -> LoadTestScenario:
        """Baseline run, slowdown on, compared run: on a thread, printing as it goes."""

        def say(line: str) -> None:
            print(line, flush=True)

        try:
            self.loadtest = LoadTestScenario(
                heron_url=self.url,
                api_token=DEMO_API_TOKEN,
                shop_url=self.app_urls["shop"],
                log_path=self.logs / "loadtest.log",
                say=say,
                stop=threading.Event(),
            )
        except ValueError as e:  # a bad HERON_DEMO_LOADTEST_S
            raise ChildFailed(str(e)) from None
        self.loadtest.start()
        return self.loadtest

    def run_until(self, deadline: float | None) -> None:
        """Block until stopped, the deadline passes, or a child dies (ChildFailed)."""
        while not self.stop_event.wait(0.5):
            for child in self._children():
                if not child.alive():
                    raise child.failure(f"exited unexpectedly with code {child.proc.returncode}")
            if deadline is not None and time.monotonic() >= deadline:
                return

    def shutdown(self) -> None:
        """Stop traffic, then the apps (so agents flush), then the server."""
        if not self._children():
            return
        print("\nStopping the demo ...", flush=True)
        if self.loadtest is not None:
            self.loadtest.terminate()
        if self.browser is not None:
            self.browser.stop()
            print(f"  browser traffic stopped after {self.browser.journeys} visits", flush=True)
        if self.traffic is not None:
            self.traffic.stop()
            print(
                f"  traffic stopped after {self.traffic.sent} requests "
                f"({self.traffic.failed} failed, mostly on purpose)",
                flush=True,
            )
        for app in reversed(self.apps):
            self._stop(app, APP_STOP_TIMEOUT_S)
        if self.server is not None:
            self._stop(self.server, SERVER_STOP_TIMEOUT_S)
        if self.sink is not None:
            self.sink.stop()
        print("Demo stopped.", flush=True)

    def banner(self) -> str:
        auth = f"Authorization: Bearer {DEMO_API_TOKEN}"
        api = f"{self.url}/api/v1"

        def curl(path: str) -> str:
            return f"  curl -s -H {shlex.quote(auth)} {shlex.quote(api + path)}"

        return "\n".join(
            [
                "",
                "Heron demo is running.",
                f"  Heron:          {self.url}   (OTLP ingest and the JSON API at /api/v1)",
                f"  API token:      {DEMO_API_TOKEN}   (demo only)",
                f"  sign in:        {self.sign_in_link}",
                f"                  (one-time link, valid {SIGN_IN_LINK_TTL_S // 60} minutes; "
                f"or user {DEMO_USER}, password {self.password})",
                f"  demo-shop:      {self.app_urls['shop']}",
                f"  demo-inventory: {self.app_urls['inventory']}",
                f"  traffic:        ~{TRAFFIC_RATE:g} requests/s: products, search (slow), "
                "checkout (fails sometimes), orders (N+1; /v2/orders is the JOIN fix)",
                f"  alerts:         {self.url}/alerts   (rules in "
                f"{self.data_dir / 'alert_rules.toml'}: slow search, failing checkout)",
                f"  SLOs:           {self.url}/slos   (checkout availability, search latency)",
                f"  RUM:            {self.url}/rum   (web vitals, slow resources and "
                f"interactions, JS errors of {self.app_urls['shop']}/shop)",
                f"                  {self.browser_note or 'headless Chromium shops there every few seconds'}",
                f"  webhook page:   {self.sink.url if self.sink else ''}   "
                "(what the demo's webhook channel received)",
                f"  logs:           {self.logs}",
                "",
                "Try the API (the first spans arrive within a few seconds):",
                curl("/services"),
                curl("/services/demo-shop/endpoints"),
                curl("/traces?service=demo-shop"),
                curl("/traces/<trace_id from the previous answer>"),
                "",
                "Press Ctrl-C to stop.",
            ]
        )

    # ------------------------------------------------------------------ internals

    def _prepare_sign_in(self) -> None:
        """Give the demo user this run's password and a one-time sign-in link.

        Done on the data dir before the server starts (DuckDB lets one process open it);
        the server then finds a user and creates no admin of its own.
        """
        db_path = Config(data_dir=str(self.data_dir)).db_path
        try:
            token = prepare_one_time_sign_in(db_path, DEMO_USER, self.password, SIGN_IN_LINK_TTL_S)
        except DatabaseInUse as e:
            raise ChildFailed(f"{e} Is another demo using {self.data_dir}?") from None
        self.sign_in_link = f"{self.url}/login/once?token={token}"

    def _children(self) -> list[Child]:
        return [*self.apps, *([self.server] if self.server else [])]

    def _start_app(self, name: str, extra: list[str]) -> bool:
        ready = self.data_dir / "apps" / f"{name}.port"
        ready.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            f"heron.demo.{name}",
            "--db",
            str(self.data_dir / "apps" / f"{name}.sqlite"),
            "--ready-file",
            str(ready),
            "--heron-url",
            self.url,
            "--key",
            DEMO_INGEST_KEY,
            *extra,
        ]
        app = Child.start(f"demo-{name}", argv, self._app_env(), self.logs / f"{name}.log")
        self.apps.append(app)
        if not app.wait_until(ready.exists, START_TIMEOUT_S, self.stop_event.is_set):
            return False
        self.app_urls[name] = f"http://{HOST}:{int(ready.read_text())}"
        return True

    def _server_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except (OSError, ValueError):
            return False

    def _check_ingest_key(self) -> None:
        """An existing data dir keeps its own key; the demo's apps would then get 401s."""
        req = urllib.request.Request(
            f"{self.url}/v1/traces",
            data=json.dumps({"resourceSpans": []}).encode(),
            headers={"Content-Type": "application/json", "x-heron-key": DEMO_INGEST_KEY},
        )
        try:
            urllib.request.urlopen(req, timeout=5).close()
        except urllib.error.HTTPError as e:
            raise ChildFailed(
                f"the server rejected the demo's ingest key ({e.code}): {self.data_dir} was "
                "not created by `heron demo`; pass a fresh --data-dir"
            ) from None

    def _create_slos(self) -> None:
        """The demo's SLOs (through the API, as a user would): their budgets burn on the
        failing checkout and the slow search, so the SLO pages and burn alerts have data.
        A data dir from an earlier demo has them already (409: kept)."""
        for slo in DEMO_SLOS:
            req = urllib.request.Request(
                f"{self.url}/api/v1/slos",
                data=json.dumps(slo).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {DEMO_API_TOKEN}",
                },
            )
            try:
                urllib.request.urlopen(req, timeout=10).close()
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise ChildFailed(
                        f"creating the demo's SLO failed ({e.code}): {e.read()!r}"
                    ) from None

    def _stop(self, child: Child, timeout: float) -> None:
        clean = child.stop(timeout)
        how = "stopped" if clean else f"killed after {timeout:.0f}s"
        print(f"  {child.name} {how}", flush=True)

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _server_env(self) -> dict[str, str]:
        return {
            **self._base_env(),
            "HERON_HOST": HOST,
            "HERON_PORT": str(self.port),
            "HERON_DATA_DIR": str(self.data_dir),
            "HERON_INGEST_KEY": DEMO_INGEST_KEY,
            "HERON_API_TOKEN": DEMO_API_TOKEN,
            # The demo's rules and its loopback webhook receiver (docs/alerting.md).
            "HERON_ALERT_RULES_PATH": str(self.data_dir / "alert_rules.toml"),
            "HERON_ALERT_ALLOWED_HOSTS": HOST,
            "HERON_ALERT_TICK_S": "5",
            # The shop's pages send RUM beacons from the shop's origin (docs/rum.md).
            "HERON_RUM_BROWSER_KEY": DEMO_BROWSER_KEY,
            "HERON_RUM_ALLOWED_ORIGINS": f"http://{HOST}:{self.shop_port}",
        }

    def _app_env(self) -> dict[str, str]:
        env = {**self._base_env(), "OTEL_BSP_SCHEDULE_DELAY": APP_EXPORT_DELAY_MS}
        if os.environ.get(SLOWDOWN_ENV):  # the shop's knob (docs/demo.md), else off
            env[SLOWDOWN_ENV] = os.environ[SLOWDOWN_ENV]
        return env


def _preflight(port: int, data_dir: Path) -> str | None:
    """Why the demo cannot start with these options, or None."""
    if not 0 < port < 65536:
        return f"--port must be between 1 and 65535, not {port}"
    if not _port_free(port):
        return f"port {port} on {HOST} is in use; choose another with --port"
    return _claim_data_dir(data_dir)


def _claim_data_dir(data_dir: Path) -> str | None:
    """Mark ``data_dir`` as the demo's; refuse one holding other Heron data.

    The demo's server adds the well-known demo API token to its data dir, which must never
    happen to a real one.
    """
    marker = data_dir / DEMO_MARKER
    if Config(data_dir=str(data_dir)).db_path.exists() and not marker.exists():
        return (
            f"{data_dir} holds Heron data not created by `heron demo`, and the demo would "
            "add its well-known API token to it; pass a fresh --data-dir"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("Created by `heron demo`: its ingest key and API token are demo-only.\n")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` instead of raising, so shutdown runs to the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
