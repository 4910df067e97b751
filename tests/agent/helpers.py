"""Helpers for the agent tests: ports, clean environments, subprocesses, Heron's API."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

APPS = Path(__file__).parent / "apps"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    return free_port()


def agent_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for an app subprocess: no inherited HERON_*/OTEL_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    # As in an activated virtualenv: "python" is the interpreter heron is installed in.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"  # export quickly so tests wait less
    env.update(extra)
    return env


class Procs:
    """Subprocesses of one test; each is killed (with its process group) in teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(
        self, args: Sequence[str], env: dict[str, str], name: str, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        log_path = self.tmp_path / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            list(args),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd or self.tmp_path,
            start_new_session=True,
        )
        log.close()
        self.started.append((proc, log_path))
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        for p, path in self.started:
            if p is proc:
                return path.read_text(errors="replace")
        return ""

    def stop(
        self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0
    ) -> int:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        return proc.wait()

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def wait_http(self, proc: subprocess.Popen[bytes], url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args} exited early:\n{self.log(proc)}")
            try:
                httpx.get(url, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"{url} did not answer in {timeout}s:\n{self.log(proc)}")


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


# ------------------------------------------------------------------ Heron's read API

Span = dict[str, Any]


def fetch_spans(heron: Any, service: str | None = None, **filters: object) -> list[Span]:
    """Every stored span of the traces that have a span of ``service`` (newest 200 traces).

    Each span dict is the API's (``span_id``, ``parent_id``, ``service``, ``name``,
    ``kind``, ``attributes``, ``resource``, ``duration_ms`` ...) plus its ``trace_id``.
    """
    params: dict[str, object] = {"limit": 200, **filters}
    if service is not None:
        params["service"] = service
    listing = heron.api("/api/v1/traces", **params)
    if listing.status_code != 200:
        return []
    spans = []
    for summary in listing.json()["traces"]:
        detail = heron.api(f"/api/v1/traces/{summary['trace_id']}")
        if detail.status_code == 200:
            spans.extend({**s, "trace_id": summary["trace_id"]} for s in detail.json()["spans"])
    return spans


def wait_spans(
    heron: Any,
    predicate: Callable[[list[Span]], bool],
    *,
    service: str | None = None,
    timeout: float = 30.0,
    **filters: object,
) -> list[Span]:
    """Poll until ``predicate(fetch_spans(...))`` holds; return those spans."""
    deadline = time.monotonic() + timeout
    spans: list[Span] = []
    while time.monotonic() < deadline:
        spans = fetch_spans(heron, service, **filters)
        if predicate(spans):
            return spans
        time.sleep(0.25)
    summary = [(s["service"], s["name"], s["kind"]) for s in spans]
    raise AssertionError(f"timed out after {timeout}s; spans seen: {summary}")


def server_spans(spans: list[Span], service: str) -> list[Span]:
    return [s for s in spans if s["service"] == service and s["kind"] == "server"]
