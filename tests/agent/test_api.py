"""``heron.span`` and ``@heron.traced``: attributes, nesting, exceptions recorded and re-raised."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import heron


class Declined(Exception):
    pass


def test_span_with_attributes_and_nesting(spans: InMemorySpanExporter) -> None:
    with heron.span("checkout", attributes={"cart.items": 3}, user="ada") as outer:
        assert trace.get_current_span() is outer
        with heron.span("price", kind=SpanKind.CLIENT) as inner:
            inner.set_attribute("currency", "EUR")
    assert trace.get_current_span() is trace.INVALID_SPAN

    price, checkout = spans.get_finished_spans()
    assert checkout.name == "checkout" and dict(checkout.attributes or {}) == {
        "cart.items": 3,
        "user": "ada",
    }
    assert price.parent is not None and price.parent.span_id == checkout.context.span_id
    assert price.kind is SpanKind.CLIENT and dict(price.attributes or {}) == {"currency": "EUR"}
    assert checkout.status.status_code is StatusCode.UNSET


def test_exception_types_of_the_main_script_and_builtins_are_bare() -> None:
    from heron.agent.errors._event import exception_attributes

    declined = type("PaymentDeclined", (RuntimeError,), {"__module__": "__main__"})
    assert exception_attributes(declined("no"), None) == {"exception.type": "PaymentDeclined"}
    assert exception_attributes(KeyError("k"), None) == {"exception.type": "KeyError"}
    assert exception_attributes(Declined("x"), None)["exception.type"] == (
        f"{Declined.__module__}.Declined"
    )


def test_span_records_the_apps_exception_and_re_raises_it(spans: InMemorySpanExporter) -> None:
    error = Declined("card declined")
    with pytest.raises(Declined) as raised, heron.span("pay"):
        raise error
    assert raised.value is error

    (pay,) = spans.get_finished_spans()
    assert pay.status.status_code is StatusCode.ERROR
    assert pay.status.description == "Declined: card declined"
    (event,) = pay.events
    assert event.name == "exception"
    assert event.attributes is not None and event.attributes["exception.type"].endswith("Declined")
    assert event.attributes["exception.message"] == "card declined"


def test_traced_function(spans: InMemorySpanExporter) -> None:
    @heron.traced
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add.__name__ == "add"
    (span,) = spans.get_finished_spans()
    assert span.name == "test_traced_function.<locals>.add"
    assert span.attributes is not None
    assert span.attributes["code.function.name"] == f"{__name__}.test_traced_function.<locals>.add"


def test_traced_with_options_records_and_re_raises(spans: InMemorySpanExporter) -> None:
    @heron.traced(name="charge-card", attributes={"provider": "acme"})
    def charge() -> None:
        raise Declined("insufficient funds")

    with pytest.raises(Declined, match="insufficient funds"):
        charge()
    (span,) = spans.get_finished_spans()
    assert span.name == "charge-card"
    assert span.attributes is not None and span.attributes["provider"] == "acme"
    assert span.status.status_code is StatusCode.ERROR


def test_traced_coroutine(spans: InMemorySpanExporter) -> None:
    @heron.traced
    async def fetch(n: int) -> int:
        with heron.span("inside"):
            await asyncio.sleep(0)
        return n * 2

    assert asyncio.run(fetch(21)) == 42
    inside, outer = spans.get_finished_spans()
    assert outer.name.endswith("fetch")
    assert inside.parent is not None and inside.parent.span_id == outer.context.span_id


def test_bad_attribute_values_do_not_raise(spans: InMemorySpanExporter) -> None:
    with heron.span("odd", attributes={"ok": 1, "bad": object()}):  # type: ignore[dict-item]
        pass
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None and span.attributes["ok"] == 1  # "bad": the SDK's call


def test_interrupts_end_the_span_without_an_error_status(spans: InMemorySpanExporter) -> None:
    with pytest.raises(KeyboardInterrupt), heron.span("interrupted"):
        raise KeyboardInterrupt
    (span,) = spans.get_finished_spans()
    assert span.end_time is not None and span.status.status_code is StatusCode.UNSET
