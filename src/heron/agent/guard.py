"""The guard around agent-side work: internal errors are logged and swallowed.

The agent runs inside someone else's application, so a bug in heron must never turn into
an exception in their request. Every piece of agent code that runs on the app's behalf
(init, integration hooks, span helpers, fork and exit hooks) is wrapped in
:data:`capture_internal_exceptions`, the pattern of sentry-python's
``capture_internal_exceptions``.

Under pytest the guard must not hide bugs: ``tests/agent/conftest.py`` sets
:data:`RAISE` so the error propagates, and collects what was reported so a swallowed
error in a background thread still fails the test.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

logger = logging.getLogger("heron.agent")

#: Re-raise internal errors instead of swallowing them (set by the test suite only).
RAISE = False
#: Called with every internal error; the test suite replaces it to collect them.
on_error: Callable[[BaseException], None] | None = None

_lock = threading.Lock()
_seen: set[tuple[str, str, int]] = set()
_count = 0

P = ParamSpec("P")
R = TypeVar("R")


def _reset_lock_after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it when the process forked


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


def internal_error_count() -> int:
    """How many internal errors the guard has swallowed in this process."""
    return _count


def report_internal_error(exc: BaseException) -> None:
    """Log ``exc`` as a heron bug: with a traceback the first time per raise site."""
    global _count
    if on_error is not None:
        on_error(exc)
    site = _raise_site(exc)
    with _lock:
        _count += 1
        first = site not in _seen
        _seen.add(site)
    if first:
        logger.error("heron agent internal error (ignored; the app is unaffected)", exc_info=exc)
    else:
        logger.debug("heron agent internal error again: %r", exc)


def _raise_site(exc: BaseException) -> tuple[str, str, int]:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return (type(exc).__name__, "", 0)
    return (type(exc).__name__, tb.tb_frame.f_code.co_filename, tb.tb_lineno)


class _Guard:
    """``with capture_internal_exceptions:`` swallows (and reports) any ``Exception``."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, SystemExit, ... are not ours to stop
        report_internal_error(exc)
        return not RAISE


#: Reusable and re-entrant: it holds no state of its own.
capture_internal_exceptions = _Guard()


def guarded(default: R) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate agent code so an internal error returns ``default`` instead of raising."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with capture_internal_exceptions:
                return func(*args, **kwargs)
            return default

        return wrapper

    return decorate
