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

from heron.agent.guard import capture_internal_exceptions

_user: ContextVar[dict[str, Any] | None] = ContextVar("heron_user", default=None)
_tags: ContextVar[dict[str, str] | None] = ContextVar("heron_tags", default=None)
_last_event_id: ContextVar[str | None] = ContextVar("heron_last_event_id", default=None)
_request: ContextVar[RequestState | None] = ContextVar("heron_request", default=None)

USER_KEYS = ("id", "username", "email", "ip_address")
# set_user's keys that also land on the current span, as these attributes. ip_address does
# not (personal data that traces do not need); user.name/user.email only while the
# scrubbing rules (scrub_keys) do not filter "username"/"email".
SPAN_USER_ATTRIBUTES = (("username", "user.name"), ("email", "user.email"))

#: Whether a key is sensitive (the error client's scrubber, once installed).
sensitive_key: Callable[[str], bool] | None = None


def _span_attribute(key: str, value: Any) -> None:
    """Set ``key`` on the current recording span (searchable on traces); never raises."""
    with capture_internal_exceptions:
        from opentelemetry import trace

        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(key, value)


def _user_on_span(user: dict[str, Any]) -> None:
    ident = user.get("id", user.get("username"))
    if ident is not None:
        _span_attribute("enduser.id", str(ident))
    sensitive = sensitive_key
    for key, attribute in SPAN_USER_ATTRIBUTES:
        if key in user and not (sensitive is not None and sensitive(key)):
            _span_attribute(attribute, str(user[key]))


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
    """The user of the current context (``id``, ``username``, ``email``, ``ip_address``).

    The current span (the request's, when called in a request) also gets ``enduser.id``
    (``id``, else ``username``), ``user.name`` and ``user.email``, so traces can be
    searched by user; ``ip_address`` stays on error events only.
    """
    if user is None:
        _user.set(None)
        return
    kept = {k: user[k] for k in USER_KEYS if user.get(k) not in (None, "")}
    _user.set(kept)
    _user_on_span(kept)


def current_user() -> dict[str, Any]:
    request = _request.get()
    user = dict(request.user) if request is not None else {}
    user.update(_user.get() or {})
    return user


def set_tag(key: str, value: object) -> None:
    """A tag on every event of the current context; copy-on-write, so contexts never share.

    The current span also gets it, as the attribute ``key`` (searchable: ``key=value``).
    """
    tags = dict(_tags.get() or {})
    name, text = str(key)[:200], str(value)[:200]
    tags[name] = text
    _tags.set(tags)
    _span_attribute(name, text)


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
