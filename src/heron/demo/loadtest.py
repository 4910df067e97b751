"""The demo's load-test mode: a slowdown knob in ``demo-shop`` and a regression being caught.

``heron demo --loadtest`` starts the demo as usual, then runs two short load tests with
the built-in Locust driver (``heron loadtest run``, a subprocess, exactly as a user would
type it) against the shop's normal endpoints:

1. a baseline, with the shop at its normal speed;
2. the same load after turning the slowdown knob on (``SLOWDOWN_FACTOR``: each slowed
   request takes that many times as long), compared with the baseline by name.

The second run's exit code is the gate's answer (1: regression); the runner prints it
with the compare page's URL, turns the slowdown off and keeps serving.

The knob (:func:`install_slowdown`) scales the handler time of ``SLOWED_ENDPOINTS``: after
the handler ran for ``t``, the request sleeps ``(factor - 1) * max(t, SLOWDOWN_BASIS_S)``
more (what a slower dependency or a heavier code path does). The basis is there because
these handlers take a few milliseconds, less than the scheduling noise of a busy laptop:
x1.5 on 3 ms is a real change but one no test should be asked to see in 15 seconds, so a
factor of 1.5 adds at least 50 ms. It starts at ``HERON_DEMO_SLOWDOWN`` (default 1, off)
and is changed at run time with ``POST /admin/slowdown {"factor": 1.5}`` on the shop
(loopback only, like the whole demo).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, g, jsonify, request

SLOWDOWN_ENV = "HERON_DEMO_SLOWDOWN"
DURATION_ENV = "HERON_DEMO_LOADTEST_S"
"""Seconds of each of ``--loadtest``'s two runs (default ``LOAD_DURATION_S``; tests: less)."""
SLOWED_ENDPOINTS = frozenset({"products", "product"})
"""Flask endpoint names of ``GET /products`` and ``GET /products/<id>``: the shop's
normal routes, fast enough for a short load test to carry hundreds of requests."""
MAX_FACTOR = 10.0
SLOWDOWN_BASIS_S = 0.1
SLOWDOWN_FACTOR = 1.5
"""What ``--loadtest`` turns on: +50 %, well past the gate's default 20 % threshold."""
RUN_NAME = "demo-shop"
LOAD_PATHS = ("/products", "/products/1", "/products/2", "/products/3")
LOAD_USERS = 4
LOAD_WAIT_S = 0.05
"""Each user's pause between requests: a steady load (~60 requests/s here) that leaves the
machine idle part of the time. Flat out, the shop saturates the CPU and a slower handler
then means fewer requests and less queueing, which hides part of the slowdown; real
load tests run at a target rate for the same reason."""
LOAD_DURATION_S = 15
SETTLE_S = 20
GATE_TIMEOUT_S = 180.0  # one run: its duration, ingestion settling, the comparison


def load_duration_s() -> int:
    """Each run's length: ``HERON_DEMO_LOADTEST_S`` (3-600) or ``LOAD_DURATION_S``."""
    raw = os.environ.get(DURATION_ENV, "").strip()
    if not raw:
        return LOAD_DURATION_S
    if not raw.isdigit() or not 3 <= int(raw) <= 600:
        raise ValueError(f"{DURATION_ENV} must be a whole number of seconds, 3-600, not {raw!r}")
    return int(raw)


def parse_factor(raw: object) -> float:
    """A slowdown factor from an env var or a request body: a number in [1, MAX_FACTOR]."""
    try:
        factor = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"slowdown factor must be a number, not {raw!r}") from None
    if not 1.0 <= factor <= MAX_FACTOR:  # also rejects nan
        raise ValueError(f"slowdown factor must be between 1 and {MAX_FACTOR:g}, not {raw!r}")
    return factor


class Slowdown:
    """The shop's current factor; Flask's threaded server reads it from every request."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    @classmethod
    def from_env(cls) -> Slowdown:
        raw = os.environ.get(SLOWDOWN_ENV, "").strip()
        return cls(parse_factor(raw) if raw else 1.0)


def install_slowdown(
    app: Flask, knob: Slowdown | None = None, sleep: Callable[[float], None] = time.sleep
) -> Slowdown:
    """Add the knob to the shop: the timing hooks and ``GET/POST /admin/slowdown``.
    (``sleep``: tests record the delays instead of timing them.)"""
    knob = knob or Slowdown.from_env()

    @app.before_request
    def _start_clock() -> None:
        g.slowdown_t0 = time.perf_counter()

    @app.after_request
    def _slow_down(response: Any) -> Any:
        t0 = g.pop("slowdown_t0", None)
        if knob.factor > 1.0 and t0 is not None and request.endpoint in SLOWED_ENDPOINTS:
            spent = time.perf_counter() - t0
            sleep((knob.factor - 1.0) * max(spent, SLOWDOWN_BASIS_S))
        return response

    @app.get("/admin/slowdown")
    def get_slowdown() -> Any:
        return jsonify(factor=knob.factor, endpoints=sorted(SLOWED_ENDPOINTS))

    @app.post("/admin/slowdown")
    def set_slowdown() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "factor" not in body:
            return jsonify(error='send JSON {"factor": <1..10>}'), 400
        try:
            knob.factor = parse_factor(body["factor"])
        except ValueError as e:
            return jsonify(error=str(e)), 400
        return jsonify(factor=knob.factor, endpoints=sorted(SLOWED_ENDPOINTS))

    return knob


def set_shop_slowdown(shop_url: str, factor: float) -> None:
    """Turn the running shop's knob (the runner's side of ``POST /admin/slowdown``)."""
    req = urllib.request.Request(
        f"{shop_url}/admin/slowdown",
        data=json.dumps({"factor": factor}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


@dataclass
class GateResult:
    """What the demo's two runs said: the second run's exit code and where to look."""

    baseline_rc: int | None = None
    run_rc: int | None = None
    compare_url: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def caught(self) -> bool:
        return self.run_rc == 1

    def verdict(self) -> str:
        return {
            0: "no regression found (exit 0)",
            1: "REGRESSION caught (exit 1)",
            2: "the load test could not run (exit 2: usage or API error)",
            3: "the load tool failed (exit 3)",
        }.get(self.run_rc if self.run_rc is not None else -1, f"exit {self.run_rc}")


@dataclass
class LoadTestScenario:
    """Baseline, slowdown, run again with ``--baseline``: on a thread of the runner.

    Each run is ``python -m heron loadtest run ...`` with the demo's URL and API token;
    its output goes to ``log_path`` and to ``say`` (the runner prints it)."""

    heron_url: str
    api_token: str
    shop_url: str
    log_path: Path
    say: Callable[[str], None]
    stop: threading.Event
    duration_s: int = field(default_factory=load_duration_s)
    users: int = LOAD_USERS
    factor: float = SLOWDOWN_FACTOR
    result: GateResult = field(default_factory=GateResult)
    done: threading.Event = field(default_factory=threading.Event)
    _proc: subprocess.Popen[str] | None = None

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self._run, name="demo-loadtest", daemon=True)
        t.start()
        return t

    def argv(self, label: str, baseline: bool) -> list[str]:
        argv = [sys.executable, "-m", "heron", "loadtest", "run", "--name", RUN_NAME]
        argv += ["--target", self.shop_url]
        for p in LOAD_PATHS:
            argv += ["--path", p]
        argv += ["--users", str(self.users), "--duration", f"{self.duration_s}s"]
        argv += ["--wait", f"{LOAD_WAIT_S:g}"]
        argv += ["--settle", str(SETTLE_S), "--service", "demo-shop"]
        argv += ["--label", f"slowdown={label}", "--label", "source=heron demo --loadtest"]
        if baseline:
            argv += ["--baseline", RUN_NAME]
        return argv

    def _run(self) -> None:
        try:
            self._scenario()
        except Exception as e:
            self.say(f"heron demo --loadtest: {type(e).__name__}: {e}")
        finally:
            self.done.set()

    def _scenario(self) -> None:
        r = self.result
        self.say("Load test 1/2: baseline (shop at normal speed) ...")
        set_shop_slowdown(self.shop_url, 1.0)
        r.baseline_rc = self._loadtest("1.0", baseline=False)
        if self.stop.is_set() or r.baseline_rc not in (0,):
            self.say(f"heron demo --loadtest: the baseline run ended with exit {r.baseline_rc}")
            return
        extra_ms = (self.factor - 1) * SLOWDOWN_BASIS_S * 1000
        self.say(
            f"Slowdown on: GET /products and /products/<id> now take x{self.factor:g} their "
            f"handler time, at least +{extra_ms:.0f} ms (the shop's knob, docs/demo.md)."
        )
        set_shop_slowdown(self.shop_url, self.factor)
        try:
            self.say("Load test 2/2: the same load, compared with the baseline ...")
            r.run_rc = self._loadtest(f"{self.factor:g}", baseline=True)
        finally:
            set_shop_slowdown(self.shop_url, 1.0)
        if self.stop.is_set():
            return
        r.compare_url = self._compare_url()
        self.say("")
        self.say(f"Load-test gate: {r.verdict()}")
        if r.compare_url:
            self.say(f"  compare page:  {r.compare_url}")
        self.say(f"  all runs:      {self.heron_url}/loadtests")
        self.say("  (slowdown off again; the demo keeps serving. Press Ctrl-C to stop.)")

    def _loadtest(self, label: str, baseline: bool) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
        env.update(HERON_URL=self.heron_url, HERON_API_TOKEN=self.api_token)
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as log:
            proc = subprocess.Popen(
                self.argv(label, baseline),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            self._proc = proc
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                self.result.output.append(line.rstrip("\n"))
                self.say("  | " + line.rstrip("\n"))
                if self.stop.is_set():
                    proc.terminate()
            try:
                return proc.wait(GATE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait()

    def _compare_url(self) -> str:
        """The compare page of the newest run (the one just compared)."""
        req = urllib.request.Request(
            f"{self.heron_url}/api/v1/loadtests?name={RUN_NAME}&limit=1",
            headers={"Authorization": f"Bearer {self.api_token}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                runs = json.load(resp).get("runs") or []
        except (OSError, ValueError, urllib.error.URLError):
            return ""
        if not runs:
            return ""
        run = runs[0]
        q = f"?baseline={run['baseline_id']}" if run.get("baseline_id") else ""
        return f"{self.heron_url}/loadtests/{run['id']}/compare{q}"

    def terminate(self) -> None:
        """Stop a load test in flight (the runner's shutdown)."""
        self.stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
