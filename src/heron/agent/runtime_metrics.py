"""Runtime and host metrics: observable instruments read by the metric reader's thread.

Nothing runs on the app's threads except two small hooks: a ``gc.callbacks`` entry that
times each collection (appending one float to a bounded deque), and the asyncio probe (one
``call_later`` per running loop every :data:`LAG_PROBE_INTERVAL_S`). Everything else is
read with psutil once per export interval, in the reader's thread (about 0.2 ms of CPU
per interval on Linux, see bench/agent_metrics.py).

Names follow the current OpenTelemetry semantic conventions where they exist (process.*,
system.*, cpython.gc.*); the GC pause histogram, the load averages and the event-loop lag
have no semantic-convention name yet and are named like the OTel Collector's
(``system.cpu.load_average.1m``) or under ``cpython.``/``heron.``. docs/agent.md lists
them all with their units.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from heron._version import __version__
from heron.agent.guard import capture_internal_exceptions

logger = logging.getLogger("heron.agent")

# Seconds: fine enough for a GC pause, a query, an event-loop stall.
SECONDS_BUCKETS = (
    0.0001,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
LAG_PROBE_INTERVAL_S = 0.5
GC_PAUSES_KEPT = 20_000  # per export interval; more (a pathological app) are not timed
SNAPSHOT_MAX_AGE_S = 0.1  # one psutil read serves every callback of one collection
FILESYSTEMS_REFRESH_S = 300.0


def _guarded(callback: Callable[[], Iterable[Observation]]) -> Callable[..., Iterable[Observation]]:
    def run(options: CallbackOptions) -> Iterable[Observation]:
        with capture_internal_exceptions:
            return list(callback())
        return []

    return run


class _Process:
    """One psutil read of this process per collection, shared by the process.* callbacks."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()
        self._pid = os.getpid()
        self._taken = float("-inf")
        self._snapshot: dict[str, Any] = {}
        self._last_cpu: tuple[float, float, float] | None = None  # wall, user, system
        self._cpus = max(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0, 0)
        self._cpus = self._cpus or psutil.cpu_count() or 1

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        if os.getpid() != self._pid:  # forked: another process, another start time
            self.__init__()  # type: ignore[misc]
        if now - self._taken < SNAPSHOT_MAX_AGE_S:
            return self._snapshot
        p = self._process
        with p.oneshot():
            snap: dict[str, Any] = {"cpu": p.cpu_times(), "memory": p.memory_info()}
            snap["threads"] = p.num_threads()
            snap["fds"] = p.num_fds() if hasattr(p, "num_fds") else None
            snap["ctx"] = p.num_ctx_switches()
            snap["created"] = p.create_time()
        self._taken, self._snapshot = now, snap
        return snap

    def cpu_time(self) -> Iterator[Observation]:
        cpu = self.snapshot()["cpu"]
        yield Observation(cpu.user, {"cpu.mode": "user"})
        yield Observation(cpu.system, {"cpu.mode": "system"})

    def cpu_utilization(self) -> Iterator[Observation]:
        cpu = self.snapshot()["cpu"]
        now = time.monotonic()
        last, self._last_cpu = self._last_cpu, (now, cpu.user, cpu.system)
        if last is None or now <= last[0]:
            return
        span = (now - last[0]) * self._cpus
        yield Observation(max(cpu.user - last[1], 0.0) / span, {"cpu.mode": "user"})
        yield Observation(max(cpu.system - last[2], 0.0) / span, {"cpu.mode": "system"})

    def memory_usage(self) -> Iterator[Observation]:
        yield Observation(self.snapshot()["memory"].rss)

    def memory_virtual(self) -> Iterator[Observation]:
        yield Observation(self.snapshot()["memory"].vms)

    def threads(self) -> Iterator[Observation]:
        yield Observation(self.snapshot()["threads"])

    def fds(self) -> Iterator[Observation]:
        fds = self.snapshot()["fds"]
        if fds is not None:
            yield Observation(fds)

    def context_switches(self) -> Iterator[Observation]:
        ctx = self.snapshot()["ctx"]
        yield Observation(ctx.voluntary, {"process.context_switch.type": "voluntary"})
        yield Observation(ctx.involuntary, {"process.context_switch.type": "involuntary"})

    def uptime(self) -> Iterator[Observation]:
        yield Observation(max(time.time() - self.snapshot()["created"], 0.0))


class GcTimer:
    """Times each CPython garbage collection through ``gc.callbacks``.

    The callback only appends to a deque: recording into the histogram from inside a
    collection could re-enter the SDK's lock of that same histogram (a collection can start
    while it is held). The reader's thread drains the deque into the histogram.
    """

    def __init__(self) -> None:
        self.pauses: deque[tuple[int, float]] = deque(maxlen=GC_PAUSES_KEPT)
        self._started = 0.0
        self._installed = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self.pauses.append((info.get("generation", 0), time.perf_counter() - self._started))
            self._started = 0.0

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(self)
            self._installed = False

    def drain(self) -> list[tuple[int, float]]:
        out = []
        pauses = self.pauses
        while pauses:
            try:
                out.append(pauses.popleft())
            except IndexError:
                break
        return out


def gc_collections() -> Iterator[Observation]:
    for generation, stats in enumerate(gc.get_stats()):
        yield Observation(stats["collections"], {"cpython.gc.generation": generation})


def gc_collected() -> Iterator[Observation]:
    for generation, stats in enumerate(gc.get_stats()):
        yield Observation(stats["collected"], {"cpython.gc.generation": generation})


def gc_uncollectable() -> Iterator[Observation]:
    for generation, stats in enumerate(gc.get_stats()):
        yield Observation(stats["uncollectable"], {"cpython.gc.generation": generation})


# ---------------------------------------------------------------- asyncio event-loop lag


class LoopLag:
    """Measures how late each running event loop runs a callback scheduled every 0.5 s.

    Every loop heron sees is probed: loops started (``run_forever``, hence also
    ``asyncio.run`` and ``run_until_complete``) after ``heron.init()``, the loop running
    ``init()`` itself, and loops :func:`watch` is called from (the ASGI integration does,
    which covers uvloop). Loops are held weakly; a closed loop is forgotten.
    """

    def __init__(self, interval: float = LAG_PROBE_INTERVAL_S) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Any]] = (
            weakref.WeakKeyDictionary()
        )  # loop -> [thread name, max lag since last read, probe generation]
        self._original_run_forever: Any = None

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def watch(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start probing ``loop`` (default: the running loop of this thread), once."""
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
        if loop in self._loops:
            return
        self._start(loop)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """(Re)start the probe chain of ``loop``; a chain from an earlier run is dropped.

        A loop that stops and runs again later (``run_until_complete`` called now and
        then) would otherwise find its pending probe late by the whole pause.
        """
        with self._lock:
            state = self._loops.get(loop)
            if state is None:
                state = self._loops[loop] = [threading.current_thread().name, 0.0, 0]
            state[2] += 1
            generation = state[2]
        self._schedule(loop, generation)

    def _schedule(self, loop: asyncio.AbstractEventLoop, generation: int) -> None:
        due = loop.time() + self.interval
        loop.call_at(due, self._probe, weakref.ref(loop), due, generation)

    def _probe(
        self, ref: weakref.ref[asyncio.AbstractEventLoop], due: float, generation: int
    ) -> None:
        loop = ref()
        if loop is None:
            return
        state = self._loops.get(loop)
        if state is None or state[2] != generation:
            return
        lag = max(loop.time() - due, 0.0)
        if lag > state[1]:
            state[1] = lag
        if not loop.is_closed():
            self._schedule(loop, generation)

    def observe(self) -> Iterator[Observation]:
        """The largest lag of each loop since the last collection (then reset)."""
        with self._lock:
            items = list(self._loops.items())
        for loop, state in items:
            lag, state[1] = state[1], 0.0
            yield Observation(lag, {"thread.name": state[0]})
            if loop.is_closed():  # reported one last time, then forgotten
                self._loops.pop(loop, None)

    def patch_run_forever(self) -> None:
        """Probe every asyncio loop that starts running (``asyncio.run`` included)."""
        from asyncio import base_events

        if self._original_run_forever is not None:
            return
        original = base_events.BaseEventLoop.run_forever
        lag = self

        def run_forever(self: Any) -> None:
            with capture_internal_exceptions:
                lag._start(self)
            return original(self)

        run_forever.__wrapped__ = original  # type: ignore[attr-defined]
        self._original_run_forever = original
        base_events.BaseEventLoop.run_forever = run_forever  # type: ignore[method-assign]

    def unpatch(self) -> None:
        if self._original_run_forever is not None:
            from asyncio import base_events

            base_events.BaseEventLoop.run_forever = self._original_run_forever  # type: ignore[method-assign]
            self._original_run_forever = None


_lag: LoopLag | None = None


def watch_loop() -> None:
    """Probe the running loop of this thread (cheap when it is already probed; never raises)."""
    lag = _lag
    if lag is not None:
        with capture_internal_exceptions:
            lag.watch()


# ---------------------------------------------------------------------------- host


class _Host:
    """System-wide figures, read once per collection."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        psutil.cpu_times_percent(interval=None)  # the first call only sets the baseline
        self._mounts: list[Any] = []
        self._mounts_read = float("-inf")

    def cpu_utilization(self) -> Iterator[Observation]:
        times = self._psutil.cpu_times_percent(interval=None)
        for mode, value in times._asdict().items():
            if mode in ("guest", "guest_nice"):  # already counted in user/nice
                continue
            yield Observation(value / 100.0, {"cpu.mode": mode})

    def load_average(self, index: int) -> Callable[[], Iterator[Observation]]:
        def read() -> Iterator[Observation]:
            if hasattr(os, "getloadavg"):
                yield Observation(os.getloadavg()[index])

        return read

    def memory(self) -> Any:
        return self._psutil.virtual_memory()

    def memory_usage(self) -> Iterator[Observation]:
        for state, value in self._memory_states():
            yield Observation(value, {"system.memory.state": state})

    def memory_utilization(self) -> Iterator[Observation]:
        total = self.memory().total or 1
        for state, value in self._memory_states():
            yield Observation(value / total, {"system.memory.state": state})

    def _memory_states(self) -> list[tuple[str, int]]:
        m = self.memory()
        states = [("used", m.used), ("free", m.free)]
        for name in ("cached", "buffers"):
            if hasattr(m, name):
                states.append((name, getattr(m, name)))
        return states

    def _filesystems(self) -> list[Any]:
        now = time.monotonic()
        if now - self._mounts_read > FILESYSTEMS_REFRESH_S:
            # all=False: devices only (no proc, sysfs, tmpfs, overlay ... pseudo mounts)
            self._mounts = self._psutil.disk_partitions(all=False)
            self._mounts_read = now
        return self._mounts

    def _filesystem_states(self) -> Iterator[tuple[dict[str, str], int, int]]:
        seen = set()
        for part in self._filesystems():
            if part.mountpoint in seen:
                continue
            seen.add(part.mountpoint)
            try:
                usage = self._psutil.disk_usage(part.mountpoint)
            except OSError:
                continue
            base = {
                "system.device": part.device,
                "system.filesystem.mountpoint": part.mountpoint,
                "system.filesystem.type": part.fstype,
            }
            reserved = max(usage.total - usage.used - usage.free, 0)
            total = usage.total or 1
            for state, value in (
                ("used", usage.used),
                ("free", usage.free),
                ("reserved", reserved),
            ):
                yield {**base, "system.filesystem.state": state}, value, total

    def filesystem_usage(self) -> Iterator[Observation]:
        for attributes, value, _total in self._filesystem_states():
            yield Observation(value, attributes)

    def filesystem_utilization(self) -> Iterator[Observation]:
        for attributes, value, total in self._filesystem_states():
            yield Observation(value / total, attributes)

    def network_io(self) -> Iterator[Observation]:
        for nic, counters in self._psutil.net_io_counters(pernic=True).items():
            if nic == "lo":
                continue
            yield Observation(
                counters.bytes_recv,
                {"network.interface.name": nic, "network.io.direction": "receive"},
            )
            yield Observation(
                counters.bytes_sent,
                {"network.interface.name": nic, "network.io.direction": "transmit"},
            )


class RuntimeMetrics:
    """Registers the runtime (and host) instruments on a meter provider."""

    def __init__(self, provider: MeterProvider, *, host: bool = True, runtime: bool = True) -> None:
        global _lag
        self.meter: Meter = provider.get_meter("heron.runtime", __version__)
        self.gc_timer = GcTimer()
        self.lag = LoopLag()
        if runtime:
            self._process_instruments()
            self._gc_instruments()
            self._asyncio_instruments()
            _lag = self.lag
            from heron.agent.fork import after_fork_in_child

            after_fork_in_child(self.lag.after_fork)
        if host:
            self._host_instruments()

    def _process_instruments(self) -> None:
        try:
            p = _Process()
        except ImportError:  # psutil missing: GC and asyncio metrics only
            logger.info("heron: psutil is not installed; no process.* metrics")
            return
        m = self.meter
        m.create_observable_counter(
            "process.cpu.time", [_guarded(p.cpu_time)], unit="s", description="CPU seconds"
        )
        m.create_observable_gauge(
            "process.cpu.utilization",
            [_guarded(p.cpu_utilization)],
            unit="1",
            description="CPU time over elapsed time and CPUs available to the process",
        )
        m.create_observable_up_down_counter(
            "process.memory.usage", [_guarded(p.memory_usage)], unit="By", description="RSS"
        )
        m.create_observable_up_down_counter(
            "process.memory.virtual", [_guarded(p.memory_virtual)], unit="By"
        )
        m.create_observable_up_down_counter(
            "process.thread.count", [_guarded(p.threads)], unit="{thread}"
        )
        m.create_observable_up_down_counter(
            "process.unix.file_descriptor.count", [_guarded(p.fds)], unit="{file_descriptor}"
        )
        m.create_observable_counter(
            "process.context_switches", [_guarded(p.context_switches)], unit="{context_switch}"
        )
        m.create_observable_gauge("process.uptime", [_guarded(p.uptime)], unit="s")

    def _gc_instruments(self) -> None:
        m = self.meter
        pause = m.create_histogram(
            "cpython.gc.pause.duration",
            unit="s",
            description="Duration of each garbage collection",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        timer = self.gc_timer

        def collections() -> Iterator[Observation]:
            # Called first at each collection: record the pauses timed since the last one.
            for generation, seconds in timer.drain():
                pause.record(seconds, {"cpython.gc.generation": generation})
            yield from gc_collections()

        m.create_observable_counter(
            "cpython.gc.collections", [_guarded(collections)], unit="{collection}"
        )
        m.create_observable_counter(
            "cpython.gc.collected_objects", [_guarded(gc_collected)], unit="{object}"
        )
        m.create_observable_counter(
            "cpython.gc.uncollectable_objects", [_guarded(gc_uncollectable)], unit="{object}"
        )
        timer.install()

    def _asyncio_instruments(self) -> None:
        self.meter.create_observable_gauge(
            "heron.asyncio.event_loop.lag",
            [_guarded(self.lag.observe)],
            unit="s",
            description="Largest delay of a scheduled callback since the last export, per loop",
        )
        self.lag.patch_run_forever()
        self.lag.watch()  # init() called from inside a running loop

    def _host_instruments(self) -> None:
        try:
            h = _Host()
        except ImportError:
            logger.info("heron: psutil is not installed; no system.* metrics")
            return
        m = self.meter
        m.create_observable_gauge("system.cpu.utilization", [_guarded(h.cpu_utilization)], unit="1")
        for index, window in enumerate(("1m", "5m", "15m")):
            m.create_observable_gauge(
                f"system.cpu.load_average.{window}",
                [_guarded(h.load_average(index))],
                unit="{thread}",
            )
        m.create_observable_up_down_counter(
            "system.memory.usage", [_guarded(h.memory_usage)], unit="By"
        )
        m.create_observable_gauge(
            "system.memory.utilization", [_guarded(h.memory_utilization)], unit="1"
        )
        m.create_observable_up_down_counter(
            "system.filesystem.usage", [_guarded(h.filesystem_usage)], unit="By"
        )
        m.create_observable_gauge(
            "system.filesystem.utilization", [_guarded(h.filesystem_utilization)], unit="1"
        )
        m.create_observable_counter("system.network.io", [_guarded(h.network_io)], unit="By")

    def close(self) -> None:
        global _lag
        self.gc_timer.uninstall()
        self.lag.unpatch()
        if _lag is self.lag:
            _lag = None
