"""psycopg2: a client span per statement, and EXPLAIN of slow SELECTs.

psycopg2's connection and cursor are C types that cannot be patched, so heron wraps
``psycopg2.connect`` and gives each new connection a traced subclass of its class, which
hands every cursor factory (the default ``cursor``, ``DictCursor``, ``RealDictCursor``,
your own) to the driver as a traced subclass. Connections opened before ``heron.init()``,
through a ``connect`` imported by name before it, through a non-class
``connection_factory``, or with ``async_=True`` are not traced. ``psycopg2.pool`` and
SQLAlchemy call ``psycopg2.connect`` and are covered.
"""

from __future__ import annotations

import functools
import importlib.metadata
import threading
from collections.abc import Callable
from typing import Any

from heron.agent.integrations._db import Target, Tracing

NAME = "psycopg2"
MIN_VERSION = (2, 7)
TRIGGER = "psycopg2"

EXPLAIN_CONNECT_TIMEOUT_S = 5

_lock = threading.Lock()
_original_connect: Callable[..., Any] | None = None
_connection_classes: dict[type, type] = {}
_cursor_classes: dict[type, type] = {}


def __getattr__(name: str) -> Any:
    # The driver installs as "psycopg2" or as the prebuilt "psycopg2-binary"; looked up
    # only when heron checks the version, not when this module is imported.
    if name == "DISTRIBUTION":
        for distribution in ("psycopg2", "psycopg2-binary"):
            try:
                importlib.metadata.version(distribution)
                return distribution
            except importlib.metadata.PackageNotFoundError:
                continue
        return "psycopg2"
    raise AttributeError(name)


def _explain_connect(conn: Any) -> Callable[[], Any]:
    import psycopg2.extensions

    params = psycopg2.extensions.parse_dsn(conn.dsn)
    password = getattr(conn.info, "password", None)
    if password:
        params["password"] = password
    params["connect_timeout"] = EXPLAIN_CONNECT_TIMEOUT_S
    return functools.partial(_original_connect or psycopg2.connect, **params)


def _build_target(conn: Any) -> Target:
    info = conn.info
    return Target(
        "postgresql",
        namespace=info.dbname,
        address=info.host,
        port=info.port,
        connect=_explain_connect(conn),
    )


_tracing = Tracing(NAME, build_target=_build_target)


def _traced_cursor_class(base: type) -> type:
    cls = _cursor_classes.get(base)
    if cls is not None:
        return cls
    execute, executemany = base.execute, base.executemany  # type: ignore[attr-defined]

    def traced_execute(self: Any, query: Any, vars: Any = None) -> Any:
        return _tracing.call(self, query, vars, execute, (self, query, vars), {})

    def traced_executemany(self: Any, query: Any, vars_list: Any) -> Any:
        args = (self, query, vars_list)
        return _tracing.call(self, query, vars_list, executemany, args, {}, many=True)

    namespace = {
        "execute": traced_execute,
        "executemany": traced_executemany,
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "_heron_traced": True,
    }
    cls = _cursor_classes[base] = type(base.__name__, (base,), namespace)
    return cls


def _traced_connection_class(base: type) -> type:
    """``base`` with a cursor() underneath its own that traces whatever factory it picks.

    Subclass connections (``DictConnection``...) choose their default cursor factory in
    their own ``cursor()``; the traced class puts its hook between theirs and psycopg2's.
    """
    cls = _connection_classes.get(base)
    if cls is not None:
        return cls
    import psycopg2.extensions

    root = psycopg2.extensions.connection

    def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) > 1:  # cursor(name, cursor_factory, ...)
            kwargs["cursor_factory"], args = args[1], (args[0], *args[2:])
        factory = kwargs.get("cursor_factory") or self.cursor_factory or psycopg2.extensions.cursor
        if not getattr(factory, "_heron_traced", False) and isinstance(factory, type):
            kwargs["cursor_factory"] = _traced_cursor_class(factory)
        return root.cursor(self, *args, **kwargs)

    hook = type("connection", (root,), {"cursor": cursor, "__module__": root.__module__})
    if base is root:
        cls = hook
    else:
        cls = type(base.__name__, (base, hook), {"__module__": base.__module__})
    _connection_classes[base] = cls
    return cls


def _wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    import psycopg2.extensions

    @functools.wraps(original)
    def connect(
        dsn: Any = None, connection_factory: Any = None, cursor_factory: Any = None, **kwargs: Any
    ) -> Any:
        base = connection_factory or psycopg2.extensions.connection
        asynchronous = kwargs.get("async") or kwargs.get("async_")
        traced = None
        if isinstance(base, type) and not asynchronous:
            try:
                traced = _traced_connection_class(base)
            except TypeError:  # a class heron cannot subclass: leave it untraced
                traced = None
        return original(dsn, traced or connection_factory, cursor_factory, **kwargs)

    return connect


def setup() -> None:
    global _original_connect
    import psycopg2

    with _lock:
        if _original_connect is not None:
            return
        original = psycopg2.connect
        psycopg2.connect = _wrap_connect(original)
        _original_connect = original


def teardown() -> None:
    global _original_connect
    import psycopg2

    with _lock:
        if _original_connect is not None:
            psycopg2.connect = _original_connect
            _original_connect = None
