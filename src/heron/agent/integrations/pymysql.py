"""PyMySQL: a client span per statement (MySQL or MariaDB), and EXPLAIN of slow SELECTs.

Heron patches ``execute``/``executemany`` on ``pymysql.cursors.Cursor``, which every
PyMySQL cursor class inherits (``DictCursor``, ``SSCursor``...), so connections opened
before ``heron.init()`` are traced too. ``executemany`` is one span, with
``db.operation.batch.size``; the statements PyMySQL sends for it add none.
``db.system.name`` is ``mariadb`` when the server says so, else ``mysql``.

A slow SELECT is explained on a new connection with the original one's host, port, user,
password, database, socket, character set and TLS context.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from heron.agent.integrations._db import Target, Tracing, mysql_system, patch

NAME = "pymysql"
DISTRIBUTION = "pymysql"
MIN_VERSION = (1, 0)
TRIGGER = "pymysql"

EXPLAIN_CONNECT_TIMEOUT_S = 5

_lock = threading.Lock()
_undo: list[Callable[[], None]] = []


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _explain_connect(conn: Any) -> Callable[[], Any]:
    import pymysql

    kwargs: dict[str, Any] = {
        "host": conn.host,
        "port": conn.port,
        "user": _text(conn.user),
        "password": conn.password,
        "database": _text(conn.db),
        "unix_socket": conn.unix_socket,
        "charset": conn.charset,
        "connect_timeout": EXPLAIN_CONNECT_TIMEOUT_S,
        "read_timeout": EXPLAIN_CONNECT_TIMEOUT_S * 2,
    }
    # TLS the app asked for (PyMySQL >= 1.2 also tries it unasked: "_ssl_required" tells).
    required = getattr(conn, "_ssl_required", getattr(conn, "ssl", False))
    if required and getattr(conn, "ctx", None) is not None:
        kwargs["ssl"] = conn.ctx
    return functools.partial(pymysql.connect, **kwargs)


def _build_target(conn: Any) -> Target:
    socket = conn.unix_socket
    return Target(
        mysql_system(getattr(conn, "server_version", "") or ""),
        namespace=_text(conn.db),
        address=socket or conn.host,
        port=None if socket else conn.port,
        connect=_explain_connect(conn),
    )


_tracing = Tracing(NAME, build_target=_build_target)


def setup() -> None:
    import pymysql.cursors

    with _lock:
        if _undo:
            return
        _undo.append(patch(pymysql.cursors.Cursor, "execute", _tracing.wrap_execute))
        _undo.append(patch(pymysql.cursors.Cursor, "executemany", _tracing.wrap_executemany))


def teardown() -> None:
    with _lock:
        while _undo:
            _undo.pop()()
