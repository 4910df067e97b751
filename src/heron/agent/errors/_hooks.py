"""Unhandled exceptions outside any framework: ``sys.excepthook``, ``threading.excepthook``
and asyncio's exception handler.

Each hook captures, then hands over to what was there before, so the app's own hooks and
the default printing still happen. The asyncio hook wraps
``BaseEventLoop.call_exception_handler``, the one place every loop of the standard
library reports "Task exception was never retrieved" and failing callbacks, whatever
handler the app set with ``loop.set_exception_handler`` (that handler still runs).
Loops that do not derive from ``BaseEventLoop`` (uvloop) are not covered.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from heron.agent.errors._client import ErrorClient
from heron.agent.guard import capture_internal_exceptions

_previous: dict[str, Any] = {}


def _capture(client: ErrorClient, exc: BaseException | None, mechanism: str) -> None:
    if isinstance(exc, Exception):  # not KeyboardInterrupt / SystemExit
        with capture_internal_exceptions:
            client.capture_exception(exc, mechanism=mechanism, handled=False)


def install_hooks(client: ErrorClient, *, flush: Callable[[], object]) -> None:
    """Install the three hooks (once per process); ``flush`` runs after an excepthook capture."""
    if _previous:
        return
    previous_sys = _previous["sys"] = sys.excepthook
    previous_thread = _previous["threading"] = threading.excepthook
    previous_loop = _previous["asyncio"] = asyncio.BaseEventLoop.call_exception_handler

    def excepthook(
        type_: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        _capture(client, value, "excepthook")
        with capture_internal_exceptions:
            flush()  # the process is about to exit: do not rely on atexit alone
        previous_sys(type_, value, tb)

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        _capture(client, args.exc_value, "threading")
        previous_thread(args)

    def call_exception_handler(self: asyncio.BaseEventLoop, context: dict[str, Any]) -> None:
        _capture(client, context.get("exception"), "asyncio")
        previous_loop(self, context)

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    asyncio.BaseEventLoop.call_exception_handler = call_exception_handler  # type: ignore[method-assign]


def uninstall_hooks() -> None:
    """Restore the hooks that were there before (for tests)."""
    if not _previous:
        return
    sys.excepthook = _previous.pop("sys")
    threading.excepthook = _previous.pop("threading")
    asyncio.BaseEventLoop.call_exception_handler = _previous.pop("asyncio")  # type: ignore[method-assign]
