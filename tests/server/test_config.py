"""Config: TOML + HERON_* env, validated with errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from heron.server.config import Config, ConfigError, load_config


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
