"""Custom spans: ``with heron.span(...)`` and ``@heron.traced``.

Both use the OpenTelemetry API only (a ``ProxyTracer`` that follows whichever provider
is installed, before or after ``heron.init()``). An exception from the app's own code is
recorded on the span (status ERROR) and re-raised unchanged; an error inside heron is
swallowed by the guard and the app's code runs as if heron were absent.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from opentelemetry import context, trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from heron.agent.guard import capture_internal_exceptions

P = ParamSpec("P")
R = TypeVar("R")

_tracer = trace.get_tracer("heron")


class span:
    """Context manager for a custom span, current for the duration of the block.

    ``name`` is the span name. Attributes are given as keyword arguments
    (``heron.span("price-cart", cart_size=3)``) and/or as an ``attributes`` mapping, for
    names that are not Python identifiers (``{"cart.size": 3}``). ``kind`` is an
    OpenTelemetry ``SpanKind`` (default INTERNAL). ``with`` gives the span, to add
    attributes or events. An exception leaving the block is recorded and re-raised.
    One instance is one span: create a new one for each ``with``.
    """

    __slots__ = ("_name", "_attributes", "_kind", "_span", "_token")

    def __init__(
        self,
        name: str,
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        **extra: AttributeValue,
    ) -> None:
        self._name = name
        self._attributes = {**attributes, **extra} if attributes and extra else attributes or extra
        self._kind = kind
        self._span: Span = INVALID_SPAN
        self._token: object | None = None

    def __enter__(self) -> Span:
        with capture_internal_exceptions:
            self._span = _tracer.start_span(
                self._name, kind=self._kind, attributes=self._attributes
            )
            self._token = context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with capture_internal_exceptions:
            current = self._span
            if isinstance(exc, Exception) and current.is_recording():
                current.record_exception(exc)
                current.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            current.end()
        with capture_internal_exceptions:
            if self._token is not None:
                context.detach(self._token)  # type: ignore[arg-type]
        # Returning None: the app's exception, if any, always propagates.


@overload
def traced(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced(
    *,
    name: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: each call of the function (sync or ``async``) runs in a span.

    Use bare (``@heron.traced``) or with options (``@heron.traced(name=..., attributes=...)``).
    The span is named ``name`` or the function's qualified name and carries
    ``code.function.name``; an exception is recorded and re-raised. For a generator
    function the span covers only the call that creates the generator.
    """
    if func is None:
        return lambda f: _decorate(f, name, attributes, kind)
    return _decorate(func, name, attributes, kind)


def _decorate(
    func: Callable[P, R],
    name: str | None,
    attributes: Mapping[str, AttributeValue] | None,
    kind: SpanKind,
) -> Callable[P, R]:
    qualname = f"{func.__module__}.{func.__qualname__}"
    span_name = name or func.__qualname__
    attrs: dict[str, AttributeValue] = {"code.function.name": qualname, **(attributes or {})}

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with span(span_name, attributes=attrs, kind=kind):
                return await func(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with span(span_name, attributes=attrs, kind=kind):
            return func(*args, **kwargs)

    return wrapper
