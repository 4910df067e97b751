"""mysqlclient (``MySQLdb``): a client span per statement, and EXPLAIN of slow SELECTs.

Heron patches ``execute``/``executemany`` on ``MySQLdb.cursors.BaseCursor``, which every
cursor class inherits, so connections opened before ``heron.init()`` are traced too.
``executemany`` is one span, with ``db.operation.batch.size``. ``db.system.name`` is
``mariadb`` when the server says so, else ``mysql``.

The C connection does not tell how it was opened, so heron records the arguments of
connections opened after ``heron.init()``; only those have ``db.namespace`` and
``server.port``, and only their slow SELECTs are explained (on a new connection opened
with the same arguments).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from heron.agent.integrations._db import Target, Tracing, mysql_system, patch

NAME = "mysqlclient"
DISTRIBUTION = "mysqlclient"
MIN_VERSION = (2, 0)
TRIGGER = "MySQLdb"

EXPLAIN_CONNECT_TIMEOUT_S = 5
# MySQLdb.connect's positional parameters, in order.
_POSITIONAL = ("host", "user", "passwd", "db", "port", "unix_socket")

_lock = threading.Lock()
_undo: list[Callable[[], None]] = []


def _connect_kwargs(conn: Any) -> dict[str, Any] | None:
    recorded = getattr(conn, "_heron_connect", None)
    if recorded is None:
        return None
    args, kwargs = recorded
    merged = dict(zip(_POSITIONAL, args, strict=False))
    merged.update(kwargs)
    return merged


def _build_target(conn: Any) -> Target:
    import MySQLdb
    import MySQLdb.cursors

    system = mysql_system(conn.get_server_info())
    kwargs = _connect_kwargs(conn)
    if kwargs is None:  # opened before heron.init(): "127.0.0.1 via TCP/IP"
        return Target(system, address=str(conn.get_host_info()).split(" ", 1)[0])
    socket = kwargs.get("unix_socket")
    explain_kwargs = {
        **kwargs,
        "cursorclass": MySQLdb.cursors.Cursor,  # rows as tuples, whatever the app uses
        "connect_timeout": EXPLAIN_CONNECT_TIMEOUT_S,
    }
    return Target(
        system,
        namespace=kwargs.get("database") or kwargs.get("db"),
        address=socket or kwargs.get("host") or "localhost",
        port=None if socket else int(kwargs.get("port") or 3306),
        connect=functools.partial(MySQLdb.connect, **explain_kwargs),
    )


_tracing = Tracing(NAME, build_target=_build_target)


def _init(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._heron_connect = (args, kwargs)

    return __init__


def setup() -> None:
    import MySQLdb.connections
    import MySQLdb.cursors

    with _lock:
        if _undo:
            return
        _undo.append(patch(MySQLdb.connections.Connection, "__init__", _init))
        _undo.append(patch(MySQLdb.cursors.BaseCursor, "execute", _tracing.wrap_execute))
        _undo.append(patch(MySQLdb.cursors.BaseCursor, "executemany", _tracing.wrap_executemany))


def teardown() -> None:
    with _lock:
        while _undo:
            _undo.pop()()
