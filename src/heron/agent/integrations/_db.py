"""Database client spans, shared by the SQL integrations: one span per statement.

Each integration patches its driver's ``execute``/``executemany`` and calls
:meth:`Tracing.call` (or ``acall``), giving the cursor, the statement and its parameters.
The span carries the current semantic-convention names (``db.system.name``,
``db.namespace``, ``db.operation.name``, ``db.collection.name``, ``db.query.text``,
``server.address``, ``server.port``) and is named ``{operation} {table}``. The old names
(``db.system``, ``db.statement``, ...) are added only with
``OTEL_SEMCONV_STABILITY_OPT_IN=database/dup``.

What must never happen here: a literal value of the app's leaving the process by default
(``db.query.text`` is obfuscated, and so are error descriptions, which databases fill with
values), and an exception of heron's reaching the app. Preparing and ending a span run
inside the guard; the statement itself runs outside it, so the app's own database errors
propagate unchanged.

A statement runs inside exactly one span: the cursor that is executing is *claimed* (a
context variable), and a nested call on the same cursor (PyMySQL's ``executemany`` calling
``execute``, SQLAlchemy driving a driver heron also instruments) adds no second span.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import context, metrics, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from heron._version import __version__
from heron.agent import _sql
from heron.agent.config import DEFAULT_EXPLAIN_THRESHOLD_MS
from heron.agent.guard import capture_internal_exceptions

logger = logging.getLogger("heron.agent")

PLAN_REQUESTED = "heron.db.plan.requested"
# The semantic conventions' advised buckets for db.client.operation.duration (seconds).
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
# Metric attributes: what identifies the kind of statement, never its text.
_METRIC_KEYS = (
    "db.system.name",
    "db.namespace",
    "db.operation.name",
    "db.collection.name",
    "server.address",
    "server.port",
)

# A proxy until a meter provider is installed (heron.init()), then the real histogram.
_duration = metrics.get_meter("heron.agent.integrations.db", __version__).create_histogram(
    "db.client.operation.duration",
    unit="s",
    description="Duration of database client operations",
    explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
)

R = TypeVar("R")


@dataclass(frozen=True)
class DbSettings:
    """What ``heron.init()`` decided for database spans (``record_sql``, ``explain_...``)."""

    record_sql: str = "obfuscated"
    explain_threshold_ms: float = DEFAULT_EXPLAIN_THRESHOLD_MS  # 0: no EXPLAIN
    old_names: bool = False  # also emit db.system, db.statement, ... (database/dup)


_settings = DbSettings()


def configure(
    *, record_sql: str, explain_threshold_ms: float, environ: Mapping[str, str] | None = None
) -> None:
    """Set the database settings of this process (``heron.init()`` calls it)."""
    global _settings
    opt_in = (os.environ if environ is None else environ).get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    _settings = DbSettings(
        record_sql=record_sql,
        explain_threshold_ms=explain_threshold_ms,
        old_names="database/dup" in {s.strip() for s in opt_in.split(",")},
    )


def settings() -> DbSettings:
    return _settings


def set_settings(value: DbSettings) -> DbSettings:
    """Replace the settings, returning the previous ones (for tests and benchmarks)."""
    global _settings
    previous, _settings = _settings, value
    return previous


class Target:
    """The database a connection talks to, as span attributes, and how to reach it again."""

    __slots__ = ("address", "attributes", "connect", "namespace", "port", "shapes", "system")

    def __init__(
        self,
        system: str,
        *,
        namespace: str | None = None,
        address: str | None = None,
        port: int | None = None,
        connect: Callable[[], Any] | None = None,
    ) -> None:
        self.system = system
        self.namespace = namespace or None
        self.address = address or None
        self.port = port
        self.connect = connect  # a new DB-API connection for EXPLAIN; None: no EXPLAIN
        attributes: dict[str, AttributeValue] = {"db.system.name": system}
        if self.namespace:
            attributes["db.namespace"] = self.namespace
        if self.address:
            attributes["server.address"] = self.address
        if port is not None:
            attributes["server.port"] = port
        self.attributes: Mapping[str, AttributeValue] = attributes
        # statement text, or its parsed Statement -> the name and attributes of its spans
        self.shapes: dict[object, _Shape] = {}

    def name_target(self, collection: str | None) -> str | None:
        """The span name's target: the table, else the database, else the server."""
        if collection:
            return collection
        if self.namespace:
            return self.namespace
        if self.address and self.port is not None:
            return f"{self.address}:{self.port}"
        return self.address


_OLD_NAMES = {
    "db.system.name": "db.system",
    "db.namespace": "db.name",
    "server.address": "net.peer.name",
    "server.port": "net.peer.port",
    "db.query.text": "db.statement",
    "db.operation.name": "db.operation",
    "db.collection.name": "db.sql.table",
}

# ------------------------------------------------------------------- claiming cursors

_claimed: ContextVar[object] = ContextVar("heron_db_claimed", default=None)


def claim(cursor: object) -> Token[object]:
    """Mark ``cursor`` as inside a database span until :func:`release`."""
    return _claimed.set(cursor)


def release(token: Token[object]) -> None:
    _claimed.reset(token)


def untraced(cursor: object) -> bool:
    """Whether a statement on ``cursor`` must run without a span of its own."""
    return _claimed.get() is cursor or bool(context.get_value(_SUPPRESS_INSTRUMENTATION_KEY))


# ------------------------------------------------------------------------ one query


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__
        if cls.__module__ in ("builtins", "__main__")
        else f"{cls.__module__}.{cls.__qualname__}"
    )


def _status_code(exc: BaseException) -> str | None:
    """The database's own error code: MySQL's error number, else SQLSTATE or SQLite's name."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return str(args[0])  # MySQL, MariaDB: (1062, "Duplicate entry ...")
    for attr in ("sqlstate", "pgcode", "sqlite_errorname"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


class Query:
    """The span of one statement between its start and its end."""

    __slots__ = (
        "explain",
        "metric_attributes",
        "params",
        "span",
        "sql",
        "started",
        "statement",
        "target",
    )

    def __init__(
        self,
        span: Span,
        target: Target,
        statement: _sql.Statement,
        sql: str | None,
        params: Any,
        explain: bool,
        metric_attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        self.span = span
        self.target = target
        self.statement = statement
        self.sql = sql
        self.params = params
        self.explain = explain
        self.metric_attributes = metric_attributes or {}
        self.started = time.perf_counter_ns()

    def finish(self) -> None:
        with capture_internal_exceptions:
            elapsed = time.perf_counter_ns() - self.started
            try:
                _duration.record(elapsed / 1e9, self.metric_attributes)
                if self.explain:
                    self._maybe_explain(elapsed)
            finally:
                self.span.end()

    def fail(self, exc: BaseException) -> None:
        with capture_internal_exceptions:
            elapsed = time.perf_counter_ns() - self.started
            try:
                _duration.record(
                    elapsed / 1e9, {**self.metric_attributes, "error.type": _error_type(exc)}
                )
                if isinstance(exc, Exception) and self.span.is_recording():
                    self._record_error(exc)
            finally:
                self.span.end()

    def _record_error(self, exc: Exception) -> None:
        span, kind = self.span, _error_type(exc)
        span.set_attribute("error.type", kind)
        code = _status_code(exc)
        if code is not None:
            span.set_attribute("db.response.status_code", code)
        if _settings.record_sql == "raw":
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        else:
            # Databases quote the offending values in their messages ("Key (email)=(...)
            # already exists", "Duplicate entry '...'"): only the type leaves the process.
            span.add_event("exception", {"exception.type": kind})
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))

    def _maybe_explain(self, elapsed_ns: int) -> None:
        threshold_ms = _settings.explain_threshold_ms
        if not threshold_ms or elapsed_ns < threshold_ms * 1_000_000 or self.sql is None:
            return
        from heron.agent._explain import ExplainRequest, default_explainer

        target = self.target
        assert target.connect is not None  # checked when the query began
        request = ExplainRequest(
            system=target.system,
            sql=self.sql,
            params=self.params,
            connect=target.connect,
            parent=self.span.get_span_context(),
            key=f"{target.system}\0{self.statement.text}",
            name=_span_name(target, self.statement),
            scrub=_settings.record_sql != "raw",
        )
        if default_explainer().submit(request):
            self.span.set_attribute(PLAN_REQUESTED, True)


def _span_name(target: Target, statement: _sql.Statement) -> str:
    return _sql.span_name(
        statement.operation, target.name_target(statement.collection), target.system
    )


def _attributes(
    target: Target, statement: _sql.Statement, sql: str | None, settings: DbSettings
) -> dict[str, AttributeValue]:
    attributes = dict(target.attributes)
    mode = settings.record_sql
    if sql is not None and mode != "off":
        attributes["db.query.text"] = (
            statement.text if mode == "obfuscated" else sql[: _sql.MAX_QUERY_CHARS]
        )
    if statement.operation:
        attributes["db.operation.name"] = statement.operation
    if statement.collection:
        attributes["db.collection.name"] = statement.collection
    if settings.old_names:
        for new, old in _OLD_NAMES.items():
            if new in attributes:
                attributes[old] = attributes[new]
    return attributes


class _Shape:
    """What every span of one statement text on one target shares (computed once)."""

    __slots__ = ("attributes", "explainable", "metric_attributes", "name", "settings", "statement")

    def __init__(
        self, target: Target, statement: _sql.Statement, sql: str | None, settings: DbSettings
    ) -> None:
        self.settings = settings
        self.statement = statement
        self.name = _span_name(target, statement)
        self.attributes = _attributes(target, statement, sql, settings)  # never mutated
        self.metric_attributes = {
            k: self.attributes[k] for k in _METRIC_KEYS if k in self.attributes
        }
        self.explainable = (
            statement.read_only
            and target.connect is not None
            and bool(settings.explain_threshold_ms)
            and settings.record_sql != "off"
        )


_MAX_SHAPES = 1024  # per target; apps have far fewer distinct statements than that


def _remember(target: Target, key: object, shape: _Shape) -> None:
    if len(target.shapes) >= _MAX_SHAPES:
        target.shapes.clear()
    target.shapes[key] = shape


def _shape(target: Target, sql: str | None) -> _Shape:
    """The shape of ``sql``'s spans: by its text, else by its obfuscated form (literals
    differ, the span does not), else computed."""
    key = sql or ""
    settings = _settings
    shape = target.shapes.get(key)
    if shape is not None and shape.settings is settings:
        return shape
    statement = _sql.parse(key, target.system)
    raw = settings.record_sql == "raw"  # then db.query.text is the text itself
    shape = None if raw else target.shapes.get(statement)
    if shape is None or shape.settings is not settings:
        shape = _Shape(target, statement, sql, settings)
        if not raw:
            _remember(target, statement, shape)
    if len(key) <= 4096:
        _remember(target, key, shape)
    return shape


def _batch_size(params: Any) -> int | None:
    try:
        return len(params)
    except TypeError:  # a generator: unknown without consuming it
        return None


# ----------------------------------------------------------------- per integration


class Tracing:
    """One integration's tracer, with the connection → :class:`Target` cache.

    ``connection_of(cursor)`` finds a cursor's connection, ``build_target(connection)``
    describes it (once per connection), ``text_of(query, cursor)`` turns the driver's
    query object into text (None when it cannot).
    """

    def __init__(
        self,
        name: str,
        *,
        build_target: Callable[[Any], Target] | None = None,
        connection_of: Callable[[Any], Any] = lambda cursor: cursor.connection,
        text_of: Callable[[Any, Any], str | None] = lambda query, _cursor: text_of_str(query),
    ) -> None:
        self.tracer = trace.get_tracer(f"heron.agent.integrations.{name}", __version__)
        self.connection_of = connection_of
        self.build_target = build_target
        self.text_of = text_of
        self._targets: weakref.WeakKeyDictionary[Any, Target] = weakref.WeakKeyDictionary()

    def target(self, cursor: Any) -> Target | None:
        """The cursor's connection's target; None for a cursor without a connection."""
        conn = self.connection_of(cursor)
        if conn is None:  # closed: the driver is about to say so
            return None
        target = getattr(conn, "_heron_db_target", None)
        if target is not None:
            return target
        try:
            return self._targets[conn]
        except (KeyError, TypeError):
            pass
        if self.build_target is None:
            return None
        target = self.build_target(conn)
        try:
            conn._heron_db_target = target
        except AttributeError:  # __slots__: remember it beside the connection instead
            with contextlib.suppress(TypeError):  # not weak-referenceable: describe it anew
                self._targets[conn] = target
        return target

    def begin(self, target: Target, sql: str | None, params: Any, *, many: bool = False) -> Query:
        """Start the span of one statement (``sql`` None: its text is unknown)."""
        shape = _shape(target, sql)
        attributes = shape.attributes
        if many:
            batch = _batch_size(params)
            if batch is not None and batch >= 2:
                attributes = {**attributes, "db.operation.batch.size": batch}
        span = self.tracer.start_span(shape.name, kind=SpanKind.CLIENT, attributes=attributes)
        explain = shape.explainable and not many and span.is_recording()
        statement = shape.statement
        return Query(span, target, statement, sql, params, explain, shape.metric_attributes)

    def _begin(self, cursor: Any, query: Any, params: Any, many: bool) -> Query | None:
        with capture_internal_exceptions:
            target = self.target(cursor)
            if target is None:
                return None
            sql = self.text_of(query, cursor)
            return self.begin(target, sql, params, many=many)
        return None

    def wrap_execute(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """A DB-API ``cursor.execute(query, args=None)`` that runs inside a span."""

        @functools.wraps(original)
        def execute(cursor: Any, query: Any, args: Any = None) -> Any:
            return self.call(cursor, query, args, original, (cursor, query, args), {})

        return execute

    def wrap_executemany(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """A DB-API ``cursor.executemany(query, args)`` that runs inside a span."""

        @functools.wraps(original)
        def executemany(cursor: Any, query: Any, args: Any) -> Any:
            return self.call(cursor, query, args, original, (cursor, query, args), {}, many=True)

        return executemany

    def call(
        self,
        cursor: Any,
        query: Any,
        params: Any,
        func: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        many: bool = False,
    ) -> R:
        """Run ``func(*args, **kwargs)``, the driver's own execute, inside a span."""
        if untraced(cursor):
            return func(*args, **kwargs)
        q = self._begin(cursor, query, params, many)
        if q is None:
            return func(*args, **kwargs)
        token = _claimed.set(cursor)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _claimed.reset(token)
            q.fail(exc)
            raise
        _claimed.reset(token)
        q.finish()
        return result

    async def acall(
        self,
        cursor: Any,
        query: Any,
        params: Any,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        many: bool = False,
    ) -> Any:
        """:meth:`call` for an async driver method."""
        if untraced(cursor):
            return await func(*args, **kwargs)
        q = self._begin(cursor, query, params, many)
        if q is None:
            return await func(*args, **kwargs)
        token = _claimed.set(cursor)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            _claimed.reset(token)
            q.fail(exc)
            raise
        _claimed.reset(token)
        q.finish()
        return result


# ------------------------------------------------------------------- patching helpers


def patch(
    cls: type, name: str, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> Callable[[], None]:
    """Replace ``cls.name`` (defined on ``cls`` itself) by ``wrapper(original)``; return the undo."""
    original = cls.__dict__[name]
    setattr(cls, name, wrapper(original))

    def undo() -> None:
        setattr(cls, name, original)

    return undo


def mysql_system(server_version: object) -> str:
    """``mariadb`` or ``mysql``, from the server's version string."""
    text = server_version.decode() if isinstance(server_version, bytes) else str(server_version)
    return "mariadb" if "mariadb" in text.lower() else "mysql"


def text_of_str(query: Any, _cursor: Any = None) -> str | None:
    """Statement text of ``str``/``bytes`` queries (what most DB-API drivers take)."""
    if isinstance(query, str):
        return query
    if isinstance(query, (bytes, bytearray)):
        return bytes(query).decode("utf-8", "replace")
    return None
