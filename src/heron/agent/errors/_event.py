"""Building a Sentry-shaped event (shared/reference/protocols.md §4) and scrubbing it.

:func:`build_event` collects; :func:`scrub_event` then runs every part that can hold a
secret through the shared :class:`heron._scrub.Scrubber` (by key for mappings, by shape
for free text), so nothing below needs to think about secrets.
"""

from __future__ import annotations

import json
import platform
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from heron._scrub import Scrubber
from heron._version import __version__
from heron.agent.errors._frames import FrameOptions, exception_values

LEVELS = ("fatal", "error", "warning", "info", "debug")
MAX_EVENT_BYTES = 200_000
LEVELNO = {"fatal": 50, "error": 40, "warning": 30, "info": 20, "debug": 10}  # logging's


@dataclass(frozen=True)
class EventContext:
    """Everything about the process and the moment that goes into an event."""

    release: str | None = None
    environment: str | None = None
    trace_id: int = 0
    span_id: int = 0
    transaction: str | None = None
    user: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    request: dict[str, Any] | None = None
    breadcrumbs: list[dict[str, Any]] = field(default_factory=list)


def level_of(levelno: int) -> str:
    """The Sentry level of a ``logging`` level number."""
    if levelno >= 50:
        return "fatal"
    if levelno >= 40:
        return "error"
    if levelno >= 30:
        return "warning"
    return "info" if levelno >= 20 else "debug"


def _runtime() -> dict[str, Any]:
    return {
        "runtime": {
            "name": platform.python_implementation(),
            "version": platform.python_version(),
        },
        "os": {"name": platform.system(), "version": platform.release()},
    }


_RUNTIME = _runtime()


def build_event(
    ctx: EventContext,
    *,
    exc: BaseException | None = None,
    message: str | None = None,
    level: str = "error",
    mechanism: dict[str, Any] | None = None,
    logger: str | None = None,
    extra: dict[str, Any] | None = None,
    frames: FrameOptions | None = None,
) -> dict[str, Any]:
    """A new event (with a fresh ``event_id``) for ``exc`` and/or ``message``; not scrubbed."""
    event: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "timestamp": time.time(),
        "level": level if level in LEVELS else "error",
        "platform": "python",
        "sdk": {"name": "heron", "version": __version__},
        "contexts": dict(_RUNTIME),
        "breadcrumbs": {"values": ctx.breadcrumbs},
        "tags": dict(ctx.tags),
        "extra": dict(extra or {}),
    }
    if exc is not None:
        mech = mechanism or {"type": "generic", "handled": True}
        event["exception"] = {"values": exception_values(exc, frames or FrameOptions(), mech)}
    if message is not None:
        event["message"] = message
    elif exc is not None:
        event["message"] = f"{type(exc).__name__}: {event['exception']['values'][-1]['value']}"
    optional = {
        "logger": logger,
        "release": ctx.release,
        "environment": ctx.environment,
        "transaction": ctx.transaction,
    }
    event.update({k: v for k, v in optional.items() if v})
    if ctx.user:
        event["user"] = dict(ctx.user)
    if ctx.request:
        event["request"] = ctx.request
    if ctx.trace_id:
        event["contexts"]["trace"] = {
            "trace_id": f"{ctx.trace_id:032x}",
            "span_id": f"{ctx.span_id:016x}",
        }
    return event


class _LineCache:
    """Scrubbed source lines and paths, by their text: the same files' lines come back in
    every event, and scrubbing them is most of the cost of an event."""

    def __init__(self, scrubber: Scrubber, size: int = 8192) -> None:
        self.scrubber = scrubber
        self.size = size
        self.lines: dict[str, str] = {}

    def __call__(self, line: str) -> str:
        out = self.lines.get(line)
        if out is None:
            out = self.scrubber.text(line)
            if len(self.lines) >= self.size:
                self.lines.clear()
            self.lines[line] = out
        return out


_caches: dict[int, _LineCache] = {}


def _line_cache(s: Scrubber) -> _LineCache:
    cache = _caches.get(id(s))
    if cache is None or cache.scrubber is not s:
        cache = _caches[id(s)] = _LineCache(s)
    return cache


def _scrub_frame(frame: dict[str, Any], s: Scrubber) -> None:
    line = _line_cache(s)
    for key in ("context_line", "abs_path", "filename"):
        if isinstance(frame.get(key), str):
            frame[key] = line(frame[key])
    for key in ("pre_context", "post_context"):
        if isinstance(frame.get(key), list):
            frame[key] = [line(text) for text in frame[key]]
    if "vars" in frame:
        frame["vars"] = s.value(frame["vars"])


def _scrub_request(request: dict[str, Any], s: Scrubber) -> dict[str, Any]:
    out = dict(request)
    url = str(out.get("url", ""))
    out["url"] = s.url(url.split("?", 1)[0])
    if out.get("query_string"):
        out["query_string"] = s.query_string(str(out["query_string"]))
    if "headers" in out:
        out["headers"] = s.headers(out["headers"])
    if "data" in out:
        out["data"] = s.value(out["data"])
    return out


def _secrets(event: dict[str, Any], s: Scrubber) -> set[str]:
    """Values under sensitive keys anywhere in the (unscrubbed) event, to remove where
    they flowed to under other names (a form password passed on as ``card``)."""
    found: set[str] = set()
    request = event.get("request") or {}
    if isinstance(request, dict):
        found |= s.secrets(request.get("headers") or {})
        found |= s.secrets(request.get("data") or {})
        if isinstance(request.get("query_string"), str):
            found |= s.query_secrets(request["query_string"])
    for value in event.get("exception", {}).get("values", ()):
        for frame in value.get("stacktrace", {}).get("frames", ()):
            found |= s.secrets(frame.get("vars") or {})
    for key in ("extra", "user", "tags"):
        found |= s.secrets(event.get(key) or {})
    return found


def scrub_event(event: dict[str, Any], s: Scrubber) -> dict[str, Any]:
    """Every secret-bearing part of ``event`` scrubbed, in place; returns ``event``."""
    secrets = _secrets(event, s)
    for value in event.get("exception", {}).get("values", ()):
        value["value"] = s.text(str(value.get("value", "")))
        for frame in value.get("stacktrace", {}).get("frames", ()):
            _scrub_frame(frame, s)
    if "message" in event:
        event["message"] = s.text(str(event["message"]))
    if "request" in event:
        event["request"] = _scrub_request(event["request"], s)
    for key in ("extra", "user", "tags"):
        if key in event:
            event[key] = s.value(event[key])
    # Breadcrumbs were scrubbed when they were recorded (see _breadcrumbs); the secrets
    # of this event's request may still be in them, as in any other part.
    if secrets:
        for key in ("exception", "message", "breadcrumbs", "extra", "tags", "contexts"):
            if key in event:
                event[key] = s.redact(event[key], secrets)
    return event


def to_json(event: dict[str, Any]) -> str:
    """The event as JSON; an oversized one loses its locals, then its source context."""
    text = json.dumps(event, default=str, separators=(",", ":"), ensure_ascii=False)
    if len(text) <= MAX_EVENT_BYTES:
        return text
    for keys in (("vars",), ("vars", "pre_context", "post_context")):
        for value in event.get("exception", {}).get("values", ()):
            for frame in value.get("stacktrace", {}).get("frames", ()):
                for key in keys:
                    frame.pop(key, None)
        text = json.dumps(event, default=str, separators=(",", ":"), ensure_ascii=False)
        if len(text) <= MAX_EVENT_BYTES:
            break
    return text


def exception_attributes(exc: BaseException, event: dict[str, Any] | None) -> dict[str, str]:
    """The semconv ``exception.*`` attributes of ``exc``, from the (scrubbed) event."""
    cls = type(exc)
    name = (
        cls.__qualname__
        if cls.__module__ in ("builtins", "__main__")
        else f"{cls.__module__}.{cls.__qualname__}"
    )
    values = (event or {}).get("exception", {}).get("values") or []
    if not values:  # no event of its own (already captured): the type says enough
        return {"exception.type": name}
    return {
        "exception.type": name,
        "exception.message": str(values[-1].get("value", "")),
        "exception.stacktrace": format_traceback(values),
    }


def format_traceback(values: list[dict[str, Any]]) -> str:
    """A Python-style traceback of an event's (scrubbed) exception chain."""
    parts = []
    for i, value in enumerate(values):
        if i:
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
            )
        parts.append("Traceback (most recent call last):\n")
        for frame in value.get("stacktrace", {}).get("frames", ()):
            parts.append(
                f'  File "{frame.get("abs_path")}", line {frame.get("lineno")}, '
                f"in {frame.get('function')}\n"
            )
            if frame.get("context_line"):
                parts.append(f"    {str(frame['context_line']).strip()}\n")
        parts.append(f"{value.get('type')}: {value.get('value')}\n")
    return "".join(parts)
