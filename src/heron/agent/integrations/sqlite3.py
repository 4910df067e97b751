"""sqlite3 (standard library): a client span per statement, EXPLAIN QUERY PLAN of slow ones.

The module's types are C types that cannot be patched, so heron wraps ``sqlite3.connect``
and gives each new connection a traced subclass of its class (``factory=``, the user's
own factory subclassed in turn). ``Connection.execute``/``executemany`` and every
cursor's ``execute``/``executemany`` are traced; ``executescript`` is not. Connections
opened before ``heron.init()``, or through a ``connect`` imported by name before it
(``from sqlite3 import connect``), are not traced.

Slow SELECTs on a database file are explained on a new read-only connection to the same
file; in-memory and temporary databases cannot be reached from another connection and
are not explained.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heron.agent.integrations._db import Target, Tracing

NAME = "sqlite3"
DISTRIBUTION = ""  # the standard library
MIN_VERSION: tuple[int, ...] = ()
TRIGGER = "sqlite3"

_lock = threading.Lock()
_original_connect: Callable[..., Any] | None = None
_connection_classes: dict[type, type] = {}
_cursor_classes: dict[type, type] = {}


def _describe(database: Any, uri: bool) -> tuple[str, str | None]:
    """The namespace of a connection's database, and the URI EXPLAIN opens (None: none).

    Resolved when the connection opens: a relative path means the working directory then.
    """
    try:
        text = os.fsdecode(database)
    except TypeError:
        return "", None
    if uri and text.startswith("file:"):
        path, _, query = text[5:].partition("?")
        if not path or path == ":memory:" or "mode=memory" in query:
            return path or ":temp:", None
        explain = text if "mode=" in query else f"{text}{'&' if query else '?'}mode=ro"
        return Path(path).stem, explain
    if text in ("", ":memory:"):
        return text or ":temp:", None
    return Path(text).stem, Path(os.path.abspath(text)).as_uri() + "?mode=ro"


def _build_target(conn: Any) -> Target:
    import sqlite3

    namespace, explain_uri = getattr(conn, "_heron_database", ("", None))
    connect = None
    if explain_uri is not None:
        connect = functools.partial(
            _original_connect or sqlite3.connect, explain_uri, uri=True, timeout=1.0
        )
    return Target("sqlite", namespace=namespace, connect=connect)


_tracing = Tracing(NAME, build_target=_build_target)


def _traced_cursor_class(base: type) -> type:
    cls = _cursor_classes.get(base)
    if cls is not None:
        return cls
    execute, executemany = base.execute, base.executemany  # type: ignore[attr-defined]

    def traced_execute(self: Any, sql: Any, parameters: Any = (), /) -> Any:
        return _tracing.call(self, sql, parameters, execute, (self, sql, parameters), {})

    def traced_executemany(self: Any, sql: Any, seq_of_parameters: Any, /) -> Any:
        args = (self, sql, seq_of_parameters)
        return _tracing.call(self, sql, seq_of_parameters, executemany, args, {}, many=True)

    cls = type(
        base.__name__,
        (base,),
        {
            "execute": traced_execute,
            "executemany": traced_executemany,
            "__module__": base.__module__,
            "__qualname__": base.__qualname__,
        },
    )
    _cursor_classes[base] = cls
    return cls


def _traced_connection_class(base: type) -> type:
    cls = _connection_classes.get(base)
    if cls is not None:
        return cls
    import sqlite3

    base_cursor = base.cursor  # type: ignore[attr-defined]

    def cursor(self: Any, factory: Any = sqlite3.Cursor) -> Any:
        if isinstance(factory, type) and issubclass(factory, sqlite3.Cursor):
            factory = _traced_cursor_class(factory)
        return base_cursor(self, factory)  # another callable: its cursors are not traced

    # The C execute() makes its cursor without calling cursor(): go through ours instead.
    def execute(self: Any, sql: Any, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self: Any, sql: Any, seq_of_parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, seq_of_parameters)

    cls = type(
        base.__name__,
        (base,),
        {
            "cursor": cursor,
            "execute": execute,
            "executemany": executemany,
            "__module__": base.__module__,
            "__qualname__": base.__qualname__,
        },
    )
    _connection_classes[base] = cls
    return cls


def _wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    import sqlite3

    @functools.wraps(original)
    def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) > 4:  # factory given by position (timeout, detect_types, ...)
            return original(database, *args, **kwargs)
        factory = kwargs.pop("factory", None) or sqlite3.Connection
        try:
            traced = _traced_connection_class(factory)
        except Exception:  # a factory heron cannot subclass: leave it untraced
            return original(database, *args, factory=factory, **kwargs)
        conn = original(database, *args, factory=traced, **kwargs)
        conn._heron_database = _describe(database, bool(kwargs.get("uri", False)))
        return conn

    connect._heron_original = original  # type: ignore[attr-defined]
    return connect


def setup() -> None:
    global _original_connect
    import sqlite3
    import sqlite3.dbapi2

    with _lock:
        if _original_connect is not None:
            return
        original = sqlite3.connect
        traced = _wrap_connect(original)
        sqlite3.connect = traced
        sqlite3.dbapi2.connect = traced
        _original_connect = original


def teardown() -> None:
    global _original_connect
    import sqlite3
    import sqlite3.dbapi2

    with _lock:
        if _original_connect is not None:
            sqlite3.connect = _original_connect
            sqlite3.dbapi2.connect = _original_connect
            _original_connect = None
