"""Custom metrics: ``heron.counter``, ``histogram``, ``gauge``, ``up_down_counter``, ``record_metric``.

These are thin, cached front-ends to the OpenTelemetry Metrics API (meter ``heron``):
each returns the OTel instrument itself, so ``.add()``/``.record()``/``.set()`` and the
full OTel API keep working. Before ``heron.init()`` (or with metrics off) the API's proxy
instruments are returned: they do nothing until a meter provider is installed, then
forward to it.

**Default attributes.** The service, its version (``release``), environment, host,
``process.pid`` and ``service.instance.id`` are *resource* attributes: every data point
carries them (in OTLP once per export; as labels in the Prometheus exposition), so they
are not repeated on each measurement.

**Cardinality.** Each instrument keeps at most ``metric_cardinality_limit`` attribute sets
(default 2000); the rest are aggregated into one series with ``otel.metric.overflow=true``
and the instrument is counted in ``heron.stats().metrics_overflowed``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import Counter, Histogram, UpDownCounter
from opentelemetry.util.types import AttributeValue

from heron._version import __version__
from heron.agent.guard import capture_internal_exceptions

logger = logging.getLogger("heron.agent")

KINDS = ("histogram", "counter", "gauge", "up_down_counter")

_lock = threading.Lock()
_instruments: dict[tuple[str, str], Any] = {}
_recorders: dict[tuple[str, str], Any] = {}
_warned: set[str] = set()


def _meter() -> otel_metrics.Meter:
    return otel_metrics.get_meter("heron", __version__)


def _instrument(kind: str, name: str, unit: str, description: str) -> Any:
    key = (kind, name)
    found = _instruments.get(key)
    if found is not None:
        return found
    with _lock:
        found = _instruments.get(key)
        if found is not None:
            return found
        meter = _meter()
        if kind == "counter":
            made: Any = meter.create_counter(name, unit=unit, description=description)
        elif kind == "histogram":
            made = meter.create_histogram(name, unit=unit, description=description)
        elif kind == "up_down_counter":
            made = meter.create_up_down_counter(name, unit=unit, description=description)
        elif hasattr(meter, "create_gauge"):
            made = meter.create_gauge(name, unit=unit, description=description)
        else:  # pragma: no cover - OTel API < 1.23 has no synchronous gauge
            made = meter.create_up_down_counter(name, unit=unit, description=description)
        _instruments[key] = made
        return made


def counter(name: str, unit: str = "", description: str = "") -> Counter:
    """A monotonic counter (``.add(n, attributes)``), created once per name."""
    return _instrument("counter", name, unit, description)


def histogram(name: str, unit: str = "", description: str = "") -> Histogram:
    """A histogram (``.record(value, attributes)``): count, sum, min, max and buckets."""
    return _instrument("histogram", name, unit, description)


def gauge(name: str, unit: str = "", description: str = "") -> Any:
    """A synchronous gauge (``.set(value, attributes)``): the last value of each interval."""
    return _instrument("gauge", name, unit, description)


def up_down_counter(name: str, unit: str = "", description: str = "") -> UpDownCounter:
    """A counter that may go down (``.add(-1)``), e.g. items in a queue."""
    return _instrument("up_down_counter", name, unit, description)


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def _recorder(kind: str, name: str, unit: str) -> Any:
    """The bound ``record``/``add``/``set`` of ``name``'s instrument (None: bad ``kind``)."""
    if kind not in KINDS:
        _warn_once(
            f"kind:{kind}",
            "heron.record_metric(%r): kind %r is not one of %s; ignored",
            name,
            kind,
            KINDS,
        )
        return None
    instrument = _instrument(kind, name, unit, "")
    if kind == "histogram":
        method = instrument.record
    elif kind == "gauge" and hasattr(instrument, "set"):
        method = instrument.set
    else:
        method = instrument.add
    _recorders[(kind, name)] = method
    return method


def record_metric(
    name: str,
    value: float,
    kind: str = "histogram",
    *,
    unit: str = "",
    attributes: Mapping[str, AttributeValue] | None = None,
    **attrs: AttributeValue,
) -> None:
    """Record ``value`` for metric ``name`` in one line; never raises.

    ``kind`` is ``"histogram"`` (default: count, sum, min, max and the distribution, so
    ``record_metric("payment.amount", 42.5)`` gives totals, averages and percentiles),
    ``"counter"`` (adds ``value``, which must be >= 0), ``"gauge"`` (the last value wins)
    or ``"up_down_counter"``. Attributes are keyword arguments
    (``record_metric("orders", 1, "counter", country="FR")``) and/or an ``attributes``
    mapping for names that are not identifiers (``{"payment.method": "card"}``).
    ``unit`` applies when the instrument is created (the first call for ``name``).
    """
    with capture_internal_exceptions:
        # NaN is the one value unequal to itself; bool is an int but not a measurement.
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
            _warn_once(
                f"value:{name}", "heron.record_metric(%r): %r is not a number; ignored", name, value
            )
            return
        record = _recorders.get((kind, name)) or _recorder(kind, name, unit)
        if record is not None:
            record(value, {**attributes, **attrs} if attributes and attrs else attributes or attrs)


def metrics_app() -> Any:
    """A WSGI and ASGI app serving heron's metrics in the Prometheus text format.

    Needs ``heron.init(prometheus=True)`` (or ``HERON_PROMETHEUS=true``) and answers 503
    until then. Mount it at ``/metrics``: ``app.mount("/metrics", heron.metrics_app())``
    (Starlette/FastAPI), ``DispatcherMiddleware(app, {"/metrics": heron.metrics_app()})``
    (Flask), or serve it on its own. See docs/agent.md for several worker processes.
    """
    from heron.agent.prometheus import MetricsApp

    return MetricsApp()


def _reset_for_tests() -> None:
    with _lock:
        _instruments.clear()
        _recorders.clear()
        _warned.clear()
