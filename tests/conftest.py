"""Shared fixtures: a real ``heron serve`` subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings

# Property tests judge the code, not the machine: no per-example deadline and no "data
# generation too slow" failure when other suites share the two cores; CI draws the
# same examples every run (derandomize) so a red run can be reproduced.
settings.register_profile(
    "heron",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
)
settings.load_profile("heron")

TEST_INGEST_KEY = "hk_test_ingest_key_0123456789"
TEST_API_TOKEN = "ht_test_api_token_0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HeronProcess:
    """A running ``heron serve``; ``url`` is its base URL."""

    data_dir: Path
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log_file: object = None
    key: str = TEST_INGEST_KEY
    token: str = TEST_API_TOKEN
    extra_env: dict[str, str] = field(default_factory=dict)
    heron: tuple[str, ...] = (sys.executable, "-m", "heron")  # the command; tests/e2e/test_wheel.py
    cwd: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> HeronProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_file = log
        self.proc = subprocess.Popen(
            [
                *self.heron,
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"heron serve exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"heron serve did not become healthy:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        try:
            if self.proc is None or self.proc.poll() is not None:
                return self.proc.returncode if self.proc else None
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        finally:
            if self._log_file is not None:
                self._log_file.close()  # type: ignore[attr-defined]
                self._log_file = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, path: str, **params: object) -> httpx.Response:
        """GET a read-API route with the test token."""
        return httpx.get(
            f"{self.url}{path}",
            params=params,  # type: ignore[arg-type]
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def wait_for(self, path: str, predicate, timeout: float = 30.0, **params: object):  # type: ignore[no-untyped-def]
        """Poll a read-API route until ``predicate(json)`` is truthy; return the JSON."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = self.api(path, **params)
            if r.status_code == 200:
                last = r.json()
                if predicate(last):
                    return last
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting on {path} {params}; last answer: {last}")


def make_heron(tmp_path: Path, **extra_env: str) -> HeronProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "OTEL_"))}
    env.update(
        HERON_INGEST_KEY=TEST_INGEST_KEY,
        HERON_API_TOKEN=TEST_API_TOKEN,
        HERON_COMMIT_INTERVAL_MS="5",
        **extra_env,
    )
    return HeronProcess(
        data_dir=tmp_path / "heron-data", port=free_port(), env=env, log_path=tmp_path / "heron.log"
    )


@pytest.fixture
def heron_server(tmp_path: Path) -> Iterator[HeronProcess]:
    """A fresh ``heron serve`` subprocess with known ingest key and API token."""
    h = make_heron(tmp_path).start()
    yield h
    h.stop()


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chdb opens one data directory per process: every in-process ClickHouse store of
    the session shares it, each in its own database (``tests/server/backends.py``)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def chdb_http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ClickHouse over HTTP that several processes can share: ``tests/support/chdb_server.py``
    (ClickHouse's HTTP interface in front of the chdb engine) in a subprocess, on a free
    port with a data directory of its own. The URL carries the credentials it checks."""
    root = tmp_path_factory.mktemp("chdb-http")
    port, password = free_port(), os.urandom(8).hex()
    url = f"http://127.0.0.1:{port}"
    with open(root / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.chdb_server", "--port", str(port)]
            + ["--path", str(root / "data"), "--user", "heron", "--password", password],
            cwd=Path(__file__).resolve().parents[1],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not _answers_ping(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"chdb_server did not start:\n{(root / 'server.log').read_text()}"
                )
            time.sleep(0.1)
        yield f"http://heron:{password}@127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers_ping(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ping", timeout=1).text == "Ok.\n"
    except httpx.HTTPError:
        return False
