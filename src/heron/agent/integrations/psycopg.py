"""psycopg (3): a client span per statement, sync and async, and EXPLAIN of slow SELECTs.

Heron patches ``execute``/``executemany`` on psycopg's cursor classes (``Cursor``,
``AsyncCursor`` and the server-side cursors; ``ClientCursor`` and ``RawCursor`` inherit
them), so ``Connection.execute`` and connections opened before ``heron.init()`` are
traced too. ``Cursor.stream`` and ``COPY`` are not. ``sql.SQL``/``Composed`` queries are
recorded as the text psycopg sends.

A slow SELECT is explained on a new connection built from the original one's connection
parameters (password included), with client-side parameter binding.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from heron.agent.integrations._db import Target, Tracing, patch, text_of_str

NAME = "psycopg"
DISTRIBUTION = "psycopg"
MIN_VERSION = (3, 1)
TRIGGER = "psycopg"

EXPLAIN_CONNECT_TIMEOUT_S = 5

_lock = threading.Lock()
_undo: list[Callable[[], None]] = []


def _text_of(query: Any, cursor: Any) -> str | None:
    text = text_of_str(query)
    if text is not None:
        return text
    as_string = getattr(query, "as_string", None)  # psycopg.sql.Composable
    return str(as_string(cursor.connection)) if callable(as_string) else None


def _explain_connect(conn: Any) -> Callable[[], Any]:
    import psycopg
    from psycopg.conninfo import make_conninfo

    info = conn.info
    extra: dict[str, Any] = {"connect_timeout": EXPLAIN_CONNECT_TIMEOUT_S}
    if info.password:
        extra["password"] = info.password
    return functools.partial(
        psycopg.connect,
        make_conninfo(info.dsn, **extra),
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,  # binds parameters in the text: any type works
    )


def _build_target(conn: Any) -> Target:
    info = conn.info
    return Target(
        "postgresql",
        namespace=info.dbname,
        address=info.host,
        port=info.port,
        connect=_explain_connect(conn),
    )


_tracing = Tracing(NAME, build_target=_build_target, text_of=_text_of)


def _params(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    return args[0] if args else kwargs.get(name)


def _execute(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        params = _params(args, kwargs, "params")
        return _tracing.call(self, query, params, original, (self, query, *args), kwargs)

    return execute


def _executemany(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def executemany(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        params = _params(args, kwargs, "params_seq")
        call_args = (self, query, *args)
        return _tracing.call(self, query, params, original, call_args, kwargs, many=True)

    return executemany


def _aexecute(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        params = _params(args, kwargs, "params")
        return await _tracing.acall(self, query, params, original, (self, query, *args), kwargs)

    return execute


def _aexecutemany(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def executemany(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        params = _params(args, kwargs, "params_seq")
        call_args = (self, query, *args)
        return await _tracing.acall(self, query, params, original, call_args, kwargs, many=True)

    return executemany


def setup() -> None:
    import psycopg

    with _lock:
        if _undo:
            return
        _undo.extend(
            [
                patch(psycopg.Cursor, "execute", _execute),
                patch(psycopg.Cursor, "executemany", _executemany),
                patch(psycopg.ServerCursor, "execute", _execute),
                patch(psycopg.AsyncCursor, "execute", _aexecute),
                patch(psycopg.AsyncCursor, "executemany", _aexecutemany),
                patch(psycopg.AsyncServerCursor, "execute", _aexecute),
            ]
        )


def teardown() -> None:
    with _lock:
        while _undo:
            _undo.pop()()
