"""Agent configuration: keyword options first, then ``HERON_*``, then ``OTEL_*``, then defaults.

Resolving configuration never raises. A bad value (a typo in an environment variable, a
negative queue size, an endpoint without a scheme) becomes a warning in
:attr:`AgentConfig.problems` and is replaced by its default, because a configuration
mistake must cost the app its telemetry at worst, never its uptime.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "http://localhost:4318"
TRACES_PATH = "/v1/traces"
KEY_HEADER = "x-heron-key"
DEFAULT_SHUTDOWN_TIMEOUT = 2.0
# The OpenTelemetry SDK's BatchSpanProcessor defaults (OTEL_BSP_*).
DEFAULT_MAX_QUEUE_SIZE = 2048
DEFAULT_MAX_EXPORT_BATCH_SIZE = 512
DEFAULT_SCHEDULE_DELAY_MS = 5000
EXPORTERS = ("otlp", "console", "none")
RECORD_SQL_MODES = ("obfuscated", "raw", "off")
DEFAULT_EXPLAIN_THRESHOLD_MS = 500.0

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


def _traces_url(endpoint: str, problems: list[str]) -> str:
    """``endpoint`` is a base URL (``http://host:4318``); add the OTLP traces path."""
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
    if url.rstrip("/").endswith(TRACES_PATH):
        return url
    return url.rstrip("/") + TRACES_PATH


def _endpoint(r: _Resolver, endpoint: str | None) -> str:
    base = r.text(endpoint, "endpoint", "HERON_ENDPOINT")
    if base is None:
        exact = r.text(None, "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if exact is not None:  # the OTel spec: used exactly as given
            return exact
        base = r.text(None, "", "OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
    return _traces_url(base, r.problems)


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


def _exporter(r: _Resolver) -> str:
    raw = (r.text(None, "", "OTEL_TRACES_EXPORTER") or "otlp").lower()
    if raw not in EXPORTERS:
        r.problems.append(f"OTEL_TRACES_EXPORTER={raw!r} is not one of {EXPORTERS}; using otlp")
        return "otlp"
    protocol = r.text(None, "", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if raw == "otlp" and protocol not in (None, "http/protobuf"):
        r.problems.append(f"OTLP protocol {protocol!r} is not supported; using http/protobuf")
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
    environ: Mapping[str, str] | None = None,
) -> AgentConfig:
    """The configuration ``heron.init()`` runs with; see its docstring for each option."""
    r = _Resolver(os.environ if environ is None else environ)
    sdk_disabled = r.boolean(None, "OTEL_SDK_DISABLED", False)
    queue, batch, delay = _batching(r)
    wanted = instrument if instrument is not None else r.text(None, "", "HERON_INSTRUMENT")
    return AgentConfig(
        service=r.text(service, "service", "HERON_SERVICE", "OTEL_SERVICE_NAME"),
        traces_endpoint=_endpoint(r, endpoint),
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
        problems=tuple(r.problems),
    )
