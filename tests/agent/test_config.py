"""Option resolution: keyword, then HERON_*, then OTEL_*, then default; never raises."""

from __future__ import annotations

import pytest

from heron.agent.config import DEFAULT_MAX_QUEUE_SIZE, KEY_HEADER, AgentConfig, resolve_config


def test_defaults_without_any_configuration() -> None:
    config = resolve_config(environ={})
    assert config == AgentConfig(headers={})
    assert config.traces_endpoint == "http://localhost:4318/v1/traces"
    assert config.service is None and config.enabled and config.problems == ()


def test_keywords_beat_heron_variables_which_beat_otel_variables() -> None:
    environ = {
        "HERON_SERVICE": "from-heron",
        "OTEL_SERVICE_NAME": "from-otel",
        "HERON_ENDPOINT": "http://heron:4318",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
        "HERON_KEY": "hk_env",
        "HERON_ENVIRONMENT": "staging",
        "HERON_RELEASE": "1.0",
    }
    assert resolve_config(environ=environ).service == "from-heron"
    assert resolve_config(environ=environ).traces_endpoint == "http://heron:4318/v1/traces"
    assert resolve_config(environ={"OTEL_SERVICE_NAME": "from-otel"}).service == "from-otel"
    config = resolve_config(
        service="kw",
        endpoint="https://kw.example/",
        key="hk_kw",
        environment="production",
        release="2.0",
        environ=environ,
    )
    assert (config.service, config.environment, config.release) == ("kw", "production", "2.0")
    assert config.traces_endpoint == "https://kw.example/v1/traces"
    assert config.headers == {KEY_HEADER: "hk_kw"}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318/"}, "http://otel:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:1/custom"}, "http://x:1/custom"),
        ({"HERON_ENDPOINT": "http://h:9/v1/traces"}, "http://h:9/v1/traces"),
        ({"HERON_ENDPOINT": "http://h:9/prefix"}, "http://h:9/prefix/v1/traces"),
    ],
)
def test_endpoint_forms(environ: dict[str, str], expected: str) -> None:
    assert resolve_config(environ=environ).traces_endpoint == expected


def test_key_joins_the_otel_headers() -> None:
    environ = {"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=two%20words", "HERON_KEY": "hk_1"}
    assert resolve_config(environ=environ).headers == {
        "a": "1",
        "b": "two words",
        KEY_HEADER: "hk_1",
    }
    traces_only = {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "c=3", "OTEL_EXPORTER_OTLP_HEADERS": "a=1"}
    assert resolve_config(environ=traces_only).headers == {"c": "3"}


def test_the_key_never_appears_in_the_repr() -> None:
    assert "hk_secret" not in repr(resolve_config(key="hk_secret", environ={}))


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({"HERON_ENABLED": "false"}, False),
        ({"HERON_ENABLED": "1"}, True),
        ({"OTEL_SDK_DISABLED": "true"}, False),
        ({"HERON_ENABLED": "yes", "OTEL_SDK_DISABLED": "TRUE"}, False),
    ],
)
def test_enabled(environ: dict[str, str], enabled: bool) -> None:
    assert resolve_config(environ=environ).enabled is enabled


def test_integrations() -> None:
    assert resolve_config(environ={}).integrations is None
    assert resolve_config(environ={"HERON_INSTRUMENT": "Flask, requests"}).integrations == (
        "flask",
        "requests",
    )
    assert resolve_config(
        instrument=["httpx"], environ={"HERON_INSTRUMENT": "flask"}
    ).integrations == ("httpx",)
    disabled = resolve_config(environ={"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "django,httpx"})
    assert disabled.disabled_integrations == {"django", "httpx"}


def test_batching_comes_from_the_otel_bsp_variables() -> None:
    config = resolve_config(
        environ={
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
            "OTEL_BSP_SCHEDULE_DELAY": "250",
        }
    )
    assert (config.max_queue_size, config.max_export_batch_size, config.schedule_delay_ms) == (
        100,
        10,
        250,
    )


def test_burst_sized_batching_defaults_and_a_small_queue_alone() -> None:
    config = resolve_config(environ={})
    assert (config.max_queue_size, config.max_export_batch_size, config.schedule_delay_ms) == (
        100_000,
        4096,
        1000,
    )
    # Only the queue is set, below the default batch: batches shrink to it, no complaint.
    small = resolve_config(environ={"OTEL_BSP_MAX_QUEUE_SIZE": "100"})
    assert (small.max_queue_size, small.max_export_batch_size, small.problems) == (100, 100, ())


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE='0' must be a number >= 1"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "nan"}, "OTEL_BSP_SCHEDULE_DELAY='nan'"),
        (
            {"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512"},
            "export batch size 512 exceeds the queue size 10",
        ),
        ({"HERON_SHUTDOWN_TIMEOUT": "-1"}, "HERON_SHUTDOWN_TIMEOUT='-1'"),
        ({"HERON_ENABLED": "perhaps"}, "HERON_ENABLED='perhaps' is not a boolean"),
        ({"HERON_ENDPOINT": "heron.internal:4318"}, "has no scheme; assuming http://"),
        ({"HERON_ENDPOINT": "ftp://heron"}, "is not an http(s) URL"),
        ({"HERON_ENDPOINT": "http://[::1"}, "is not an http(s) URL"),
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER='jaeger'"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTLP protocol 'grpc' is not supported"),
        ({"HERON_KEY": "hk with space"}, "the ingest key contains spaces"),
    ],
)
def test_bad_values_become_problems_and_defaults(environ: dict[str, str], complaint: str) -> None:
    config = resolve_config(environ=environ)
    assert any(complaint in p for p in config.problems), config.problems
    assert config.max_queue_size >= config.max_export_batch_size >= 1


def test_bad_keyword_values_are_coerced_not_raised() -> None:
    config = resolve_config(service=7, shutdown_timeout="soon", environ={})  # type: ignore[arg-type]
    assert config.service == "7"
    assert config.shutdown_timeout == 2.0
    assert any(p.startswith("service=7") for p in config.problems)
    assert any(p.startswith("shutdown_timeout='soon'") for p in config.problems)
    assert resolve_config(environ={}).max_queue_size == DEFAULT_MAX_QUEUE_SIZE


def test_metrics_options() -> None:
    config = resolve_config(environ={})
    assert config.metrics and config.runtime_metrics and config.host_metrics
    assert config.metrics_endpoint == "http://localhost:4318/v1/metrics"
    assert config.metric_export_interval_ms == 10_000  # heron's default (the SDK's: 60 s)
    assert config.metric_cardinality_limit == 2000 and config.slow_request_ms == 1000
    assert (config.prometheus, config.prometheus_port, config.metrics_exporter) == (
        False,
        None,
        "otlp",
    )
    environ = {
        "HERON_ENDPOINT": "http://heron:4318/v1/traces",
        "OTEL_METRIC_EXPORT_INTERVAL": "2500",
        "HERON_METRICS": "false",
        "HERON_HOST_METRICS": "off",
        "HERON_METRIC_CARDINALITY_LIMIT": "50",
        "HERON_SLOW_REQUEST_MS": "250",
        "HERON_PROMETHEUS": "9464",
        "HERON_PROMETHEUS_DIR": "/run/heron",
        "OTEL_METRICS_EXPORTER": "none",
    }
    config = resolve_config(environ=environ)
    assert config.metrics_endpoint == "http://heron:4318/v1/metrics"
    assert config.metric_export_interval_ms == 2500
    assert not config.metrics and not config.host_metrics and config.runtime_metrics
    assert config.metric_cardinality_limit == 50 and config.slow_request_ms == 250
    assert (config.prometheus, config.prometheus_port) == (True, 9464)
    assert config.prometheus_dir == "/run/heron" and config.metrics_exporter == "none"
    assert config.problems == ()
    config = resolve_config(
        metrics=True,
        prometheus=True,
        slow_request_ms=0,
        metric_cardinality_limit=7,
        environ=environ,
    )
    assert config.metrics and (config.prometheus, config.prometheus_port) == (True, None)
    assert config.slow_request_ms == 0 and config.metric_cardinality_limit == 7
    per_signal = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://collector:4318/custom"}
    assert resolve_config(environ=per_signal).metrics_endpoint == "http://collector:4318/custom"


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"OTEL_METRIC_EXPORT_INTERVAL": "soon"}, "OTEL_METRIC_EXPORT_INTERVAL"),
        ({"HERON_PROMETHEUS": "port-80"}, "HERON_PROMETHEUS"),
        ({"HERON_METRIC_CARDINALITY_LIMIT": "0"}, "HERON_METRIC_CARDINALITY_LIMIT"),
        ({"HERON_SLOW_REQUEST_MS": "-1"}, "HERON_SLOW_REQUEST_MS"),
        ({"OTEL_METRICS_EXPORTER": "prometheus"}, "OTEL_METRICS_EXPORTER"),
    ],
)
def test_bad_metrics_values_become_problems_and_defaults(
    environ: dict[str, str], complaint: str
) -> None:
    config = resolve_config(environ=environ)
    assert any(complaint in p for p in config.problems), config.problems
    defaults = AgentConfig(headers={})
    assert config.metric_export_interval_ms == defaults.metric_export_interval_ms
    assert config.prometheus is False and config.metrics_exporter == "otlp"
    assert config.metric_cardinality_limit == 2000 and config.slow_request_ms == 1000
