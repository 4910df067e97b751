"""The alert engine: a daemon thread in the jobs role (``all`` or ``jobs``) that runs
evaluate → dispatch → deliver every ``alert_tick_s``.

One engine works at a time: each cycle first takes or renews the alerting lease in the
state store (``claim_alerting``), so two jobs processes overlapping in a rolling restart
never both evaluate or send. Every step reads and writes the state store in single
transactions, so a restarted engine carries on from what was persisted (nothing
re-sent, nothing forgotten). A failing step is logged and counted, never stops the loop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from heron.server.alerting.evaluator import CycleStats, Evaluator
from heron.server.alerting.files import load_rule_files
from heron.server.alerting.notify.deliver import Deliverer
from heron.server.alerting.notify.dispatch import Dispatcher
from heron.server.config import Config
from heron.server.jobs import JobRuns
from heron.server.store.base import Store

log = logging.getLogger("heron.alerts")


@dataclass(slots=True)
class EngineStats:
    """Counters since start (``GET /metrics``)."""

    cycles: int = 0
    failed_cycles: int = 0
    standby_cycles: int = 0
    """Ticks skipped because another engine holds the alerting lease."""
    last_cycle_s: float = 0.0
    broken_rules: int = 0
    notifications_queued: int = 0
    notifications_sent: int = 0


class AlertEngine:
    """Evaluates rules, dispatches notifications and delivers them, on one thread."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], int] = time.time_ns,
        *,
        jobs: dict[str, JobRuns] | None = None,
    ) -> None:
        """``jobs``: the background jobs' run counters (``Maintenance.jobs``, shown by
        ``GET /metrics``), where cycles are counted as job ``alerts``."""
        self.store = store
        self.jobs = jobs if jobs is not None else {}
        self.config = config
        self.clock = clock
        self.evaluator = Evaluator(
            store, clock, public_url=config.base_url, apdex_t_ms=config.apdex_t_ms
        )
        self.dispatcher = Dispatcher(store, public_url=config.base_url, clock=clock)
        self.deliverer = Deliverer(store, config=config, clock=clock)
        self.stats = EngineStats()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """This engine's name in the alerting lease (``AlertStore.claim_alerting``)."""
        self.lease_ns = int(max(30.0, 3 * config.alert_tick_s) * 1e9)
        self.last: CycleStats | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def load_files(self) -> list[str]:
        """Load the rule files (and the starter rules) of every project; returns the
        errors (each also logged)."""
        errors: list[str] = []
        for project_id in self._projects():
            try:
                errors += load_rule_files(self.store, project_id, self.config, self.clock())
            except Exception as err:
                log.exception("loading alert rule files failed")
                errors.append(f"{type(err).__name__}: {err}")
        return errors

    def _projects(self) -> list[int]:
        """Every project (each has an ingest key); the default one before bootstrap."""
        return sorted({pid for _, pid in self.store.state.ingest_keys()}) or [1]

    def run_cycle(self) -> None:
        """One evaluate → dispatch → deliver pass at the clock's now."""
        with self._lock:  # the thread and a test (or a reload) never overlap
            start = time.perf_counter()
            try:
                now = self.clock()
                if not self.store.state.claim_alerting(self.holder, now, self.lease_ns):
                    self.stats.standby_cycles += 1  # another jobs process runs alerting
                    return
                self.last = self.evaluator.run(now)
                self.stats.broken_rules = self.last.broken
                self.stats.notifications_queued += self.dispatcher.run(now)
                self.stats.notifications_sent += self.deliverer.deliver_due(now)
                self.stats.cycles += 1
                self._count(start, ok=True)
            except Exception:
                self.stats.failed_cycles += 1
                self._count(start, ok=False)
                log.exception("alert cycle failed")
            finally:
                self.stats.last_cycle_s = time.perf_counter() - start

    def _count(self, start: float, *, ok: bool) -> None:
        runs = self.jobs.setdefault("alerts", JobRuns())
        runs.last_duration_s = time.perf_counter() - start
        runs.last_end_s = self.clock() / 1e9
        if ok:
            runs.succeeded += 1
        else:
            runs.failed += 1

    def start(self) -> None:
        """Load rule files, then run a cycle every ``alert_tick_s`` on thread
        ``heron-alerts`` (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="heron-alerts", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self.load_files()
        while not self._stop.is_set():
            self.run_cycle()
            self._stop.wait(self.config.alert_tick_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
