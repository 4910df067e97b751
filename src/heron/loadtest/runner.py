"""Run the load tool's command inside the run's window, and wait for its telemetry.

The window is the server's clock between ``POST /loadtests`` and ``.../finish``; the
command inherits this terminal (stdin, stdout, stderr). Signals: SIGTERM sent to
``heron`` (a CI runner cancelling the job) is forwarded to the command; SIGINT too,
except when it came from the terminal's Ctrl-C, which the kernel already delivered to
the command (same foreground process group) — forwarding it again would make tools that
treat a second Ctrl-C as "quit now" (Locust does) skip their own shutdown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from heron.loadtest.client import Client


@dataclass(frozen=True)
class CommandResult:
    """``exit_code`` as a shell reports it (128 + N when killed by signal N)."""

    exit_code: int
    interrupted: bool  # heron got SIGINT/SIGTERM while the command ran

    @property
    def status(self) -> str:
        """The run's status for ``FinishRun``."""
        if self.interrupted:
            return "aborted"
        return "finished" if self.exit_code == 0 else "failed"


def _from_terminal(sig: int) -> bool:
    """Whether a SIGINT most likely came from Ctrl-C (we are the terminal's foreground)."""
    if sig != signal.SIGINT:
        return False
    try:
        return os.getpgrp() == os.tcgetpgrp(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        return False


def run_command(argv: Sequence[str]) -> CommandResult:
    """Run ``argv`` to its end, forwarding SIGINT/SIGTERM; never raises for its failures."""
    try:
        proc = subprocess.Popen(list(argv))
    except OSError as e:
        print(f"heron loadtest: cannot run {argv[0]!r}: {e}", file=sys.stderr)
        return CommandResult(127, False)
    got: list[int] = []

    def forward(sig: int, _frame: FrameType | None) -> None:
        got.append(sig)
        if proc.poll() is None and not _from_terminal(sig):
            proc.send_signal(sig)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return CommandResult(128 - code if code < 0 else code, bool(got))


def request_count(run: dict[str, Any]) -> int:
    """Requests seen so far in the run's window (its summary, every endpoint)."""
    endpoints = (run.get("summary") or {}).get("endpoints") or []
    return int(sum((e.get("requests") or 0) for e in endpoints))


def settle(
    client: Client,
    run_id: int,
    max_s: float,
    interval_s: float = 2.0,
    say: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll the run until its request count stops growing; return the last answer.

    Agents export in batches (Heron's every second), so the window's last requests reach
    the server a moment after the load stops. Settled = the count is non-zero and the
    same on two polls ``interval_s`` apart; give up after ``max_s`` (0: do not wait).
    """
    run = client.get(run_id)
    count = request_count(run)
    deadline = time.monotonic() + max_s
    while time.monotonic() + interval_s <= deadline:
        sleep(interval_s)
        run = client.get(run_id)
        now = request_count(run)
        if now == count and now > 0:
            break
        if say is not None:
            say(f"waiting for telemetry: {now} requests stored")
        count = now
    return run


def parse_duration(text: str) -> float:
    """``30``, ``30s``, ``2m``, ``1h``, ``1m30s`` → seconds; ValueError otherwise."""
    import re

    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (e.g. 30s, 2m, 1m30s)")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def run_driver(
    argv: Sequence[str], on_ready: Callable[[], None]
) -> tuple[CommandResult, dict[str, Any] | None]:
    """Run the Locust driver child (``locust_driver`` protocol): ``on_ready`` is called
    when its users are built, before it starts the load; returns its final figures."""
    import json

    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    got: list[int] = []

    def forward(sig: int, _frame: FrameType | None) -> None:
        got.append(sig)
        if proc.poll() is None and not _from_terminal(sig):
            proc.send_signal(sig)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    result: dict[str, Any] | None = None
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                try:
                    on_ready()
                except BaseException:
                    proc.kill()
                    proc.wait()
                    raise
                proc.stdin.write("go\n")
                proc.stdin.flush()
            elif line.startswith("result "):
                result = json.loads(line[len("result ") :])
            else:
                sys.stdout.write(line)
        code = proc.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        proc.stdin.close()
        proc.stdout.close()
    return CommandResult(128 - code if code < 0 else code, bool(got)), result
