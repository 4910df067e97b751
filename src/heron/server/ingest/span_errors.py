"""Error events from OpenTelemetry exception data: span events and log attributes.

Any OTLP SDK records an exception as a span event named ``exception`` (or, newer, a log
record) with the semantic-convention attributes ``exception.type``,
``exception.message`` and ``exception.stacktrace`` (the runtime's own text). This module
turns those into :class:`ErrorEvent` records, parsing a Python traceback into frames
when the text is one; other runtimes' traces are kept as text in ``extra``.

The trace ingest hot path calls :func:`events_from_spans` on every request: it must stay
a substring test per span when no span carries an exception.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from typing import Any

from heron.server.model import ErrorEvent, Span
from heron.server.model.span import COL, SpanBatch
from heron.server.semconv import (
    EXCEPTION_ESCAPED,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
    TELEMETRY_DISTRO_NAME,
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
)

MAX_MESSAGE_CHARS = 8_192
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.*))?$')
_CHAIN_SEPARATORS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_TRACEBACK_HEAD = "Traceback (most recent call last):"
_EXC_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<value>.*))?$")
# Paths of third-party and standard-library code: not the application's frames.
_NOT_IN_APP = re.compile(r"(site|dist)-packages|/lib/python\d|<frozen |\\lib\\|^<")


# ------------------------------------------------------------------- tracebacks


def parse_python_traceback(text: str) -> list[dict[str, Any]] | None:
    """The exception chain (oldest → newest) of a formatted Python traceback, each
    ``{"type", "value", "frames"}`` with frames caller → callee; None when ``text`` is
    not a Python traceback."""
    if _TRACEBACK_HEAD not in text:
        return None
    chain: list[dict[str, Any]] = []
    for segment in _split_chain(text.splitlines()):
        exc = _parse_segment(segment)
        if exc is not None:
            chain.append(exc)
    return chain or None


def _split_chain(lines: list[str]) -> list[list[str]]:
    segments: list[list[str]] = [[]]
    for line in lines:
        if line.strip() in _CHAIN_SEPARATORS:
            segments.append([])
        else:
            segments[-1].append(line)
    return segments


def _parse_segment(lines: list[str]) -> dict[str, Any] | None:
    frames: list[dict[str, Any]] = []
    exc_line = ""
    i = 0
    while i < len(lines):
        m = _FRAME.match(lines[i])
        if m:
            frame = _frame(m.group("file"), int(m.group("line")), m.group("func") or "?")
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if nxt.startswith("    ") and not _FRAME.match(nxt):
                frame["context_line"] = nxt.strip()
                i += 1
            frames.append(frame)
        elif lines[i] and not lines[i][0].isspace() and lines[i] != _TRACEBACK_HEAD:
            exc_line = exc_line or lines[i]
        i += 1
    if not frames and not exc_line:
        return None
    m2 = _EXC_LINE.match(exc_line.strip())
    exc_type = m2.group("type") if m2 else (exc_line.strip() or "Exception")
    value = (m2.group("value") or "") if m2 else ""
    return {"type": exc_type, "value": value, "frames": frames}


def _frame(path: str, lineno: int, function: str) -> dict[str, Any]:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return {
        "filename": name,
        "abs_path": path,
        "module": name[:-3] if name.endswith(".py") else None,
        "function": function.strip(),
        "lineno": lineno,
        "in_app": not _NOT_IN_APP.search(path),
    }


# ------------------------------------------------------------ exception attributes


def has_exception_attrs(attrs: dict[str, Any]) -> bool:
    return bool(attrs.get(EXCEPTION_TYPE) or attrs.get(EXCEPTION_MESSAGE))


def exceptions_from_attrs(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(exception chain, extra) from ``exception.*`` attributes."""
    exc_type = str(attrs.get(EXCEPTION_TYPE) or "")
    message = str(attrs.get(EXCEPTION_MESSAGE) or "")
    stack = attrs.get(EXCEPTION_STACKTRACE)
    extra: dict[str, Any] = {}
    chain = parse_python_traceback(stack) if isinstance(stack, str) and stack else None
    if chain is None:
        chain = [{"type": exc_type or "Error", "value": message, "frames": []}]
        if isinstance(stack, str) and stack:
            extra[EXCEPTION_STACKTRACE] = stack[:MAX_MESSAGE_CHARS]
    else:
        # The attributes name the raised exception exactly (full message); the
        # traceback's last line may be abbreviated. But the SDK's logging handler gives
        # the bare class name where the traceback has it module-qualified: keep that, as
        # the span path's attribute has it (one error, one type, one issue).
        parsed = chain[-1]["type"]
        bare = exc_type and parsed.endswith("." + exc_type)
        chain[-1]["type"] = parsed if bare else exc_type or parsed
        chain[-1]["value"] = message or chain[-1]["value"]
    return chain, extra


def new_event_id() -> str:
    return uuid.uuid4().hex


def exception_event_id(trace_id: bytes | None, exc_type: str, message: str) -> str:
    """The event id of an OpenTelemetry exception: derived from its trace, type and
    message when it has a trace, so that the same error reported twice — as a span's
    exception event and as an ERROR log record, or on each span it propagated through —
    gets one id, and the store keeps one event (whichever arrives first)."""
    if trace_id is None:
        return new_event_id()
    # The SDK's span path names the type with its module, its logging handler without.
    name = exc_type.rsplit(".", 1)[-1]
    key = b"\0".join((trace_id, name.encode(errors="replace"), message.encode(errors="replace")))
    return hashlib.blake2b(key, digest_size=16).hexdigest()


# ------------------------------------------------------------------- span events


# Spans from Heron's agent carry this resource attribute; their exceptions arrive twice
# otherwise: as the agent's own event and as the span's exception event.
HERON_DISTRO = "heron"
_EVENTS = COL["events"]  # a hot loop: tuple indexing, by name


def events_from_spans(spans: Sequence[Span], received_ns: int) -> list[ErrorEvent]:
    """An :class:`ErrorEvent` per ``exception`` span event in a decoded batch, except from
    Heron's agent (``telemetry.distro.name=heron``), which reports its errors itself."""
    if isinstance(spans, SpanBatch):
        idx = [
            i for i, row in enumerate(spans.rows) if row[_EVENTS] and '"exception' in row[_EVENTS]
        ]
        if not idx:
            return []
        candidates = [spans[i] for i in idx]
    else:
        candidates = [s for s in spans if any(e.get("name") == "exception" for e in s.events)]
        if not candidates:
            return []
    entries = _entry_endpoints(spans)
    out: list[ErrorEvent] = []
    for span in candidates:
        if span.resource.get(TELEMETRY_DISTRO_NAME) == HERON_DISTRO:
            continue  # Heron's agent sends its errors itself (richer, as OTLP log events)
        endpoint = span.endpoint if span.is_entry else entries.get((span.trace_id, span.service))
        for e in span.events:
            if e.get("name") == "exception" and has_exception_attrs(e.get("attributes") or {}):
                out.append(_span_event(span, e, endpoint, received_ns))
    return out


def _entry_endpoints(spans: Sequence[Span]) -> dict[tuple[bytes, str], str]:
    """Endpoint of each (trace, service)'s entry span present in the batch."""
    batch = spans if isinstance(spans, SpanBatch) else SpanBatch.from_spans(spans)
    out: dict[tuple[bytes, str], str] = {}
    for span, endpoint, _ in batch.entries():
        out.setdefault((span.trace_id, span.service), endpoint)
    return out


def _span_event(
    span: Span, event: dict[str, Any], endpoint: str | None, received_ns: int
) -> ErrorEvent:
    attrs = event.get("attributes") or {}
    chain, extra = exceptions_from_attrs(attrs)
    escaped = attrs.get(EXCEPTION_ESCAPED)
    raised = chain[-1]
    sdk = span.resource.get(TELEMETRY_SDK_NAME) or "opentelemetry"
    version = span.resource.get(TELEMETRY_SDK_VERSION)
    language = span.resource.get(TELEMETRY_SDK_LANGUAGE)
    return ErrorEvent(
        event_id=exception_event_id(span.trace_id, str(raised["type"]), str(raised["value"])),
        time_ns=int(event.get("time_ns") or span.start_ns + span.duration_ns),
        received_ns=received_ns,
        service=span.service,
        environment=span.environment,
        release=span.release,
        level="error",
        platform=str(language or "other"),
        source="otlp.span",
        exc_type=str(raised["type"]),
        message=str(raised["value"])[:MAX_MESSAGE_CHARS],
        culprit="",
        transaction=endpoint,
        trace_id=span.trace_id,
        span_id=span.span_id,
        handled=(not escaped) if isinstance(escaped, bool) else None,
        exceptions=chain,
        contexts={"trace": {"trace_id": span.trace_id.hex(), "span_id": f"{span.span_id:016x}"}},
        extra=extra,
        tags={"span.name": span.name},
        sdk=f"{sdk}/{version}" if version else str(sdk),
    )
