"""Config: TOML + HERON_* env, validated with errors that name the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from heron.server.config import Config, ConfigError, load_config, mask_url
from heron.server.serve import describe_storage
from heron.server.store.open import clickhouse_dsn
from tests.conftest import free_port


def test_defaults_bind_localhost() -> None:
    c = load_config(env={})
    assert (c.host, c.port, c.retention_days) == ("127.0.0.1", 4318, 7)
    assert c.db_path == Path("heron-data") / "heron.duckdb"


def test_toml_then_env_then_overrides(tmp_path: Path) -> None:
    f = tmp_path / "heron.toml"
    f.write_text('[server]\nport = 5000\nretention_days = 3\ndata_dir = "/srv/heron"\n')
    c = load_config(f, env={"HERON_RETENTION_DAYS": "9", "HERON_APDEX_T_MS": "250"})
    assert (c.port, c.retention_days, c.data_dir, c.apdex_t_ms) == (5000, 9, "/srv/heron", 250.0)
    c = load_config(f, env={"HERON_PORT": "6000"}, port=7000)
    assert c.port == 7000


def test_config_file_from_env(tmp_path: Path) -> None:
    f = tmp_path / "h.toml"
    f.write_text("port = 4400\n")  # top-level keys work too
    assert load_config(env={"HERON_CONFIG": str(f)}).port == 4400


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HERON_PORT": "eighty"}, "port='eighty'"),
        ({"HERON_PORT": "70000"}, "port=70000"),
        ({"HERON_RETENTION_DAYS": "0"}, "retention_days"),
        ({"HERON_LOG_LEVEL": "loud"}, "log_level"),
        ({"HERON_APDEX_T_MS": "-1"}, "apdex_t_ms"),
        ({"HERON_BODY_TIMEOUT_S": "0"}, "body_timeout_s"),
        ({"HERON_TRUSTED_PROXIES": "127.0.0.1,proxy.local"}, "trusted_proxies"),
    ],
)
def test_bad_env_values_name_the_key(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("'", ".")):
        load_config(env=env)


def test_proxies_are_trusted_only_when_listed() -> None:
    assert load_config(env={}).trusted_proxy_list == ()
    c = load_config(env={"HERON_TRUSTED_PROXIES": " 127.0.0.1, 10.0.0.0/8 ,::1,"})
    assert c.trusted_proxy_list == ("127.0.0.1", "10.0.0.0/8", "::1")
    assert load_config(env={}).body_timeout_s == 30.0


def test_bad_toml(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("port = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(f, env={})
    f.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown config key 'prot'"):
        load_config(f, env={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", env={})


def test_every_field_is_documented_with_its_env_var() -> None:
    import inspect

    src = inspect.getsource(Config)
    for name in Config.__dataclass_fields__:
        assert f"(HERON_{name.upper()})" in src, f"{name} docstring must name HERON_{name.upper()}"


def test_serve_exits_nonzero_naming_the_key(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "heron", "serve", "--data-dir", str(tmp_path)],
        env={"HERON_QUEUE_MAX_SPANS": "lots", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "queue_max_spans" in r.stderr and "HERON_QUEUE_MAX_SPANS" in r.stderr


# --------------------------------------------------------------- storage and roles

CH = {"HERON_STORAGE_BACKEND": "clickhouse", "HERON_CLICKHOUSE_URL": "http://ch:8123"}
PG = "postgresql://heron:pg-secret@db:5432/heron"


def test_storage_defaults_to_duckdb_in_one_process() -> None:
    c = load_config(env={})
    assert (c.storage_backend, c.role, c.clickhouse_database) == ("duckdb", "all", "heron")
    assert (c.clickhouse_url, c.state_url, c.clickhouse_cluster) == ("", "", "")


def test_storage_table_in_toml(tmp_path: Path) -> None:
    f = tmp_path / "heron.toml"
    f.write_text(
        '[server]\nport = 5000\nrole = "ingest"\n'
        '[storage]\nbackend = "clickhouse"\nclickhouse_url = "https://ch.internal:8443"\n'
        'clickhouse_user = "heron"\nclickhouse_password = "s3cret"\n'
        'clickhouse_database = "apm"\ncluster = "prod"\n'
        f'state_url = "{PG}"\n'
    )
    c = load_config(f, env={})
    assert (c.port, c.role, c.storage_backend) == (5000, "ingest", "clickhouse")
    assert (c.clickhouse_url, c.clickhouse_user, c.clickhouse_password) == (
        "https://ch.internal:8443",
        "heron",
        "s3cret",
    )
    assert (c.clickhouse_database, c.clickhouse_cluster, c.state_url) == ("apm", "prod", PG)
    # top-level keys with a [storage] table work too
    f.write_text('port = 5001\n[storage]\nbackend = "clickhouse"\nclickhouse_url = "chdb:///x"\n')
    c = load_config(f, env={})
    assert (c.port, c.storage_backend, c.clickhouse_url) == (5001, "clickhouse", "chdb:///x")


def test_storage_from_env_overrides_the_file(tmp_path: Path) -> None:
    f = tmp_path / "heron.toml"
    f.write_text('[storage]\nbackend = "duckdb"\n')
    env = {
        **CH,
        "HERON_CLICKHOUSE_USER": "u",
        "HERON_CLICKHOUSE_PASSWORD": "p",
        "HERON_CLICKHOUSE_DATABASE": "telemetry",
        "HERON_CLICKHOUSE_CLUSTER": "c1",
        "HERON_STATE_URL": PG,
        "HERON_ROLE": "query",
    }
    c = load_config(f, env=env)
    assert (c.storage_backend, c.clickhouse_url, c.role) == (
        "clickhouse",
        "http://ch:8123",
        "query",
    )
    assert (c.clickhouse_user, c.clickhouse_password, c.clickhouse_database) == (
        "u",
        "p",
        "telemetry",
    )
    assert (c.clickhouse_cluster, c.state_url) == ("c1", PG)
    assert load_config(f, env={**env, "HERON_ROLE": "jobs"}, role="ingest").role == "ingest"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HERON_STORAGE_BACKEND": "sqlite"}, "storage_backend='sqlite': must be duckdb or"),
        ({"HERON_STORAGE_BACKEND": "clickhouse"}, "clickhouse_url='': is required"),
        ({**CH, "HERON_CLICKHOUSE_URL": "tcp://ch:9000"}, "clickhouse_url='tcp://ch:9000': must"),
        ({**CH, "HERON_CLICKHOUSE_DATABASE": "heron; DROP"}, "clickhouse_database='heron; DROP'"),
        ({**CH, "HERON_CLICKHOUSE_DATABASE": "1heron"}, "clickhouse_database='1heron'"),
        ({**CH, "HERON_CLICKHOUSE_CLUSTER": "a b"}, "clickhouse_cluster='a b'"),
        ({"HERON_ROLE": "web"}, "role='web': must be one of all, ingest, query, jobs"),
        ({"HERON_ROLE": "ingest"}, "role='ingest': needs storage backend clickhouse"),
        ({**CH, "HERON_ROLE": "jobs"}, "role='jobs': needs state_url"),
        ({"HERON_STATE_URL": PG}, "state_url=.*: needs storage backend clickhouse"),
        ({"HERON_CLICKHOUSE_CLUSTER": "prod"}, "clickhouse_cluster='prod': needs storage"),
        ({**CH, "HERON_STATE_URL": "mysql://db/heron"}, "state_url='mysql://db/heron': must be"),
    ],
)
def test_storage_and_role_errors_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(";", ".")):
        load_config(env=env)


def test_every_role_runs_on_clickhouse_with_shared_state() -> None:
    for role in ("all", "ingest", "query", "jobs"):
        c = load_config(env={**CH, "HERON_STATE_URL": PG, "HERON_ROLE": role})
        assert c.role == role


def test_passwords_are_never_shown() -> None:
    secret_url = "http://heron:url-secret@ch:8123"
    c = load_config(
        env={
            **CH,
            "HERON_CLICKHOUSE_URL": secret_url,
            "HERON_CLICKHOUSE_PASSWORD": "field-secret",
            "HERON_STATE_URL": PG,
        }
    )
    assert "secret" not in repr(c)
    # an error about a URL masks its password
    with pytest.raises(ConfigError) as err:
        load_config(env={**CH, "HERON_STATE_URL": "mysql://u:pg-secret@db/x"})
    assert "pg-secret" not in str(err.value) and "mysql://u:***@db/x" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(env={**CH, "HERON_CLICKHOUSE_URL": "tcp://u:ch-secret@ch:9000"})
    assert "ch-secret" not in str(err.value) and "tcp://u:***@ch:9000" in str(err.value)


def test_mask_url() -> None:
    assert mask_url("http://u:p%40ss@ch:8123/x?y=1") == "http://u:***@ch:8123/x?y=1"
    assert mask_url("postgresql://u@db/heron") == "postgresql://u@db/heron"
    assert mask_url("chdb:///var/lib/heron") == "chdb:///var/lib/heron"


def test_serve_log_line_names_role_and_storage_without_passwords() -> None:
    c = load_config(
        env={
            **CH,
            "HERON_CLICKHOUSE_URL": "http://heron:ch-secret@ch:8123",
            "HERON_STATE_URL": PG,
            "HERON_ROLE": "ingest",
            "HERON_CLICKHOUSE_CLUSTER": "prod",
        }
    )
    line = describe_storage(c)
    assert line == (
        "role ingest; storage: ClickHouse http://heron:***@ch:8123 database heron on cluster "
        "prod; state: postgresql://heron:***@db:5432/heron"
    )
    assert describe_storage(load_config(env={})) == (
        f"role all; storage: DuckDB file {Path('heron-data') / 'heron.duckdb'}"
    )


def test_clickhouse_dsn_merges_user_and_password() -> None:
    assert clickhouse_dsn("http://ch:8123") == "http://ch:8123"
    assert clickhouse_dsn("http://ch:8123", "heron", "p@ss:w/rd") == (
        "http://heron:p%40ss%3Aw%2Frd@ch:8123"
    )
    assert clickhouse_dsn("https://old:pw@ch:8443/x", "new") == "https://new:pw@ch:8443/x"
    assert clickhouse_dsn("http://ch:8123", password="pw") == "http://default:pw@ch:8123"
    assert clickhouse_dsn("chdb:///data/ch", "u", "p") == "chdb:///data/ch"


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-m", "heron", "serve", "--data-dir", str(tmp_path), *args],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_a_role_on_duckdb(tmp_path: Path) -> None:
    r = _serve(tmp_path, "--role", "ingest")
    assert r.returncode == 2
    assert "role='ingest': needs storage backend clickhouse" in r.stderr
    r = _serve(tmp_path, "--role", "web")
    assert r.returncode == 2 and "invalid choice: 'web'" in r.stderr


def test_serve_refuses_clickhouse_without_url_and_hides_the_password(tmp_path: Path) -> None:
    r = _serve(
        tmp_path, HERON_STORAGE_BACKEND="clickhouse", HERON_CLICKHOUSE_PASSWORD="never-shown"
    )
    assert r.returncode == 2
    assert "clickhouse_url='': is required with storage backend clickhouse" in r.stderr
    assert "never-shown" not in r.stderr + r.stdout


def test_serve_stops_when_clickhouse_is_unreachable(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    r = _serve(
        tmp_path,
        HERON_STORAGE_BACKEND="clickhouse",
        HERON_CLICKHOUSE_URL=f"http://heron:url-secret@127.0.0.1:{port}",
        HERON_CLICKHOUSE_PASSWORD="field-secret",
    )
    assert r.returncode == 1
    assert "heron: cannot connect to ClickHouse" in r.stderr
    assert f"storage: ClickHouse http://heron:***@127.0.0.1:{port} database heron" in r.stderr
    assert "secret" not in r.stderr + r.stdout


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HERON_RUM_ALLOWED_ORIGINS": "https://shop.example/path"}, "rum_allowed_origins"),
        ({"HERON_RUM_ALLOWED_ORIGINS": "shop.example"}, "rum_allowed_origins"),
        ({"HERON_RUM_BROWSER_KEY": "hk_not_a_browser_key_0123"}, "rum_browser_key"),
        ({"HERON_RUM_MAX_BODY_BYTES": "100"}, "rum_max_body_bytes"),
        ({"HERON_RUM_MAX_EVENTS": "0"}, "rum_max_events"),
        ({"HERON_RUM_RATE_PER_IP": "-1"}, "rum_rate_per_ip"),
        ({"HERON_RUM_RATE_PER_SESSION": "-0.5"}, "rum_rate_per_session"),
    ],
)
def test_bad_rum_values_name_the_key(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(env=env)


def test_rum_origins() -> None:
    config = load_config(
        env={"HERON_RUM_ALLOWED_ORIGINS": " https://shop.example/ ,http://127.0.0.1:8080,,*"}
    )
    assert config.rum_origin_list == ("https://shop.example", "http://127.0.0.1:8080", "*")
    assert Config().rum_origin_list == ()  # none allowed by default
    assert (Config().rum_max_body_bytes, Config().rum_max_events) == (65536, 200)
