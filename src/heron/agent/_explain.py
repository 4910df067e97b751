"""EXPLAIN plans of slow SELECTs, fetched off the request path on a connection of their own.

When a database span's SELECT took at least ``explain_threshold_ms``, the integration hands
an :class:`ExplainRequest` to the :class:`Explainer`. It never runs on the app's thread or
the app's connection:

- ``submit()`` only rate-checks and enqueues: at most one plan per statement shape per
  minute and ``per_minute`` plans overall; a bounded queue; what does not fit is dropped
  and counted.
- A daemon worker opens a **new** connection with the original connection's settings,
  makes its session read-only with a statement timeout, runs ``EXPLAIN (FORMAT JSON)``
  (PostgreSQL), ``EXPLAIN FORMAT=JSON`` (MySQL, MariaDB) or ``EXPLAIN QUERY PLAN``
  (SQLite) with the statement's original parameters (never ``ANALYZE``: nothing is
  executed), and closes the connection.
- The plan, with its literal values scrubbed unless ``record_sql="raw"`` and cut to
  :data:`MAX_PLAN_CHARS`, becomes a small span ``EXPLAIN <query span's name>``, a child of
  the slow query's span, with ``heron.db.plan`` and ``heron.db.plan.format``.

Failing to explain (the database refuses a connection, a ``SET search_path`` the app made
on its own connection is missing, a timeout) is expected now and then: it is counted in
``heron.stats().explain_failures`` and logged at debug level, never raised.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind

from heron._version import __version__
from heron.agent._sql import obfuscate
from heron.agent.fork import after_fork_in_child
from heron.agent.guard import capture_internal_exceptions

logger = logging.getLogger("heron.agent")

#: Heron's server keeps 16 KiB of an attribute value; a longer plan is cut below that.
MAX_PLAN_CHARS = 16_000
TIMEOUT_S = 5.0

PLAN = "heron.db.plan"
PLAN_FORMAT = "heron.db.plan.format"
PLAN_TRUNCATED = "heron.db.plan.truncated"

_PREFIX = {
    "postgresql": "EXPLAIN (FORMAT JSON) ",
    "mysql": "EXPLAIN FORMAT=JSON ",
    "mariadb": "EXPLAIN FORMAT=JSON ",
    "sqlite": "EXPLAIN QUERY PLAN ",
}
EXPLAINABLE = frozenset(_PREFIX)


def _session_setup(system: str, timeout_s: float) -> tuple[str, ...]:
    """Statements that make the explaining session read-only and bounded in time."""
    ms = int(timeout_s * 1000)
    if system == "postgresql":
        return (f"SET statement_timeout = {ms}", "SET default_transaction_read_only = on")
    if system == "mariadb":
        return (
            "SET SESSION TRANSACTION READ ONLY",
            f"SET SESSION max_statement_time = {ms / 1000}",
        )
    if system == "mysql":
        return ("SET SESSION TRANSACTION READ ONLY", f"SET SESSION max_execution_time = {ms}")
    return ("PRAGMA query_only = ON",)


@dataclass(frozen=True)
class ExplainRequest:
    """A slow SELECT to explain, with what is needed to reach its database again."""

    system: str  # db.system.name: postgresql, mysql, mariadb or sqlite
    sql: str  # the statement as the driver received it
    params: Any  # its parameters; None: it ran without any
    connect: Callable[[], Any]  # opens a new DB-API connection to the same database
    parent: SpanContext  # the slow query's span
    key: str  # the obfuscated statement: one plan per shape and interval
    name: str  # the slow query's span name
    scrub: bool = True  # remove literal values from the plan


@dataclass(frozen=True)
class Plan:
    text: str
    format: str  # "json" or "text"
    truncated: bool = False


class Explainer:
    """Rate-limited, bounded, background EXPLAIN of slow queries (see the module docstring)."""

    def __init__(
        self,
        *,
        max_queue: int = 16,
        per_statement_s: float = 60.0,
        per_minute: int = 10,
        timeout_s: float = TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.max_queue = max_queue
        self.per_statement_s = per_statement_s
        self.per_minute = per_minute
        self.timeout_s = timeout_s
        self.clock = clock
        self.tracer = trace.get_tracer(
            "heron.agent.explain", __version__, tracer_provider=tracer_provider
        )
        self._reset()
        after_fork_in_child(self._reset)  # the parent's worker thread does not exist here

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.Queue[ExplainRequest] = queue.Queue(self.max_queue)
        self._thread: threading.Thread | None = None
        self._last: dict[str, float] = {}  # statement shape -> when it was last accepted
        self._recent: deque[float] = deque()  # acceptance times within the last minute
        self.explained = 0
        self.failed = 0
        self.skipped = 0  # rate-limited or queue full

    # ---------------------------------------------------------------- app side

    def submit(self, request: ExplainRequest) -> bool:
        """Queue ``request`` unless rate-limited or full; never blocks."""
        if not self._allow(request.key):
            self.skipped += 1
            return False
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self.skipped += 1
            return False
        self._ensure_worker()
        return True

    def _allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.per_statement_s:
                return False
            while self._recent and now - self._recent[0] >= 60.0:
                self._recent.popleft()
            if len(self._recent) >= self.per_minute:
                return False
            self._recent.append(now)
            if len(self._last) >= 1024:  # forget shapes whose interval has passed
                horizon = now - self.per_statement_s
                self._last = {k: t for k, t in self._last.items() if t > horizon}
            self._last[key] = now
            return True

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._work, name="heron-explain", daemon=True)
            self._thread = thread
        with contextlib.suppress(RuntimeError):  # no new threads at interpreter shutdown
            thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued request is handled; False on timeout (for tests, bench)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # ---------------------------------------------------------------- worker side

    def _work(self) -> None:
        q = self._queue
        while True:
            request = q.get()
            try:
                self._handle(request)
            finally:
                q.task_done()

    def _handle(self, request: ExplainRequest) -> None:
        start = time.time_ns()
        try:
            with _suppressed():
                plan = self.explain(request)
        except Exception as exc:  # the database's or the driver's: expected now and then
            self.failed += 1
            logger.debug("heron: could not EXPLAIN %s: %r", request.name, exc)
            return
        with capture_internal_exceptions:
            self._emit(request, plan, start, time.time_ns())
            self.explained += 1

    def explain(self, request: ExplainRequest) -> Plan:
        """Run the EXPLAIN on a new connection; raises what the database raises."""
        conn = request.connect()
        try:
            cur = conn.cursor()
            for statement in _session_setup(request.system, self.timeout_s):
                cur.execute(statement)
            sql = _PREFIX[request.system] + request.sql
            if request.params is None:
                cur.execute(sql)
            else:
                cur.execute(sql, request.params)
            rows = cur.fetchall()
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        return render_plan(request.system, rows, scrub=request.scrub)

    def _emit(self, request: ExplainRequest, plan: Plan, start: int, end: int) -> None:
        attributes: dict[str, str | bool] = {PLAN: plan.text, PLAN_FORMAT: plan.format}
        if plan.truncated:
            attributes[PLAN_TRUNCATED] = True
        parent = trace.set_span_in_context(NonRecordingSpan(request.parent))
        span = self.tracer.start_span(
            f"EXPLAIN {request.name}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=start,
        )
        span.end(end_time=end)


@contextlib.contextmanager
def _suppressed() -> Iterator[None]:
    """No spans for the explaining connection's own statements (heron's or contrib's)."""
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


# -------------------------------------------------------------------------- plans

# Plan fields that name things (nodes, tables, indexes, strategies) and never hold a value.
_STRUCTURAL = frozenset(
    {
        "Node Type",
        "Relation Name",
        "Schema",
        "Alias",
        "Index Name",
        "CTE Name",
        "Subplan Name",
        "Parent Relationship",
        "Strategy",
        "Join Type",
        "Scan Direction",
        "Partial Mode",
        "Operation",
        "Function Name",
        "Command",
        "table_name",
        "access_type",
        "key",
        "possible_keys",
        "used_key_parts",
        "select_type",
    }
)
_NUMERIC = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_QUOTED = re.compile(r"'(?:[^']|'')*(?:'|\Z)")


def _scrub(value: Any, system: str, key: str = "") -> Any:
    if isinstance(value, str):
        if key in _STRUCTURAL or _NUMERIC.fullmatch(value):  # MySQL writes costs as strings
            return value
        return obfuscate(value, system)
    if isinstance(value, list):
        return [_scrub(v, system, key) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, system, str(k)) for k, v in value.items()}
    return value


def _sqlite_tree(rows: list[Any], scrub: bool) -> str:
    """``EXPLAIN QUERY PLAN`` rows (id, parent, notused, detail) as an indented tree."""
    depth: dict[int, int] = {}
    lines = []
    for row in rows:
        node, parent, detail = int(row[0]), int(row[1]), str(row[3])
        depth[node] = depth.get(parent, -1) + 1
        # SQLite shows bound values as "?"; quoted text can only come from the statement.
        lines.append("  " * depth[node] + (_QUOTED.sub("?", detail) if scrub else detail))
    return "\n".join(lines)


def _cut(text: str, fmt: str) -> Plan:
    if len(text) <= MAX_PLAN_CHARS:
        return Plan(text, fmt)
    return Plan(text[:MAX_PLAN_CHARS], fmt, truncated=True)


def render_plan(system: str, rows: list[Any], *, scrub: bool) -> Plan:
    """The plan text of an EXPLAIN's result rows, scrubbed of literal values if asked."""
    if system == "sqlite":
        return _cut(_sqlite_tree(rows, scrub), "text")
    value = rows[0][0]
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        value = json.loads(value)
    if scrub:
        value = _scrub(value, system)
    return _cut(json.dumps(value, separators=(",", ":"), ensure_ascii=False), "json")


# ----------------------------------------------------------------- the process's one

_default: Explainer | None = None
_default_lock = threading.Lock()


def default_explainer() -> Explainer:
    """The explainer the integrations use (created on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Explainer()
    return _default


def counts() -> tuple[int, int]:
    """(plans captured, failures) of this process, for ``heron.stats()``."""
    explainer = _default
    return (explainer.explained, explainer.failed) if explainer else (0, 0)
