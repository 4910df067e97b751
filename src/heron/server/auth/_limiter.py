"""Brute-force protection for sign-in: failed attempts counted in a sliding window.

Two limits: per (client address, username), so one user's password cannot be guessed,
and per client address, so one client cannot spray many usernames. A success clears the
first. State is in memory and bounded: a restart forgets it, which costs an attacker a
restart they cannot trigger.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

Key = tuple[str, ...]


class LoginLimiter:
    def __init__(
        self,
        *,
        per_user: int = 5,
        per_client: int = 50,
        window_s: float = 900.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_user = per_user
        self.per_client = per_client
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: dict[Key, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, username: str) -> float:
        """Seconds until this client may try this username again; 0 means now."""
        now = self.clock()
        with self._lock:
            waits = [
                self._wait(("user", client, username), self.per_user, now),
                self._wait(("client", client), self.per_client, now),
            ]
        return max(waits)

    def failed(self, client: str, username: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) >= self.max_keys:
                self._prune(now)
            for key in (("user", client, username), ("client", client)):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, client: str, username: str) -> None:
        with self._lock:
            self._failures.pop(("user", client, username), None)

    def _wait(self, key: Key, limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < limit:
            return 0.0
        return times[-limit] + self.window_s - now

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            times = self._failures[key]
            if not times or times[-1] <= now - self.window_s:
                del self._failures[key]
        # Still full (an attack from many addresses): forget the oldest entries.
        excess = len(self._failures) - self.max_keys // 2
        for key in list(self._failures)[: max(excess, 0)]:
            del self._failures[key]
