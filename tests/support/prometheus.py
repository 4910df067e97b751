"""A real Prometheus (Debian's ``/usr/bin/prometheus``) for tests, and ``promtool``.

``start_prometheus(root, scrape_configs=[...], remote_write=[...])`` writes a config
under ``root`` (the TSDB too), starts Prometheus on a free loopback port and waits until
it is ready; :meth:`Prometheus.query` asks its HTTP API. The config is written as JSON,
which Prometheus reads as YAML. A scrape job of a Heron server, with its API token::

    heron_job("heron", h.url, token=h.token)

and a remote-write target, e.g. ``{"url": f"{h.url}/api/v1/write",
"authorization": {"credentials": key}}``. Prometheus or promtool missing fails the test
(install: ``scripts/install_prometheus.sh``, run by ``make install``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

INSTALL_HINT = "install Debian's prometheus package: scripts/install_prometheus.sh"


def _binary(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(path).exists():
        raise RuntimeError(f"{name} not found; {INSTALL_HINT}")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def promtool_check_metrics(text: str | bytes) -> tuple[int, str]:
    """``promtool check metrics`` of an exposition: (exit code, its output)."""
    data = text.encode() if isinstance(text, str) else text
    done = subprocess.run(
        [_binary("promtool"), "check", "metrics"], input=data, capture_output=True, timeout=60
    )
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def heron_job(
    name: str, base_url: str, *, token: str | None, interval: str = "1s"
) -> dict[str, Any]:
    """A scrape job of a Heron server's ``/metrics``, sending ``token`` as bearer."""
    job: dict[str, Any] = {
        "job_name": name,
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "metrics_path": "/metrics",
        "static_configs": [{"targets": [urlsplit(base_url).netloc]}],
    }
    if token is not None:
        job["authorization"] = {"type": "Bearer", "credentials": token}
    return job


@dataclass
class Prometheus:
    """A running Prometheus; ``url`` is its HTTP API's base."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of an instant query (``/api/v1/query``)."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        doc = r.json()
        assert doc["status"] == "success", doc
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The one sample of an instant query, None when there is none."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait_for(
        self, expr: str, predicate: Callable[[float | None], bool], timeout: float = 60.0
    ) -> float | None:
        """Poll ``value(expr)`` until ``predicate`` holds; fail with the last value."""
        deadline = time.monotonic() + timeout
        last: float | None = None
        while time.monotonic() < deadline:
            last = self.value(expr)
            if predicate(last):
                return last
            time.sleep(0.25)
        raise AssertionError(f"timed out on {expr!r}; last value {last}; targets: {self.targets()}")

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with their health and last error."""
        doc = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return [
            {k: t.get(k) for k in ("scrapePool", "health", "lastError")}
            for t in doc["data"]["activeTargets"]
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_prometheus(
    root: Path,
    *,
    scrape_configs: list[dict[str, Any]] | None = None,
    remote_write: list[dict[str, Any]] | None = None,
    scrape_interval: str = "1s",
    timeout: float = 60.0,
) -> Prometheus:
    """Prometheus with this config (data and log under ``root``), ready to query."""
    root.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": scrape_configs or [],
    }
    if remote_write:
        config["remote_write"] = remote_write
    config_path = root / "prometheus.yml"
    config_path.write_text(json.dumps(config, indent=2))
    port = _free_port()
    log_path = root / "prometheus.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                _binary("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=info",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    prom = Prometheus(proc, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited early:\n{prom.log()}")
        try:
            if httpx.get(f"{prom.url}/-/ready", timeout=1).status_code == 200:
                return prom
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    prom.stop()
    raise RuntimeError(f"prometheus did not become ready:\n{prom.log()}")
