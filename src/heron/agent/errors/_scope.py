"""Context-local state of error capture: user, tags, the last event id, the current request.

Each is a ``ContextVar``, so a value set while handling one request (a thread of a WSGI
server, a task of an ASGI server) is not seen by another. The framework integrations open
a :class:`RequestState` per request; an event captured during the request records its id
there, which is how the response gets its ``X-Heron-Event-Id`` header.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

_user: ContextVar[dict[str, Any] | None] = ContextVar("heron_user", default=None)
_tags: ContextVar[dict[str, str] | None] = ContextVar("heron_tags", default=None)
_last_event_id: ContextVar[str | None] = ContextVar("heron_last_event_id", default=None)
_request: ContextVar[RequestState | None] = ContextVar("heron_request", default=None)

USER_KEYS = ("id", "username", "email", "ip_address")


@dataclass
class RequestState:
    """One request being served: how to describe it, and the event captured during it.

    ``describe`` builds the event's ``request`` data (unscrubbed) only when an event
    needs it, so requests without errors pay nothing for it.
    """

    describe: Callable[[], dict[str, Any]] | None = None
    event_id: str | None = None
    user: dict[str, Any] = field(default_factory=dict)


def set_user(user: dict[str, Any] | None) -> None:
    """The user of the current context (``id``, ``username``, ``email``, ``ip_address``)."""
    if user is None:
        _user.set(None)
        return
    _user.set({k: user[k] for k in USER_KEYS if user.get(k) not in (None, "")})


def current_user() -> dict[str, Any]:
    request = _request.get()
    user = dict(request.user) if request is not None else {}
    user.update(_user.get() or {})
    return user


def set_tag(key: str, value: object) -> None:
    """A tag on every event of the current context; copy-on-write, so contexts never share."""
    tags = dict(_tags.get() or {})
    tags[str(key)[:200]] = str(value)[:200]
    _tags.set(tags)


def current_tags() -> dict[str, str]:
    return dict(_tags.get() or {})


def last_event_id() -> str | None:
    return _last_event_id.get()


def record_event_id(event_id: str) -> None:
    _last_event_id.set(event_id)
    request = _request.get()
    if request is not None:
        request.event_id = event_id


def current_request() -> RequestState | None:
    return _request.get()


def begin_request(state: RequestState) -> Token[RequestState | None]:
    """Start a request: a fresh last event id, and ``state`` for what is captured in it."""
    _last_event_id.set(None)
    return _request.set(state)


def end_request(token: Token[RequestState | None]) -> None:
    try:
        _request.reset(token)
    except ValueError:  # reset from another context (a server that moved the call): leave it
        _request.set(None)
