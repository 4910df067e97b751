"""The error client: decides whether an exception becomes an event, builds, filters, sends.

One per process, built by ``heron.init()``. Its collaborators are explicit (a ``send``
callable, the breadcrumb store, the scrubber), so tests drive it without a pipeline.

Order of work for one exception: ignored? (``ignore_exceptions``, HTTP status in
``ignore_status_codes``) → already captured? (the same object is captured once: its
event id is remembered on the object) → build → scrub → ``before_send`` → send.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from heron._scrub import Scrubber
from heron.agent.config import AgentConfig
from heron.agent.errors import _scope
from heron.agent.errors._breadcrumbs import Breadcrumbs
from heron.agent.errors._event import EventContext, build_event, scrub_event
from heron.agent.errors._frames import FrameOptions
from heron.agent.guard import report_internal_error

logger = logging.getLogger("heron.agent")

MARKER = "__heron_event_id__"  # on a captured exception: its event id, gone with the object

#: ``send(event, exc)``: hand one finished event to the pipeline.
Send = Callable[[dict[str, Any], "BaseException | None"], None]


@dataclass(frozen=True)
class EventStats:
    captured: int = 0  # events sent to the pipeline
    dropped: int = 0  # events before_send returned None for
    failed: int = 0  # events lost to an error (in before_send or in heron)


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status an exception stands for, for the frameworks heron integrates."""
    code = getattr(exc, "status_code", None)  # Starlette / FastAPI HTTPException
    if code is None:
        code = getattr(exc, "code", None)  # werkzeug HTTPException
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    django = sys.modules.get("django.http")
    if django is not None and isinstance(exc, django.Http404):
        return 404
    exceptions = sys.modules.get("django.core.exceptions")
    if exceptions is not None and isinstance(exc, exceptions.PermissionDenied):
        return 403
    return None


def _names_of(cls: type) -> Iterable[str]:
    for base in cls.__mro__:
        yield f"{base.__module__}.{base.__qualname__}"
        yield base.__qualname__


class ErrorClient:
    """Captures exceptions and messages as events; never raises into the app."""

    def __init__(
        self,
        config: AgentConfig,
        send: Send,
        *,
        crumbs: Breadcrumbs | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.config = config
        self.send = send
        self.scrubber = scrubber or Scrubber(config.scrub_keys)
        self.crumbs = crumbs or Breadcrumbs(config.max_breadcrumbs, self.scrubber)
        self.frames = FrameOptions(
            include_locals=config.include_locals,
            in_app_include=config.in_app_include,
            in_app_exclude=config.in_app_exclude,
        )
        self._ignored_types = tuple(t for t in config.ignore_exceptions if isinstance(t, type))
        self._ignored_names = frozenset(n for n in config.ignore_exceptions if isinstance(n, str))
        self._lock = threading.Lock()
        self._captured = self._dropped = self._failed = 0

    @property
    def stats(self) -> EventStats:
        return EventStats(self._captured, self._dropped, self._failed)

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._captured = self._dropped = self._failed = 0
        self.crumbs.after_fork()

    # ------------------------------------------------------------------ decisions

    def ignored(self, exc: BaseException) -> bool:
        if isinstance(exc, self._ignored_types):
            return True
        if self._ignored_names and any(n in self._ignored_names for n in _names_of(type(exc))):
            return True
        code = status_code_of(exc)
        return code is not None and code in self.config.ignore_status_codes

    @staticmethod
    def captured_id(exc: BaseException) -> str | None:
        value = getattr(exc, MARKER, None)
        return value if isinstance(value, str) else None

    # ------------------------------------------------------------------ capture

    def capture_exception(
        self,
        exc: BaseException,
        *,
        context: dict[str, Any] | None = None,
        mechanism: str = "generic",
        handled: bool = True,
        level: str = "error",
    ) -> str | None:
        """Capture ``exc`` as an event and send it; its event id, or None if not sent."""
        if self.ignored(exc):
            return None
        known = self.captured_id(exc)
        if known is not None:
            _scope.record_event_id(known)
            return known
        event = self.exception_event(
            exc, context=context, mechanism=mechanism, handled=handled, level=level
        )
        return self.finish(event, {"exc_info": (type(exc), exc, exc.__traceback__)}, exc)

    def capture_message(
        self, message: str, level: str = "info", *, context: dict[str, Any] | None = None
    ) -> str | None:
        event = build_event(self.context(), message=message, level=level, extra=context)
        return self.finish(event, {}, None)

    def exception_event(
        self,
        exc: BaseException,
        *,
        context: dict[str, Any] | None = None,
        mechanism: str = "generic",
        handled: bool = True,
        level: str = "error",
        message: str | None = None,
        logger_name: str | None = None,
    ) -> dict[str, Any]:
        """A new (unscrubbed) event for ``exc``, with this moment's context."""
        return build_event(
            self.context(),
            exc=exc,
            message=message,
            level=level,
            mechanism={"type": mechanism, "handled": handled},
            logger=logger_name,
            extra=context,
            frames=self.frames,
        )

    def context(self) -> EventContext:
        span = trace.get_current_span().get_span_context()
        trace_id = span.trace_id if span.is_valid else 0
        request = _scope.current_request()
        return EventContext(
            release=self.config.release,
            environment=self.config.environment,
            trace_id=trace_id,
            span_id=span.span_id if span.is_valid else 0,
            transaction=self.crumbs.transaction(trace_id) if trace_id else None,
            user=_scope.current_user(),
            tags=_scope.current_tags(),
            request=_describe(request),
            breadcrumbs=self.crumbs.snapshot(trace_id),
        )

    def process(
        self, event: dict[str, Any], hint: dict[str, Any], exc: BaseException | None
    ) -> dict[str, Any] | None:
        """Scrub, then ``before_send``; mark ``exc`` as captured. None: do not send."""
        scrub_event(event, self.scrubber)
        before_send = self.config.before_send
        if before_send is not None:
            try:
                result = before_send(event, hint)
            except Exception as e:  # the app's hook: count and log, as for a failed export
                self._count(failed=1)
                logger.warning("heron: before_send raised %r; the event is dropped", e)
                return None
            if result is None:
                self._count(dropped=1)
                return None
            event = result
        if exc is not None:
            # An exception type without a __dict__ cannot be marked: no dedupe for it.
            with contextlib.suppress(Exception):
                setattr(exc, MARKER, event["event_id"])
        _scope.record_event_id(str(event["event_id"]))
        return event

    def finish(
        self, event: dict[str, Any], hint: dict[str, Any], exc: BaseException | None
    ) -> str | None:
        """Process ``event`` and send it on its own record; its id, or None."""
        final = self.process(event, hint, exc)
        if final is None:
            return None
        try:
            self.send(final, exc)
        except Exception as e:
            self._count(failed=1)
            report_internal_error(e)
            return None
        self._count(captured=1)
        return str(final["event_id"])

    def count_sent(self) -> None:
        """An event left on a log record of the handler's (not through :meth:`finish`)."""
        self._count(captured=1)

    def _count(self, captured: int = 0, dropped: int = 0, failed: int = 0) -> None:
        with self._lock:
            self._captured += captured
            self._dropped += dropped
            self._failed += failed


def _describe(request: _scope.RequestState | None) -> dict[str, Any] | None:
    if request is None or request.describe is None:
        return None
    try:
        return request.describe()
    except Exception as e:  # a half-parsed request: the event goes without it
        report_internal_error(e)
        return None
