"""The server's one typed configuration: TOML file + ``HERON_*`` environment variables.

Precedence: defaults < TOML file < environment. Every value is validated at start; a bad
value raises :class:`ConfigError` naming the key, and ``heron serve`` exits non-zero.

Storage settings live in a ``[storage]`` table of the file (``backend``, ``cluster`` and
the ``clickhouse_*``/``state_url`` keys); passwords, also those inside a URL, are never
echoed (:func:`mask_url`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


# Never echoed in error messages (URLs are shown with their password masked).
_SECRETS = frozenset({"admin_password", "clickhouse_password"})
_URLS = frozenset({"clickhouse_url", "state_url"})

BACKENDS = ("duckdb", "clickhouse")
ROLES = ("all", "ingest", "query", "jobs")
# A ClickHouse identifier Heron splices into DDL (as store/clickhouse/schema.py checks).
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# A page's origin as browsers send it in ``Origin`` (no path, no final slash).
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)
_BROWSER_KEY = re.compile(r"^hb_[A-Za-z0-9_-]{16,128}$")
# ``[storage]`` key -> Config field; the other storage keys are named like their field.
_STORAGE_KEYS = {
    "backend": "storage_backend",
    "cluster": "clickhouse_cluster",
    "clickhouse_url": "clickhouse_url",
    "clickhouse_user": "clickhouse_user",
    "clickhouse_password": "clickhouse_password",
    "clickhouse_database": "clickhouse_database",
    "state_url": "state_url",
}


def mask_url(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***`` (for logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


@dataclass(frozen=True)
class Config:
    """Server settings. Each field maps to TOML key ``name`` and env ``HERON_<NAME>``."""

    host: str = "127.0.0.1"
    """Address to bind. Default localhost only; set 0.0.0.0 deliberately. (HERON_HOST)"""
    port: int = 4318
    """HTTP port for OTLP ingest, the API and the UI. (HERON_PORT)"""
    data_dir: str = "heron-data"
    """Directory holding the DuckDB file. (HERON_DATA_DIR)"""
    retention_days: int = 7
    """Raw spans older than this are deleted by a background job. (HERON_RETENTION_DAYS)"""
    rollup_retention_days: int = 30
    """Per-minute rollups (charts, RED tables) are kept this long. (HERON_ROLLUP_RETENTION_DAYS)"""
    apdex_t_ms: float = 500.0
    """Default Apdex threshold T in milliseconds; queries may override it. (HERON_APDEX_T_MS)"""
    max_body_bytes: int = 64 * 1024 * 1024
    """Largest accepted request body, checked before and after decompression. (HERON_MAX_BODY_BYTES)"""
    queue_max_spans: int = 200_000
    """Spans waiting for the writer before ingest answers 503. (HERON_QUEUE_MAX_SPANS)"""
    queue_max_points: int = 500_000
    """Metric data points waiting for the writer before ingest answers 503. (HERON_QUEUE_MAX_POINTS)"""
    commit_interval_ms: float = 25.0
    """Longest time the writer waits to group more batches into one commit. (HERON_COMMIT_INTERVAL_MS)"""
    checkpoint_threshold_mb: int = 64
    """Write-ahead log size at which DuckDB folds it into the database file; 0 does so
    after every commit. (HERON_CHECKPOINT_THRESHOLD_MB)"""
    ingest_key: str = ""
    """Ingest key for the default project, used only when the project is first created;
    empty means generate one. (HERON_INGEST_KEY)"""
    api_token: str = ""
    """Read-API token created on first start; empty means generate one. (HERON_API_TOKEN)"""
    query_timeout_s: float = 30.0
    """Longest a read query may run before it is interrupted. (HERON_QUERY_TIMEOUT_S)"""
    log_level: str = "info"
    """Server log level: debug, info, warning or error. (HERON_LOG_LEVEL)"""
    admin_password: str = field(default="", repr=False)
    """Password of the ``admin`` user created on first start (when no user exists);
    empty means generate one and print it once. (HERON_ADMIN_PASSWORD)"""
    session_days: int = 7
    """Days a sign-in session lasts before its user must sign in again. (HERON_SESSION_DAYS)"""
    cookie_secure: str = "auto"
    """Mark the session cookie Secure: auto (only on HTTPS requests), true or false.
    (HERON_COOKIE_SECURE)"""
    scrub_keys: str = ""
    """Extra keys (comma-separated) whose values are removed from error events and logs
    before storage, on top of the built-in list (password, token, authorization...).
    (HERON_SCRUB_KEYS)"""
    # Metrics ingest: the cardinality guard (docs/metrics.md, "Limits").
    metric_max_series: int = 10_000
    """Series one metric may have per project; points of further series are rejected
    and counted. (HERON_METRIC_MAX_SERIES)"""
    metric_max_names: int = 1_000
    """Distinct metric names per project. (HERON_METRIC_MAX_NAMES)"""
    metric_max_series_total: int = 100_000
    """Series per project over all metrics (bounds the server's memory).
    (HERON_METRIC_MAX_SERIES_TOTAL)"""
    # HTTP hygiene (server/http_guards.py)
    body_timeout_s: float = 30.0
    """Seconds a request's whole body may take to arrive; a slower one is answered 408
    and its connection closed. (HERON_BODY_TIMEOUT_S)"""
    trusted_proxies: str = ""
    """Addresses or networks (comma-separated, e.g. ``127.0.0.1,10.0.0.0/8``) of reverse
    proxies whose ``X-Forwarded-For``/``X-Forwarded-Proto`` are believed; empty means
    none, so the client is always the connecting address. (HERON_TRUSTED_PROXIES)"""
    metrics_public: bool = False
    """Serve ``GET /metrics`` (Prometheus) without the API token; by default it needs
    ``Authorization: Bearer <api token>``. (HERON_METRICS_PUBLIC)"""
    # Alert notifications (docs/alerting.md, "Channels").
    alert_allowed_hosts: str = ""
    """Hosts, addresses or networks (comma-separated) that alert channels may call even
    though they are loopback, link-local or a cloud metadata address (refused by default
    against SSRF). (HERON_ALERT_ALLOWED_HOSTS)"""
    alert_delivery_timeout_s: float = 10.0
    """Seconds one notification send may take (connect, send, answer).
    (HERON_ALERT_DELIVERY_TIMEOUT_S)"""
    alert_retry_max_s: float = 86400.0
    """Seconds a notification is retried (backoff from 5 s to 5 min) before it is given
    up as failed. (HERON_ALERT_RETRY_MAX_S)"""
    # Memory (see docs/configuration.md, "Memory").
    memory_limit_mb: int = 1024
    """The server's memory budget in MiB: DuckDB gets half (its memory_limit, spilling to
    a temp directory beyond it; one thread per 128 MiB of it, at most one per core), the
    rest is for the Python side (code, requests, the write queue, bounded caches).
    (HERON_MEMORY_LIMIT_MB)"""
    # Scale-out (docs/scale-out.md): the telemetry store, shared state, the process's role.
    role: str = "all"
    """What this process does: all (default), ingest (OTLP and Sentry ingest only), query
    (UI and JSON API only) or jobs (background jobs only; run exactly one).
    (HERON_ROLE)"""
    storage_backend: str = "duckdb"
    """Telemetry store: duckdb (one local file, default) or clickhouse; ``backend`` in the
    file's ``[storage]`` table. (HERON_STORAGE_BACKEND)"""
    clickhouse_url: str = field(default="", repr=False)
    """ClickHouse to store telemetry in: ``http(s)://host:8123`` or ``chdb:///path``
    (ClickHouse in-process). (HERON_CLICKHOUSE_URL)"""
    clickhouse_user: str = ""
    """ClickHouse user; empty means the URL's (or ClickHouse's ``default``).
    (HERON_CLICKHOUSE_USER)"""
    clickhouse_password: str = field(default="", repr=False)
    """ClickHouse password; empty means the URL's. Never printed. (HERON_CLICKHOUSE_PASSWORD)"""
    clickhouse_database: str = "heron"
    """ClickHouse database holding Heron's tables. (HERON_CLICKHOUSE_DATABASE)"""
    clickhouse_cluster: str = ""
    """ClickHouse cluster to create the tables on (``ON CLUSTER``, Replicated and
    Distributed tables); empty means a single server. ``cluster`` in ``[storage]``.
    (HERON_CLICKHOUSE_CLUSTER)"""
    state_url: str = field(default="", repr=False)
    """PostgreSQL (``postgresql://user@host/db``) holding the state several processes
    share: projects, keys, users, sessions, issue status. Empty means a local DuckDB file
    in ``data_dir``. (HERON_STATE_URL)"""
    alerts_enabled: bool = True
    """Evaluate alert rules and send notifications (in the ``all`` and ``jobs`` roles).
    (HERON_ALERTS_ENABLED)"""
    alert_tick_s: float = 5.0
    """How often the alert engine wakes to evaluate due rules and deliver notifications;
    each rule still runs on its own interval. (HERON_ALERT_TICK_S)"""
    public_url: str = ""
    """Base URL of Heron's UI in notification links, e.g. ``https://heron.example.com``;
    empty means ``http://{host}:{port}``. (HERON_PUBLIC_URL)"""

    # Alerting (docs/alerting.md).
    alert_rules_path: str = ""
    """A TOML rule file, or a directory of ``*.toml`` rule files, loaded at start and on
    ``POST /api/v1/alerts/rules/reload``; empty means none. (HERON_ALERT_RULES_PATH)"""
    alert_starter_rules: str = "disabled"
    """The starter rule set (p95 > 2 s, errors > 5 %, CPU > 80 %, memory > 90 %, disk >
    85 %), created once per project: off, disabled or enabled. (HERON_ALERT_STARTER_RULES)"""

    # Real-user monitoring: the beacon endpoint (docs/rum.md, "Beacon endpoint").
    rum_enabled: bool = True
    """Serve the RUM beacon endpoint ``POST /rum/v1/events`` (in the ``all`` and
    ``ingest`` roles). (HERON_RUM_ENABLED)"""
    analyze_thresholds: str = ""
    """Performance analyzer thresholds overriding the defaults: ``area=good/warning/critical``
    items separated by ``;``, ``service:area=…`` for one service (areas: p95_ms, mean_ms,
    error_rate_pct, apdex, cpu_pct, memory_pct, loop_lag_ms; docs/analyze.md).
    (HERON_ANALYZE_THRESHOLDS)"""
    rum_allowed_origins: str = ""
    """Origins (comma-separated, e.g. ``https://shop.example,https://www.shop.example``)
    whose pages may post beacons; ``*`` allows every origin; empty allows none.
    (HERON_RUM_ALLOWED_ORIGINS)"""
    rum_browser_key: str = ""
    """Browser key of the default project (``hb_…``, embedded in pages), used only when
    it is first created; empty means generate one. (HERON_RUM_BROWSER_KEY)"""
    rum_max_body_bytes: int = 64 * 1024
    """Largest accepted beacon body in bytes. (HERON_RUM_MAX_BODY_BYTES)"""
    rum_max_events: int = 200
    """Most events one beacon may carry; a beacon with more is refused (413).
    (HERON_RUM_MAX_EVENTS)"""
    rum_rate_per_ip: float = 20.0
    """Beacons per second one client address may send (bursts of ten seconds' worth);
    0 means no limit. (HERON_RUM_RATE_PER_IP)"""
    rum_rate_per_session: float = 2.0
    """Beacons per second one page session may send (bursts of ten seconds' worth); 0
    means no limit. (HERON_RUM_RATE_PER_SESSION)"""

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "heron.duckdb"

    @property
    def base_url(self) -> str:
        """``public_url``, or the address this server listens on, without a final slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def scrub_key_list(self) -> tuple[str, ...]:
        """``scrub_keys`` split on commas, blanks dropped."""
        return tuple(k.strip() for k in self.scrub_keys.split(",") if k.strip())

    @property
    def trusted_proxy_list(self) -> tuple[str, ...]:
        """``trusted_proxies`` split on commas, blanks dropped."""
        return tuple(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    @property
    def rum_origin_list(self) -> tuple[str, ...]:
        """``rum_allowed_origins`` split on commas, blanks and final slashes dropped."""
        parts = (o.strip().rstrip("/") for o in self.rum_allowed_origins.split(","))
        return tuple(o for o in parts if o)

    def validate(self) -> Config:
        """Check ranges; raise ConfigError naming the first bad key."""
        checks: list[tuple[str, bool, str]] = [
            ("port", 0 <= self.port <= 65535, "must be between 0 and 65535"),
            ("retention_days", self.retention_days >= 1, "must be at least 1"),
            ("rollup_retention_days", self.rollup_retention_days >= 1, "must be at least 1"),
            ("apdex_t_ms", self.apdex_t_ms > 0, "must be greater than 0"),
            ("max_body_bytes", self.max_body_bytes >= 1024, "must be at least 1024"),
            ("queue_max_spans", self.queue_max_spans >= 1, "must be at least 1"),
            ("queue_max_points", self.queue_max_points >= 1, "must be at least 1"),
            ("commit_interval_ms", self.commit_interval_ms >= 0, "must not be negative"),
            ("checkpoint_threshold_mb", self.checkpoint_threshold_mb >= 0, "must not be negative"),
            ("query_timeout_s", self.query_timeout_s > 0, "must be greater than 0"),
            ("alert_tick_s", 0.05 <= self.alert_tick_s <= 3600, "must be between 0.05 and 3600"),
            (
                "public_url",
                not self.public_url or self.public_url.startswith(("http://", "https://")),
                "must start with http:// or https://",
            ),
            ("memory_limit_mb", self.memory_limit_mb >= 512, "must be at least 512"),
            (
                "log_level",
                self.log_level in ("debug", "info", "warning", "error"),
                "must be one of debug, info, warning, error",
            ),
            ("host", bool(self.host), "must not be empty"),
            (
                "admin_password",
                not self.admin_password or 8 <= len(self.admin_password) <= 1024,
                "must be 8 to 1024 characters long",
            ),
            ("session_days", 1 <= self.session_days <= 400, "must be between 1 and 400"),
            (
                "cookie_secure",
                self.cookie_secure.lower() in ("auto", "true", "false"),
                "must be one of auto, true, false",
            ),
            ("body_timeout_s", self.body_timeout_s > 0, "must be greater than 0"),
            ("metric_max_series", self.metric_max_series >= 1, "must be at least 1"),
            ("metric_max_names", self.metric_max_names >= 1, "must be at least 1"),
            ("metric_max_series_total", self.metric_max_series_total >= 1, "must be at least 1"),
            (
                "alert_starter_rules",
                self.alert_starter_rules in ("off", "disabled", "enabled"),
                "must be one of off, disabled, enabled",
            ),
            (
                "trusted_proxies",
                all(_is_network(p) for p in self.trusted_proxy_list),
                "must be IP addresses or networks separated by commas",
            ),
            (
                "alert_delivery_timeout_s",
                self.alert_delivery_timeout_s > 0,
                "must be greater than 0",
            ),
            ("alert_retry_max_s", self.alert_retry_max_s >= 0, "must not be negative"),
            *self._rum_checks(),
            ("analyze_thresholds", _thresholds_ok(self.analyze_thresholds), _THRESHOLDS_HELP),
        ]
        for key, ok, why in [*checks, *self._storage_checks()]:
            if not ok:
                raise ConfigError(f"invalid config {key}={self._shown(key)}: {why}")
        return self

    def _rum_checks(self) -> list[tuple[str, bool, str]]:
        return [
            (
                "rum_allowed_origins",
                all(o == "*" or _ORIGIN.match(o) for o in self.rum_origin_list),
                "must be * or origins like https://shop.example[:port] separated by commas",
            ),
            (
                "rum_browser_key",
                not self.rum_browser_key or bool(_BROWSER_KEY.match(self.rum_browser_key)),
                "must be hb_ followed by 16 to 128 letters, digits, - or _",
            ),
            (
                "rum_max_body_bytes",
                1024 <= self.rum_max_body_bytes <= 16 * 1024 * 1024,
                "must be between 1024 and 16777216",
            ),
            ("rum_max_events", 1 <= self.rum_max_events <= 10_000, "must be between 1 and 10000"),
            ("rum_rate_per_ip", self.rum_rate_per_ip >= 0, "must not be negative"),
            ("rum_rate_per_session", self.rum_rate_per_session >= 0, "must not be negative"),
        ]

    def _shown(self, key: str) -> str:
        value = getattr(self, key)
        if key in _SECRETS:
            return "<hidden>"
        return repr(mask_url(value)) if key in _URLS else repr(value)

    def _storage_checks(self) -> list[tuple[str, bool, str]]:
        """The storage backend, its URLs and the role fit together."""
        clickhouse = self.storage_backend == "clickhouse"
        ch_scheme = urlsplit(self.clickhouse_url).scheme
        return [
            ("role", self.role in ROLES, f"must be one of {', '.join(ROLES)}"),
            ("storage_backend", self.storage_backend in BACKENDS, "must be duckdb or clickhouse"),
            (
                "clickhouse_url",
                not clickhouse or bool(self.clickhouse_url),
                "is required with storage backend clickhouse (HERON_CLICKHOUSE_URL)",
            ),
            (
                "clickhouse_url",
                not self.clickhouse_url or ch_scheme in ("http", "https", "chdb"),
                "must be http(s)://host:8123 or chdb:///path",
            ),
            (
                "clickhouse_database",
                bool(_IDENT.match(self.clickhouse_database)),
                "must be letters, digits and _ (not starting with a digit)",
            ),
            (
                "clickhouse_cluster",
                not self.clickhouse_cluster or bool(_IDENT.match(self.clickhouse_cluster)),
                "must be letters, digits and _ (not starting with a digit)",
            ),
            (
                "state_url",
                not self.state_url or urlsplit(self.state_url).scheme in ("postgresql", "postgres"),
                "must be postgresql://user@host:5432/database",
            ),
            *self._scale_out_checks(),
        ]

    def _scale_out_checks(self) -> list[tuple[str, bool, str]]:
        """Settings that need the ClickHouse backend, and roles that need shared state."""
        clickhouse = self.storage_backend == "clickhouse"
        return [
            *(
                (key, clickhouse or not getattr(self, key), "needs storage backend clickhouse")
                for key in ("clickhouse_cluster", "state_url")
            ),
            (
                "role",
                self.role == "all" or clickhouse,
                "needs storage backend clickhouse (DuckDB is one process: use role all)",
            ),
            (
                "role",
                self.role == "all" or bool(self.state_url),
                "needs state_url (processes with roles share state in PostgreSQL)",
            ),
        ]


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _coerce(key: str, raw: Any, typ: type, source: str) -> Any:
    try:
        if typ is bool:
            if isinstance(raw, bool):
                return raw
            return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}[
                str(raw).strip().lower()
            ]
        if typ is int and isinstance(raw, float | bool):
            raise ValueError("not an integer")
        return typ(raw)
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"invalid config {key}={raw!r} (from {source}): expected {typ.__name__}"
        ) from None


_THRESHOLDS_HELP = "must be [service:]area=good/warning/critical items separated by ';'"


def _thresholds_ok(spec: str) -> bool:
    from heron.server.analyze.grading import ThresholdError, parse_thresholds

    try:
        parse_thresholds(spec)
    except ThresholdError:
        return False
    return True


_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Build a validated Config from a TOML file, ``HERON_*`` variables and overrides."""
    env = os.environ if env is None else env
    known = {f.name: _TYPES[str(f.type)] for f in fields(Config)}
    values: dict[str, Any] = {}
    path = path or env.get("HERON_CONFIG") or None
    if path:
        values.update(_read_toml(Path(path), known))
    for name, typ in known.items():
        var = f"HERON_{name.upper()}"
        if var in env:
            values[name] = _coerce(name, env[var], typ, var)
    for name, raw in overrides.items():
        if raw is not None:
            values[name] = _coerce(name, raw, known[name], "command line")
    return dataclasses.replace(Config(), **values).validate()


def _read_toml(path: Path, known: dict[str, type]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    storage = data.pop("storage", {})
    section = data.get("server", data)
    if not isinstance(storage, dict):
        raise ConfigError(f"config key 'storage' in {path} must be a table ([storage])")
    out: dict[str, Any] = {}
    for key, raw in section.items():
        if key not in known:
            raise ConfigError(f"unknown config key {key!r} in {path}")
        out[key] = _coerce(key, raw, known[key], str(path))
    for key, raw in storage.items():
        if key not in _STORAGE_KEYS:
            raise ConfigError(f"unknown config key {key!r} in [storage] of {path}")
        name = _STORAGE_KEYS[key]
        out[name] = _coerce(name, raw, known[name], str(path))
    return out
