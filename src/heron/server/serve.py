"""``heron serve``: validate config, start uvicorn, print the keys on first start."""

from __future__ import annotations

import gc
import logging
import sys
from typing import TYPE_CHECKING

from heron.server.config import Config, ConfigError, load_config, mask_url
from heron.server.projects import Bootstrap

if TYPE_CHECKING:
    from heron.server.auth import Auth


def serve(
    *,
    config_path: str | None = None,
    host: str | None = None,
    port: int | None = None,
    data_dir: str | None = None,
    role: str | None = None,
) -> int:
    try:
        config = load_config(config_path, host=host, port=port, data_dir=data_dir, role=role)
    except ConfigError as e:
        print(f"heron: {e}", file=sys.stderr)
        return 2
    import uvicorn

    from heron.server.app import create_app
    from heron.server.store.base import StorageUnavailable
    from heron.server.store.memory import keep_pandas_unloaded

    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("heron.server").info("%s", describe_storage(config))
    if config.storage_backend == "duckdb":  # chdb, the ClickHouse client, uses pandas itself
        keep_pandas_unloaded()
    try:
        app = create_app(config)
    except StorageUnavailable as e:
        print(f"heron: {e}", file=sys.stderr)
        return 1
    auth: Auth | None = getattr(app.state, "auth", None)  # only roles with the UI sign in
    # Runs after install_auth's own callback, which creates the first admin.
    app.state.ctx.on_bootstrap.append(lambda b: _announce(b, auth, config))
    app.state.ctx.on_bootstrap.append(lambda b: tune_gc())
    tune_gil()
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level if config.log_level != "debug" else "debug",
        access_log=False,
        proxy_headers=False,  # the app trusts only config.trusted_proxies (http_guards.py)
        timeout_graceful_shutdown=10,
    )
    return 0


def tune_gc() -> None:
    """After start: what is alive now (code, config, caches) lives as long as the process,
    so the collector stops walking it (``gc.freeze``), and it runs less often: ingest
    allocates dicts and records by the thousand per request, and the default threshold
    (700) spent a third of metrics ingest's time in collections (bench/metrics_ingest.py)."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


# How long a thread may keep the GIL while another waits for it (Python's default: 5 ms).
GIL_SWITCH_INTERVAL_S = 0.0002


def tune_gil() -> None:
    """A shorter GIL switch interval. The writer thread gives up the GIL while DuckDB
    works and takes it back several times per commit (between statements, to read each
    Arrow table); every time the event loop is decoding, it waited up to a whole switch
    interval, so a commit of 1,000 data points took ~100 ms of waiting instead of ~5 ms
    of work, and the writer, not the CPU, bounded ingest (bench/metrics_ingest.py)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def sentry_dsn(base_url: str, ingest_key: str, project_id: int) -> str:
    """The DSN a Sentry SDK needs to send to this server: ``http://<key>@host:port/<id>``."""
    scheme, _, rest = base_url.partition("://")
    return f"{scheme}://{ingest_key}@{rest.rstrip('/')}/{project_id}"


def describe_storage(config: Config) -> str:
    """One line naming the role and where telemetry and state live; passwords masked."""
    if config.storage_backend != "clickhouse":
        return f"role {config.role}; storage: DuckDB file {config.db_path}"
    where = f"ClickHouse {mask_url(config.clickhouse_url)} database {config.clickhouse_database}"
    if config.clickhouse_cluster:
        where += f" on cluster {config.clickhouse_cluster}"
    state = mask_url(config.state_url) if config.state_url else f"{config.data_dir}/state.duckdb"
    return f"role {config.role}; storage: {where}; state: {state}"


def _announce(b: Bootstrap, auth: Auth | None, config: Config) -> None:
    url = f"http://{config.host}:{config.port}"
    role = "" if config.role == "all" else f" ({config.role} role)"
    lines = [f"Heron{role} is listening on {url}"]
    if config.role in ("all", "ingest"):
        lines += [
            f"  OTLP endpoint:  {url}  (POST /v1/traces, /v1/logs, /v1/metrics)",
            f"  ingest key:     {b.ingest_key}",
            f"  send with:      OTEL_EXPORTER_OTLP_ENDPOINT={url} "
            f"OTEL_EXPORTER_OTLP_HEADERS=x-heron-key={b.ingest_key}",
            f"  Sentry DSN:     {sentry_dsn(url, b.ingest_key, b.project_id)}   "
            "(for sentry-sdk apps)",
        ]
        if config.rum_enabled and b.browser_key:
            lines.append(
                f"  browser key:    {b.browser_key}   (RUM: embed in pages; "
                f"POST {url}/rum/v1/events?key=…)"
            )
    if b.api_token:
        lines.append(f"  API token:      {b.api_token}   (shown once; stored hashed)")
    if auth is not None:
        lines.append(f"  sign in:        {url}/login")
        lines += _admin_lines(auth)
    print("\n".join(lines), flush=True)


def _admin_lines(auth: Auth) -> list[str]:
    lines: list[str] = []
    admin = auth.admin_created
    if admin is not None and admin.password is not None:
        lines.append(
            f"  admin user:     {admin.username}, password {admin.password}   "
            "(shown once; stored hashed; change it with `heron users set-password`)"
        )
    elif admin is not None:
        lines.append(
            f"  admin user:     {admin.username}, "
            "password as configured (admin_password / HERON_ADMIN_PASSWORD)"
        )
    return lines
