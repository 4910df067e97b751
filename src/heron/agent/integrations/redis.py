"""redis-py: a client span per command and per pipeline, sync and async (and cluster).

The contrib ``RedisInstrumentor`` patches the client classes, so clients created before
``heron.init()`` are covered. It records commands as ``db.query.text`` = ``SET ? ?``:
the command's name, with every key and value replaced by ``?`` (``record_sql`` does not
change that: Redis arguments are never recorded). Heron adds ``db.operation.name`` (the
command) and ``db.namespace`` (the database index), which the contrib instrumentation
omits. Spans are named by the command (``GET``); a pipeline's span by its commands
(``SET GET``).
"""

from __future__ import annotations

from typing import Any

from heron.agent.guard import capture_internal_exceptions

NAME = "redis"
DISTRIBUTION = "redis"
MIN_VERSION = (3, 0)
TRIGGER = "redis"


def _namespace(instance: Any) -> str | None:
    kwargs = getattr(getattr(instance, "connection_pool", None), "connection_kwargs", None)
    if not isinstance(kwargs, dict):
        return None
    return str(kwargs.get("db") or 0)


def _request_hook(span: Any, instance: Any, args: Any, kwargs: Any) -> None:
    with capture_internal_exceptions:
        if not span.is_recording():
            return
        if args:
            command = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            span.set_attribute("db.operation.name", command.upper())
        namespace = _namespace(instance)
        if namespace is not None:
            span.set_attribute("db.namespace", namespace)


def _response_hook(span: Any, instance: Any, response: Any) -> None:
    with capture_internal_exceptions:
        if span.is_recording() and hasattr(instance, "command_stack"):  # a pipeline
            namespace = _namespace(instance)
            if namespace is not None:
                span.set_attribute("db.namespace", namespace)


def setup() -> None:
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(request_hook=_request_hook, response_hook=_response_hook)


def teardown() -> None:
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    if RedisInstrumentor().is_instrumented_by_opentelemetry:
        RedisInstrumentor().uninstrument()
