"""Child processes of the demo: start in their own process group, stop without orphans.

Each child gets its own session, so a terminal's Ctrl-C reaches only the runner, which
then stops the children in order (apps before the server, so the agents' last spans
still have somewhere to go). Stopping signals the whole group, waits, then kills.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.1
_KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL


class ChildFailed(RuntimeError):
    """A child exited or did not become ready; the message ends with its log's tail."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    # Linux only: if the runner is killed outright (SIGKILL), take the child down too.
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Child:
    """One started process and the file its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path) -> Child:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                list(argv),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        return cls(name, proc, log_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> ChildFailed:
        return ChildFailed(f"{self.name} {what}; last lines of {self.log_path}:\n{self.log_tail()}")

    def wait_until(
        self, ready: Callable[[], bool], timeout: float, cancelled: Callable[[], bool]
    ) -> bool:
        """Poll ``ready()``; False if cancelled; ChildFailed if the child dies or times out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if cancelled():
                return False
            if not self.alive():
                raise self.failure(f"exited with code {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise self.failure(f"was not ready after {timeout:.0f}s")
            time.sleep(POLL_S)
        return True

    def stop(self, timeout: float) -> bool:
        """SIGTERM the child's group, wait ``timeout``, then SIGKILL. True if it stopped itself."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(_KILL)
                self.proc.wait()
                return False
        return True

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if hasattr(os, "killpg"):
                os.killpg(self.proc.pid, sig)  # start_new_session: pgid == pid
            else:  # pragma: no cover - Windows
                self.proc.send_signal(sig)
