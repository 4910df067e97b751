"""Fork safety: what the OpenTelemetry SDK does not already redo in a forked child.

``gunicorn --preload`` (and ``multiprocessing`` with the fork start method) runs
``heron.init()`` once in the parent, then forks workers. Only the forking thread
survives a fork, so anything a thread owned in the parent is stale in the child.

The SDK (1.45) already handles its own part with ``os.register_at_fork`` hooks: the
``BatchSpanProcessor`` gives the child a new lock, wake-up event and worker thread and
clears the queue (the parent exports the spans it queued), and the ``TracerProvider``
renews its lock and re-runs its process-dependent resource detectors (a new
``service.instance.id``). What it leaves, and heron redoes through
:func:`after_fork_in_child`:

- the OTLP exporter's connection pool, which shares the parent's sockets
  (``CountingSpanExporter`` rebuilds the inner exporter on the child's first export);
- heron's ``process.pid`` resource attribute, which still names the parent;
- heron's own locks, which a parent thread may have held at the moment of the fork.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from types import MethodType

from heron.agent.guard import capture_internal_exceptions

_callbacks: list[Callable[[], Callable[[], None] | None]] = []
_lock = threading.Lock()
_registered = False


class _Strong:
    """A strong reference with the call shape of a weak one."""

    __slots__ = ("_target",)

    def __init__(self, target: Callable[[], None]) -> None:
        self._target = target

    def __call__(self) -> Callable[[], None]:
        return self._target


def after_fork_in_child(callback: Callable[[], None]) -> None:
    """Run ``callback`` in every child right after ``os.fork()``; bound methods are weak."""
    global _registered
    ref: Callable[[], Callable[[], None] | None] = (
        weakref.WeakMethod(callback) if isinstance(callback, MethodType) else _Strong(callback)
    )
    with _lock:
        _callbacks.append(ref)
        if not _registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_run_callbacks)
            _registered = True


def _run_callbacks() -> None:
    global _lock
    _lock = threading.Lock()
    live = []
    for ref in _callbacks:
        callback = ref()
        if callback is None:
            continue
        live.append(ref)
        with capture_internal_exceptions:
            callback()
    _callbacks[:] = live
