"""Fixtures of the load-test tests: a real ``heron serve`` and the instrumented shop app,
both once per module (each run takes seconds; the tests share the server's runs)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.agent.helpers import Procs, agent_env, closed_port, free_port, python
from tests.conftest import HeronProcess, make_heron

HERE = Path(__file__).parent


@dataclass
class Shop:
    url: str

    def slow(self, path: str, factor: float) -> None:
        """Turn the app's slowdown knob (between runs: outside every run's window)."""
        r = httpx.get(f"{self.url}/admin/slow", params={"path": path, "factor": factor})
        r.raise_for_status()


def start_shop(procs: Procs, tmp: Path, heron_url: str, key: str) -> Shop:
    port = free_port()
    env = agent_env(tmp, HERON_URL=heron_url, KEY=key, PORT=str(port))
    proc = procs.start(python(str(HERE / "shop_app.py")), env, "shop")
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(proc, f"{url}/b")
    return Shop(url)


@pytest.fixture(scope="module")
def lt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeronProcess]:
    h = make_heron(tmp_path_factory.mktemp("heron")).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def shop(lt_server: HeronProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("shop")
    procs = Procs(tmp)
    try:
        yield start_shop(procs, tmp, lt_server.url, lt_server.key)
    finally:
        for started, _ in procs.started:
            procs.kill(started)


@pytest.fixture(scope="module")
def offline_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The shop exporting nowhere: for the Locust driver alone."""
    tmp = tmp_path_factory.mktemp("offline-shop")
    procs = Procs(tmp)
    try:
        yield start_shop(procs, tmp, f"http://127.0.0.1:{closed_port()}", "k")
    finally:
        for started, _ in procs.started:
            procs.kill(started)


def heron_cli(
    h: HeronProcess, *args: str, token: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``heron loadtest ARGS`` against ``h``, as a user runs it (a subprocess)."""
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "GITHUB_"))}
    full_env.update(env or {})
    full_env.update(HERON_URL=h.url, HERON_API_TOKEN=token if token is not None else h.token)
    return subprocess.run(
        [sys.executable, "-m", "heron", "loadtest", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
