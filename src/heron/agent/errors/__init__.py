"""Error tracking: exceptions and messages as Sentry-shaped events, sent as OTLP log records.

The public functions (re-exported by :mod:`heron`) work before ``heron.init()`` too: they
keep context (user, tags) and capture nothing until a client is installed. Importing
this package loads no SDK; ``init()`` builds the client (``_client``), its pipeline
(``heron.agent.logs``) and the process hooks (``_hooks``).

- ``_frames``: exception chain, frames, source context, locals (size-capped);
- ``_event``: the event document, and its scrubbing;
- ``_breadcrumbs``: per-trace rings of log/HTTP/DB crumbs (a span processor feeds them);
- ``_request``: the request part, from a WSGI environ or an ASGI scope;
- ``_scope``: context-local user, tags, last event id and current request.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from heron.agent.errors._scope import last_event_id, set_tag, set_user
from heron.agent.guard import capture_internal_exceptions

if TYPE_CHECKING:
    from heron.agent.errors._client import ErrorClient

__all__ = ["capture_exception", "capture_message", "last_event_id", "set_tag", "set_user"]

_current: ErrorClient | None = None


def install(client: ErrorClient | None) -> None:
    """Make ``client`` the process's (None: capture nothing)."""
    global _current
    _current = client


def client() -> ErrorClient | None:
    return _current


def capture_exception(
    exc: BaseException | None = None, *, context: dict[str, Any] | None = None
) -> str | None:
    """Send ``exc`` (default: the exception being handled) as an error event.

    ``context`` is extra data shown with the event (scrubbed like everything else).
    Returns the event id (32 hex characters), or None when nothing was sent: no
    exception, the agent is not running, the exception is ignored by configuration or
    ``before_send`` dropped it. The same exception object is only ever sent once; later
    calls return the first event's id. Never raises.
    """
    with capture_internal_exceptions:
        current = _current
        if exc is None:
            exc = sys.exc_info()[1]
        if current is None or exc is None:
            return None
        return current.capture_exception(exc, context=context)
    return None


def capture_message(
    message: str, level: str = "info", *, context: dict[str, Any] | None = None
) -> str | None:
    """Send ``message`` as an event of ``level`` (``debug``, ``info``, ``warning``,
    ``error``, ``fatal``); returns its id, or None when nothing was sent. Never raises."""
    with capture_internal_exceptions:
        current = _current
        if current is None:
            return None
        return current.capture_message(str(message), level, context=context)
    return None
