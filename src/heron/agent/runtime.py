"""The process-wide agent behind ``heron.init()``, ``flush()``, ``shutdown()`` and ``stats()``.

Importing this module is cheap: the OpenTelemetry SDK, the exporter and the
instrumentations load inside ``init()``, and each framework integration only when the
app imports that framework.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from heron.agent.config import AgentConfig, BeforeSend, resolve_config
from heron.agent.guard import capture_internal_exceptions, internal_error_count

if TYPE_CHECKING:
    from heron.agent.logs import LogPipeline
    from heron.agent.otel import Agent
    from heron.agent.otel_metrics import MetricsPipeline
    from heron.agent.runtime_metrics import RuntimeMetrics

logger = logging.getLogger("heron.agent")

# The instrumentations read this once, when the first of them is set up. Heron stores
# both the old and the current attribute names, so "http,database" (current names only)
# is safe and cheaper than "http/dup"; an explicit setting by the user wins.
SEMCONV_OPT_IN = ("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database")


@dataclass(frozen=True)
class AgentStats:
    """This process's agent counters (a forked worker starts again from zero).

    ``dropped`` counts spans that will never reach the server: failed or refused exports,
    a full queue, exports after shutdown. ``explains`` counts EXPLAIN plans captured for
    slow queries, ``explain_failures`` the EXPLAINs the database refused or that failed.

    ``events`` counts error events sent to the pipeline; ``events_dropped`` those
    ``before_send`` discarded; ``events_failed`` those lost to an error (``before_send``
    raised). ``logs_sent`` counts OTLP log records delivered (error events included),
    ``logs_dropped`` those lost (failed exports, a full queue).
    """

    exported: int = 0
    dropped: int = 0
    failed_exports: int = 0
    queued: int = 0
    internal_errors: int = 0
    explains: int = 0
    explain_failures: int = 0
    events: int = 0
    events_dropped: int = 0
    events_failed: int = 0
    logs_sent: int = 0
    logs_dropped: int = 0
    metric_points: int = 0
    metric_exports_failed: int = 0
    metrics_overflowed: int = 0
    slow_requests: int = 0


_lock = threading.Lock()
_agent: Agent | None = None
_logs: LogPipeline | None = None
_metrics: MetricsPipeline | None = None
_runtime: RuntimeMetrics | None = None
_config: AgentConfig | None = None  # set by the first init(), enabled or not


def _reset_lock_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


def init(
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
) -> None:
    """Configure OpenTelemetry to send traces, logs and errors to Heron; instrument libraries.

    Every option falls back to its environment variable, then to a default:

    - ``service``: the service name (``service.name``). ``HERON_SERVICE``, then
      ``OTEL_SERVICE_NAME``, then ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``.
    - ``endpoint``: the Heron server's base URL. ``HERON_ENDPOINT``, then
      ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is), then
      ``OTEL_EXPORTER_OTLP_ENDPOINT``; default ``http://localhost:4318``. Traces go to
      ``<endpoint>/v1/traces`` over OTLP/HTTP (protobuf).
    - ``key``: the project's ingest key, sent as the ``x-heron-key`` header.
      ``HERON_KEY``. Other headers come from ``OTEL_EXPORTER_OTLP_HEADERS``.
    - ``environment``: ``deployment.environment.name``, e.g. ``production``.
      ``HERON_ENVIRONMENT``.
    - ``release``: ``service.version``, e.g. a git SHA. ``HERON_RELEASE``.
    - ``enabled``: ``False`` makes ``init()`` do nothing. ``HERON_ENABLED``; also off
      when ``OTEL_SDK_DISABLED=true``.
    - ``instrument``: names of the integrations to set up (``flask``, ``django``,
      ``fastapi`` (also plain Starlette), ``requests``, ``httpx``, ``psycopg``,
      ``psycopg2``, ``sqlite3``, ``sqlalchemy``, ``pymysql``, ``mysqlclient``, ``redis``);
      default: all of them, each once its library is imported. ``HERON_INSTRUMENT``
      (comma-separated); ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` removes names.
    - ``shutdown_timeout``: seconds the exit-time flush may take (default 2).
      ``HERON_SHUTDOWN_TIMEOUT``.
    - ``record_sql``: what database spans keep of each statement in ``db.query.text``:
      ``"obfuscated"`` (default: every literal replaced by ``?``), ``"raw"`` (verbatim,
      literals included) or ``"off"`` (no text, no EXPLAIN). ``HERON_RECORD_SQL``.
    - ``explain_threshold_ms``: a SELECT that takes at least this long gets its EXPLAIN
      plan fetched in the background (default 500; ``0`` turns EXPLAIN capture off).
      ``HERON_EXPLAIN_THRESHOLD_MS``.

    Errors and logs (see docs/agent.md, "Errors" and "Logs"), sent as OTLP log records to
    ``<endpoint>/v1/logs``:

    - ``logs``: send ``logging`` records (default True). ``HERON_LOGS``. Off, error
      records still become events and records still become breadcrumbs.
    - ``log_level``: the lowest level sent (default ``INFO``). ``HERON_LOG_LEVEL``.
    - ``include_locals``: local variables of in-app frames in events (scrubbed and
      capped; default True). ``HERON_INCLUDE_LOCALS``.
    - ``scrub_keys``: more key names whose values are filtered, on top of the defaults
      (password, token, authorization, cookie, ...). ``HERON_SCRUB_KEYS`` (comma-separated).
    - ``before_send``: ``before_send(event, hint) -> event | None``, called with each
      scrubbed event; return it (changed or not) or None to drop it.
    - ``ignore_exceptions``: exception classes or dotted names never captured (subclasses
      too). ``HERON_IGNORE_EXCEPTIONS``.
    - ``ignore_status_codes``: HTTP exceptions with these statuses are not captured
      (default 401 and 404). ``HERON_IGNORE_STATUS_CODES``.
    - ``max_breadcrumbs``: crumbs kept per trace (default 100). ``HERON_MAX_BREADCRUMBS``.
    - ``in_app_include`` / ``in_app_exclude``: module prefixes whose frames are (not) the
      app's own. ``HERON_IN_APP_INCLUDE`` / ``HERON_IN_APP_EXCLUDE``.

    Metrics (see docs/agent.md, "Metrics"), sent over OTLP/HTTP to
    ``<endpoint>/v1/metrics`` every ``OTEL_METRIC_EXPORT_INTERVAL`` ms (default 10000):

    - ``metrics``: set up OpenTelemetry metrics (default True). ``HERON_METRICS``.
    - ``runtime_metrics``: process, CPython GC and asyncio event-loop metrics (default
      True). ``HERON_RUNTIME_METRICS``.
    - ``host_metrics``: system CPU, load, memory, filesystems, network (default True).
      ``HERON_HOST_METRICS``.
    - ``metric_cardinality_limit``: attribute sets kept per instrument (default 2000).
      ``HERON_METRIC_CARDINALITY_LIMIT``.
    - ``prometheus``: ``True`` keeps a Prometheus view for ``heron.metrics_app()``; a
      port number also serves it at ``http://0.0.0.0:<port>/metrics``.
      ``HERON_PROMETHEUS``; ``HERON_PROMETHEUS_DIR`` for several worker processes.
    - ``slow_request_ms``: entry spans longer than this get ``heron.slow_request=true``
      and a rate-limited WARNING (default 1000; 0 turns it off). ``HERON_SLOW_REQUEST_MS``.

    Real-user monitoring (see docs/rum.md, "Browser SDK"):

    - ``server_timing``: add ``Server-Timing: traceparent;desc="00-…-01"`` to the
      responses of instrumented servers, so the browser SDK joins each page load to the
      request that served it (default True). ``HERON_SERVER_TIMING``. In templates,
      ``heron.traceparent_meta()`` does the same with a ``<meta>`` tag.

    The OpenTelemetry SDK variables keep their meaning: ``OTEL_RESOURCE_ATTRIBUTES``,
    ``OTEL_TRACES_SAMPLER(_ARG)``, ``OTEL_PROPAGATORS``, ``OTEL_TRACES_EXPORTER``
    (``otlp``, ``console`` or ``none``), ``OTEL_BSP_MAX_QUEUE_SIZE``,
    ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``, ``OTEL_BSP_SCHEDULE_DELAY``,
    ``OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT``, ``..._COMPRESSION`` and the TLS settings.

    Calling ``init()`` again does nothing. It never raises: configuration problems are
    logged on the ``heron.agent`` logger and replaced by defaults.
    """
    with capture_internal_exceptions:
        config = resolve_config(
            service=service,
            endpoint=endpoint,
            key=key,
            environment=environment,
            release=release,
            enabled=enabled,
            instrument=instrument,
            shutdown_timeout=shutdown_timeout,
            record_sql=record_sql,
            explain_threshold_ms=explain_threshold_ms,
            logs=logs,
            log_level=log_level,
            include_locals=include_locals,
            scrub_keys=scrub_keys,
            before_send=before_send,
            ignore_exceptions=ignore_exceptions,
            ignore_status_codes=ignore_status_codes,
            max_breadcrumbs=max_breadcrumbs,
            in_app_include=in_app_include,
            in_app_exclude=in_app_exclude,
            metrics=metrics,
            runtime_metrics=runtime_metrics,
            host_metrics=host_metrics,
            metric_cardinality_limit=metric_cardinality_limit,
            prometheus=prometheus,
            slow_request_ms=slow_request_ms,
            server_timing=server_timing,
        )
        _install(config)


def _install(config: AgentConfig) -> None:
    global _agent, _config, _logs
    with _lock:
        if _config is not None:
            if replace(config, problems=()) != replace(_config, problems=()):
                logger.warning("heron.init() was already called; ignoring the new options")
            return
        _config = config
        for problem in config.problems:
            logger.warning("heron: %s", problem)
        if not config.enabled:
            logger.info("heron: disabled by configuration")
            return
        from heron.agent.integrations import setup_integrations
        from heron.agent.otel import Agent

        _preload_exporters(config)
        agent = Agent(config)
        agent.install()
        _agent = agent
        _logs = _install_errors(config, agent)
        if config.metrics and (config.metrics_exporter != "none" or config.prometheus):
            with capture_internal_exceptions:  # metrics must never cost the traces
                _install_metrics(config, agent)
        if config.server_timing:
            from heron.agent.trace_context import install_server_timing

            with capture_internal_exceptions:
                install_server_timing()
    os.environ.setdefault(*SEMCONV_OPT_IN)
    from heron.agent.integrations import _db

    _db.configure(record_sql=config.record_sql, explain_threshold_ms=config.explain_threshold_ms)
    setup_integrations(config)
    atexit.register(_shutdown_at_exit)


# The OTLP/HTTP exporters, and requests, which their transport imports when built.
PRELOADED_MODULES = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "requests",
)


def _preload_exporters(config: AgentConfig) -> None:
    """Import the OTLP exporters (and requests) now, in the thread calling ``init()``.

    Each export thread (spans, logs, metrics) would otherwise import them on its first
    export, and two threads importing the same modules at once can see them partially
    initialized; worse, a process forked while one was importing (gunicorn --preload)
    inherits the import locks of a thread it does not have, and never exports. Metrics
    export from the start (runtime metrics), so nothing is saved by waiting.
    """
    if config.exporter != "otlp" and not (config.metrics and config.metrics_exporter == "otlp"):
        return  # nothing exported over OTLP by a background thread right away
    import importlib

    for module in PRELOADED_MODULES:
        with capture_internal_exceptions:
            importlib.import_module(module)


def _install_metrics(config: AgentConfig, agent: Agent) -> None:
    """The meter provider, its OTLP reader, runtime metrics and the Prometheus view."""
    global _metrics, _runtime
    from heron.agent.otel_metrics import MetricsPipeline
    from heron.agent.runtime_metrics import RuntimeMetrics

    pipeline = MetricsPipeline(
        config,
        agent.provider.resource,
        trace_resource=lambda: agent.provider.resource,
    )
    pipeline.install()
    _metrics = pipeline
    if config.prometheus:
        from heron.agent import prometheus

        prometheus.install(pipeline, config)
    if (config.runtime_metrics or config.host_metrics) and pipeline.provider is not None:
        _runtime = RuntimeMetrics(
            pipeline.provider, host=config.host_metrics, runtime=config.runtime_metrics
        )


def _install_errors(config: AgentConfig, agent: Agent) -> LogPipeline:
    """Error capture and logs: the log pipeline, the client, its hooks and handler."""
    from heron._scrub import Scrubber
    from heron.agent import errors
    from heron.agent.errors import _scope
    from heron.agent.errors._breadcrumbs import BreadcrumbProcessor
    from heron.agent.errors._client import ErrorClient
    from heron.agent.errors._hooks import install_hooks
    from heron.agent.fork import after_fork_in_child
    from heron.agent.logs import HeronHandler, LogPipeline, install_handler

    pipeline = LogPipeline(config, gate=agent.gate)
    scrubber = Scrubber(config.scrub_keys)
    _scope.sensitive_key = scrubber.sensitive_key
    client = ErrorClient(config, pipeline.send_event, scrubber=scrubber)
    agent.provider.add_span_processor(BreadcrumbProcessor(client.crumbs, scrubber))
    after_fork_in_child(client.after_fork)
    errors.install(client)
    install_hooks(client, flush=flush)
    install_handler(HeronHandler(pipeline, client, level=config.log_level, send_logs=config.logs))
    return pipeline


def _timeout(timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    return _config.shutdown_timeout if _config is not None else 2.0


def flush(timeout: float | None = None) -> bool:
    """Export the spans, logs and events queued so far; wait at most ``timeout`` s (default 2).

    Returns whether everything was exported in time. Never raises.
    """
    with capture_internal_exceptions:
        agent, logs, meters, limit = _agent, _logs, _metrics, _timeout(timeout)
        return _all(
            [
                agent.flush if agent is not None else None,
                logs.flush if logs is not None else None,
                meters.flush if meters is not None else None,
            ],
            limit,
        )
    return False


def shutdown(timeout: float | None = None) -> bool:
    """Flush, then stop exporting; wait at most ``timeout`` seconds (default 2).

    Runs by itself at interpreter exit (with ``shutdown_timeout``). Spans that could not
    be sent in time are dropped and counted. Returns whether it finished in time.
    """
    with capture_internal_exceptions:
        agent, logs, meters, limit = _agent, _logs, _metrics, _timeout(timeout)
        if _runtime is not None:
            _runtime.close()
        return _all(
            [
                agent.shutdown if agent is not None else None,
                logs.shutdown if logs is not None else None,
                meters.shutdown if meters is not None else None,
            ],
            limit,
        )
    return False


def _all(steps: list[Callable[[float], bool] | None], timeout: float) -> bool:
    """Run the pipelines' ``flush``/``shutdown`` side by side, within ``timeout``."""
    todo = [step for step in steps if step is not None]
    if not todo:
        return True
    first, rest = todo[0], todo[1:]
    outcomes: list[list[bool]] = []
    workers = []
    for step in rest:
        outcome: list[bool] = []
        worker = threading.Thread(
            target=lambda s=step, o=outcome: o.append(s(timeout)), daemon=True
        )
        try:
            worker.start()
        except RuntimeError:  # no new threads at interpreter shutdown: one after the other
            outcome.append(step(timeout))
        outcomes.append(outcome)
        workers.append(worker)
    done = first(timeout)
    for worker in workers:
        if worker.is_alive():
            worker.join(timeout)
    return done and all(bool(o and o[0]) for o in outcomes)


def _shutdown_at_exit() -> None:
    shutdown()


def stats() -> AgentStats:
    """Counters of this process's agent: spans, events and log records sent and lost."""
    with capture_internal_exceptions:
        explains, explain_failures = _explain_counts()
        counts: dict[str, int] = {
            "internal_errors": internal_error_count(),
            "explains": explains,
            "explain_failures": explain_failures,
        }
        agent = _agent
        if agent is not None:
            s = agent.export_stats()
            counts.update(
                exported=s.exported,
                dropped=s.dropped,
                failed_exports=s.failed_exports,
                queued=agent.queued(),
            )
        counts.update(_error_counts())
        meters = _metrics
        if meters is not None:
            m = meters.exporter.stats
            counts.update(
                metric_points=m.points,
                metric_exports_failed=m.failed_exports,
                metrics_overflowed=m.overflowed,
            )
        if agent is not None and agent.slow is not None:
            counts["slow_requests"] = agent.slow.flagged
        return AgentStats(**counts)
    return AgentStats(internal_errors=internal_error_count())


def _error_counts() -> dict[str, int]:
    from heron.agent import errors

    client, logs = errors.client(), _logs
    counts: dict[str, int] = {}
    if client is not None:
        e = client.stats
        counts.update(events=e.captured, events_dropped=e.dropped, events_failed=e.failed)
    if logs is not None:
        counts["logs_sent"], counts["logs_dropped"] = logs.stats()
    return counts


def _explain_counts() -> tuple[int, int]:
    explain = sys.modules.get("heron.agent._explain")  # only loaded once a database is used
    return explain.counts() if explain is not None else (0, 0)
