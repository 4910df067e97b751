"""Agent configuration: keyword options first, then ``HERON_*``, then ``OTEL_*``, then defaults.

Resolving configuration never raises. A bad value (a typo in an environment variable, a
negative queue size, an endpoint without a scheme) becomes a warning in
:attr:`AgentConfig.problems` and is replaced by its default, because a configuration
mistake must cost the app its telemetry at worst, never its uptime.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "http://localhost:4318"
TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
METRICS_PATH = "/v1/metrics"
KEY_HEADER = "x-heron-key"
DEFAULT_SHUTDOWN_TIMEOUT = 2.0
# Batching (OTEL_BSP_*). The SDK's defaults (2,048 / 512 / 5 s) lose spans in a burst:
# a loop ending spans as fast as Python can outruns one export thread by about 2:1, so
# the queue holds a whole burst of 100,000 (about 1 KB each while they wait, see
# processor.slim) and larger batches halve the cost of each exported span. A quiet
# app's spans leave within a second.
DEFAULT_MAX_QUEUE_SIZE = 100_000
DEFAULT_MAX_EXPORT_BATCH_SIZE = 4096
DEFAULT_SCHEDULE_DELAY_MS = 1000
EXPORTERS = ("otlp", "console", "none")
RECORD_SQL_MODES = ("obfuscated", "raw", "off")
DEFAULT_EXPLAIN_THRESHOLD_MS = 500.0
DEFAULT_MAX_BREADCRUMBS = 100
DEFAULT_IGNORE_STATUS_CODES = frozenset({401, 404})
DEFAULT_METRIC_EXPORT_INTERVAL_MS = 10_000.0
DEFAULT_METRIC_CARDINALITY_LIMIT = 2000
DEFAULT_SLOW_REQUEST_MS = 1000.0
DEFAULT_PROMETHEUS_PORT = 9464
LOG_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}

#: ``before_send(event, hint) -> event | None``; ``hint`` holds ``exc_info`` / ``log_record``.
BeforeSend = Callable[[dict[str, Any], dict[str, Any]], "dict[str, Any] | None"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class AgentConfig:
    """Everything ``heron.init()`` decided, with the reasons it overrode what was asked."""

    service: str | None = None
    traces_endpoint: str = DEFAULT_ENDPOINT + TRACES_PATH
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # holds the key
    environment: str | None = None
    release: str | None = None
    enabled: bool = True
    exporter: str = "otlp"
    integrations: tuple[str, ...] | None = None  # None: every supported library installed
    disabled_integrations: frozenset[str] = frozenset()
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE
    max_export_batch_size: int = DEFAULT_MAX_EXPORT_BATCH_SIZE
    schedule_delay_ms: int = DEFAULT_SCHEDULE_DELAY_MS
    record_sql: str = "obfuscated"  # db.query.text: literals out, verbatim, or none
    explain_threshold_ms: float = DEFAULT_EXPLAIN_THRESHOLD_MS  # 0: no EXPLAIN plans
    # Error tracking and logs (both sent as OTLP log records to logs_endpoint).
    logs_endpoint: str = DEFAULT_ENDPOINT + LOGS_PATH
    logs: bool = True  # False: log records are not sent (error events still are)
    log_level: int = logging.INFO
    include_locals: bool = True
    scrub_keys: tuple[str, ...] = ()
    before_send: BeforeSend | None = None
    ignore_exceptions: tuple[type[BaseException] | str, ...] = ()
    ignore_status_codes: frozenset[int] = DEFAULT_IGNORE_STATUS_CODES
    max_breadcrumbs: int = DEFAULT_MAX_BREADCRUMBS
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    # Metrics (OTLP to metrics_endpoint; see heron.agent.metrics).
    metrics: bool = True  # False: no MeterProvider, no runtime metrics
    metrics_endpoint: str = DEFAULT_ENDPOINT + METRICS_PATH
    metrics_exporter: str = "otlp"  # OTEL_METRICS_EXPORTER: "otlp" or "none"
    metric_export_interval_ms: float = DEFAULT_METRIC_EXPORT_INTERVAL_MS
    runtime_metrics: bool = True  # process, CPython GC, asyncio event-loop lag
    host_metrics: bool = True  # system CPU, load, memory, filesystems, network
    metric_cardinality_limit: int = DEFAULT_METRIC_CARDINALITY_LIMIT
    prometheus_port: int | None = None  # serve /metrics on this port (0.0.0.0)
    prometheus: bool = False  # keep a Prometheus view for heron.metrics_app()
    prometheus_dir: str | None = None  # several workers: share snapshots here
    slow_request_ms: float = DEFAULT_SLOW_REQUEST_MS  # 0: off
    server_timing: bool = True  # Server-Timing: traceparent on instrumented responses (RUM)
    problems: tuple[str, ...] = ()


class _Resolver:
    """Reads one option at a time from kwargs and the environment, noting problems."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def text(self, value: object, option: str, *names: str) -> str | None:
        """``value`` if given, else the first non-empty variable of ``names``."""
        if value is not None:
            if isinstance(value, str):
                return value.strip() or None
            self.problems.append(f"{option}={value!r} is not a string; using str() of it")
            return str(value)
        for name in names:
            raw = self.environ.get(name, "").strip()
            if raw:
                return raw
        return None

    def boolean(self, value: bool | None, name: str, default: bool) -> bool:
        if value is not None:
            return bool(value)
        raw = self.environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in _TRUE or raw in _FALSE:
            return raw in _TRUE
        self.problems.append(f"{name}={raw!r} is not a boolean; using {default}")
        return default

    def number(
        self, value: float | None, option: str, name: str, default: float, *, minimum: float
    ) -> float:
        raw: object = value if value is not None else self.environ.get(name, "").strip()
        if raw in ("", None):
            return default
        try:
            number = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = float("nan")
        if not number >= minimum:  # also rejects NaN
            source = option if value is not None else name
            self.problems.append(f"{source}={raw!r} must be a number >= {minimum}; using {default}")
            return default
        return number


def _signal_url(endpoint: str, problems: list[str], path: str = TRACES_PATH) -> str:
    """``endpoint`` is a base URL (``http://host:4318``); add the OTLP path of a signal."""
    url = endpoint.strip()
    if "://" not in url:
        problems.append(f"endpoint {endpoint!r} has no scheme; assuming http://")
        url = "http://" + url
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        problems.append(f"endpoint {endpoint!r} is not an http(s) URL; spans will be dropped")
    for known in (TRACES_PATH, LOGS_PATH, METRICS_PATH):
        if url.rstrip("/").endswith(known):
            url = url.rstrip("/")[: -len(known)]
    return url.rstrip("/") + path


def _endpoint(r: _Resolver, endpoint: str | None) -> tuple[str, str, str]:
    """The traces, logs and metrics URLs: one base URL, or the per-signal OTel variables."""
    base = r.text(endpoint, "endpoint", "HERON_ENDPOINT")
    if base is not None:
        return (
            _signal_url(base, r.problems),
            _signal_url(base, [], LOGS_PATH),
            _signal_url(base, [], METRICS_PATH),
        )
    fallback = r.text(None, "", "OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
    # The OTel spec: a per-signal endpoint is used exactly as given.
    traces = r.text(None, "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    logs = r.text(None, "", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
    metrics = r.text(None, "", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    return (
        traces or _signal_url(fallback, r.problems),
        logs or _signal_url(fallback, [] if traces is None else r.problems, LOGS_PATH),
        metrics or _signal_url(fallback, [], METRICS_PATH),
    )


def _prometheus(r: _Resolver, value: bool | int | None) -> tuple[bool, int | None]:
    """``prometheus``: False, True (mount ``heron.metrics_app()``) or a port to serve on."""
    raw: object = value if value is not None else r.text(None, "", "HERON_PROMETHEUS")
    if raw is None or raw is False:
        return False, None
    if raw is True:
        return True, None
    text = str(raw).strip().lower()
    if text in _FALSE:
        return False, None
    if text in _TRUE:
        return True, None
    if text.isdigit() and 0 < int(text) < 65536:
        return True, int(text)
    source = "prometheus" if value is not None else "HERON_PROMETHEUS"
    r.problems.append(f"{source}={raw!r} is not a boolean or a port; Prometheus is off")
    return False, None


def _headers(r: _Resolver, key: str | None) -> dict[str, str]:
    from opentelemetry.util.re import parse_env_headers

    raw = r.text(None, "", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    headers = dict(parse_env_headers(raw, liberal=True)) if raw else {}
    key = r.text(key, "key", "HERON_KEY")
    if key is not None:
        if not key.isprintable() or " " in key:
            r.problems.append("the ingest key contains spaces or control characters")
        headers[KEY_HEADER] = key
    return headers


def _names(value: Iterable[str] | str | None) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(n.strip().lower() for n in items if n and n.strip())


def _record_sql(r: _Resolver, value: str | None) -> str:
    raw = r.text(value, "record_sql", "HERON_RECORD_SQL")
    if raw is None:
        return "obfuscated"
    if raw.lower() not in RECORD_SQL_MODES:
        source = "record_sql" if value is not None else "HERON_RECORD_SQL"
        r.problems.append(f"{source}={raw!r} is not one of {RECORD_SQL_MODES}; using obfuscated")
        return "obfuscated"
    return raw.lower()


def _log_level(r: _Resolver, value: int | str | None) -> int:
    raw: object = value if value is not None else r.text(None, "", "HERON_LOG_LEVEL")
    if raw is None:
        return logging.INFO
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    text = str(raw).strip().upper()
    if text.isdigit():
        return int(text)
    if text in LOG_LEVELS:
        return LOG_LEVELS[text]
    source = "log_level" if value is not None else "HERON_LOG_LEVEL"
    r.problems.append(f"{source}={raw!r} is not a logging level; using INFO")
    return logging.INFO


def _listed(r: _Resolver, value: object, option: str, name: str) -> tuple[str, ...]:
    """A list option: an iterable of strings, or a comma-separated string (or variable)."""
    if value is None:
        value = r.text(None, "", name) or ""
    if isinstance(value, str):
        value = value.split(",")
    try:
        items = [str(v).strip() for v in value]  # type: ignore[attr-defined]
    except TypeError:
        r.problems.append(f"{option}={value!r} is not a list; ignoring it")
        return ()
    return tuple(i for i in items if i)


def _exception_types(r: _Resolver, value: object) -> tuple[type[BaseException] | str, ...]:
    """Exception classes, or dotted names (``"myapp.errors.Ignored"``) resolved lazily."""
    if value is None or isinstance(value, str):
        return _listed(r, value, "ignore_exceptions", "HERON_IGNORE_EXCEPTIONS")
    if isinstance(value, type):
        value = (value,)
    out: list[type[BaseException] | str] = []
    for item in value if isinstance(value, Iterable) else ():
        if isinstance(item, type) and issubclass(item, BaseException) or isinstance(item, str):
            out.append(item)
        else:
            r.problems.append(f"ignore_exceptions: {item!r} is not an exception class or name")
    return tuple(out)


def _status_codes(r: _Resolver, value: Iterable[int] | None) -> frozenset[int]:
    names = _listed(r, value, "ignore_status_codes", "HERON_IGNORE_STATUS_CODES")
    if value is None and not names:
        return DEFAULT_IGNORE_STATUS_CODES
    codes = set()
    for name in names:
        if name.isdigit() and 100 <= int(name) <= 599:
            codes.add(int(name))
        else:
            r.problems.append(f"ignore_status_codes: {name!r} is not an HTTP status code")
    return frozenset(codes)


def _before_send(r: _Resolver, value: object) -> BeforeSend | None:
    if value is None or callable(value):
        return value
    r.problems.append(f"before_send={value!r} is not callable; ignoring it")
    return None


def _exporter(r: _Resolver) -> str:
    raw = (r.text(None, "", "OTEL_TRACES_EXPORTER") or "otlp").lower()
    if raw not in EXPORTERS:
        r.problems.append(f"OTEL_TRACES_EXPORTER={raw!r} is not one of {EXPORTERS}; using otlp")
        return "otlp"
    protocol = r.text(None, "", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if raw == "otlp" and protocol not in (None, "http/protobuf"):
        r.problems.append(f"OTLP protocol {protocol!r} is not supported; using http/protobuf")
    return raw


def _metrics_exporter(r: _Resolver) -> str:
    raw = (r.text(None, "", "OTEL_METRICS_EXPORTER") or "otlp").lower()
    if raw not in ("otlp", "none"):
        r.problems.append(f"OTEL_METRICS_EXPORTER={raw!r} is not otlp or none; using otlp")
        return "otlp"
    return raw


def _batching(r: _Resolver) -> tuple[int, int, int]:
    queue = int(r.number(None, "", "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE, minimum=1))
    batch = int(
        r.number(
            None, "", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_EXPORT_BATCH_SIZE, minimum=1
        )
    )
    delay = int(r.number(None, "", "OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS, minimum=1))
    if batch > queue:
        if r.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "").strip():  # not a default's fault
            r.problems.append(
                f"export batch size {batch} exceeds the queue size {queue}; using {queue}"
            )
        batch = queue
    return queue, batch, delay


def resolve_config(
    *,
    service: str | None = None,
    endpoint: str | None = None,
    key: str | None = None,
    environment: str | None = None,
    release: str | None = None,
    enabled: bool | None = None,
    instrument: Iterable[str] | None = None,
    shutdown_timeout: float | None = None,
    record_sql: str | None = None,
    explain_threshold_ms: float | None = None,
    logs: bool | None = None,
    log_level: int | str | None = None,
    include_locals: bool | None = None,
    scrub_keys: Iterable[str] | None = None,
    before_send: BeforeSend | None = None,
    ignore_exceptions: Iterable[type[BaseException] | str] | None = None,
    ignore_status_codes: Iterable[int] | None = None,
    max_breadcrumbs: int | None = None,
    in_app_include: Iterable[str] | None = None,
    in_app_exclude: Iterable[str] | None = None,
    metrics: bool | None = None,
    runtime_metrics: bool | None = None,
    host_metrics: bool | None = None,
    metric_cardinality_limit: int | None = None,
    prometheus: bool | int | None = None,
    slow_request_ms: float | None = None,
    server_timing: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> AgentConfig:
    """The configuration ``heron.init()`` runs with; see its docstring for each option."""
    r = _Resolver(os.environ if environ is None else environ)
    sdk_disabled = r.boolean(None, "OTEL_SDK_DISABLED", False)
    queue, batch, delay = _batching(r)
    wanted = instrument if instrument is not None else r.text(None, "", "HERON_INSTRUMENT")
    traces_endpoint, logs_endpoint, metrics_endpoint = _endpoint(r, endpoint)
    prometheus_on, prometheus_port = _prometheus(r, prometheus)
    return AgentConfig(
        service=r.text(service, "service", "HERON_SERVICE", "OTEL_SERVICE_NAME"),
        traces_endpoint=traces_endpoint,
        logs_endpoint=logs_endpoint,
        headers=_headers(r, key),
        environment=r.text(environment, "environment", "HERON_ENVIRONMENT"),
        release=r.text(release, "release", "HERON_RELEASE"),
        enabled=r.boolean(enabled, "HERON_ENABLED", True) and not sdk_disabled,
        exporter=_exporter(r),
        integrations=None if wanted is None else _names(wanted),
        disabled_integrations=frozenset(
            _names(r.text(None, "", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"))
        ),
        shutdown_timeout=r.number(
            shutdown_timeout,
            "shutdown_timeout",
            "HERON_SHUTDOWN_TIMEOUT",
            DEFAULT_SHUTDOWN_TIMEOUT,
            minimum=0,
        ),
        max_queue_size=queue,
        max_export_batch_size=batch,
        schedule_delay_ms=delay,
        record_sql=_record_sql(r, record_sql),
        explain_threshold_ms=r.number(
            explain_threshold_ms,
            "explain_threshold_ms",
            "HERON_EXPLAIN_THRESHOLD_MS",
            DEFAULT_EXPLAIN_THRESHOLD_MS,
            minimum=0,
        ),
        logs=r.boolean(logs, "HERON_LOGS", True),
        log_level=_log_level(r, log_level),
        include_locals=r.boolean(include_locals, "HERON_INCLUDE_LOCALS", True),
        scrub_keys=_listed(r, scrub_keys, "scrub_keys", "HERON_SCRUB_KEYS"),
        before_send=_before_send(r, before_send),
        ignore_exceptions=_exception_types(r, ignore_exceptions),
        ignore_status_codes=_status_codes(r, ignore_status_codes),
        max_breadcrumbs=int(
            r.number(
                max_breadcrumbs,
                "max_breadcrumbs",
                "HERON_MAX_BREADCRUMBS",
                DEFAULT_MAX_BREADCRUMBS,
                minimum=0,
            )
        ),
        in_app_include=_listed(r, in_app_include, "in_app_include", "HERON_IN_APP_INCLUDE"),
        in_app_exclude=_listed(r, in_app_exclude, "in_app_exclude", "HERON_IN_APP_EXCLUDE"),
        metrics=r.boolean(metrics, "HERON_METRICS", True),
        metrics_endpoint=metrics_endpoint,
        metrics_exporter=_metrics_exporter(r),
        metric_export_interval_ms=r.number(
            None,
            "",
            "OTEL_METRIC_EXPORT_INTERVAL",
            DEFAULT_METRIC_EXPORT_INTERVAL_MS,
            minimum=1,
        ),
        runtime_metrics=r.boolean(runtime_metrics, "HERON_RUNTIME_METRICS", True),
        host_metrics=r.boolean(host_metrics, "HERON_HOST_METRICS", True),
        metric_cardinality_limit=int(
            r.number(
                metric_cardinality_limit,
                "metric_cardinality_limit",
                "HERON_METRIC_CARDINALITY_LIMIT",
                DEFAULT_METRIC_CARDINALITY_LIMIT,
                minimum=1,
            )
        ),
        prometheus=prometheus_on,
        prometheus_port=prometheus_port,
        prometheus_dir=r.text(None, "", "HERON_PROMETHEUS_DIR"),
        slow_request_ms=r.number(
            slow_request_ms,
            "slow_request_ms",
            "HERON_SLOW_REQUEST_MS",
            DEFAULT_SLOW_REQUEST_MS,
            minimum=0,
        ),
        server_timing=r.boolean(server_timing, "HERON_SERVER_TIMING", True),
        problems=tuple(r.problems),
    )
