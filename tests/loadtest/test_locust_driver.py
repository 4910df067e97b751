"""The built-in Locust driver as the CLI runs it: a child process speaking the
ready / go / result protocol, real Locust against the real shop app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loadtest.conftest import Shop

pytestmark = pytest.mark.e2e


def drive(*args: str) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    proc = subprocess.run(
        [sys.executable, "-m", "heron.loadtest.locust_driver", *args],
        input="go\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = proc.stdout.splitlines()
    assert lines and lines[0] == "ready", proc.stdout + proc.stderr
    (result,) = [json.loads(line[7:]) for line in lines if line.startswith("result ")]
    return proc, result


def test_paths_round_robin(offline_shop: Shop) -> None:
    proc, result = drive(
        "--target", offline_shop.url, "--path", "/a", "--path", "/b",
        "--users", "3", "--spawn-rate", "10", "--duration", "3", "--progress", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert result["tool"] == "locust" and result["host"] == offline_shop.url
    assert (result["users"], result["spawn_rate"]) == (3, 10.0)
    assert 2.5 < result["duration_s"] < 10
    a, b = result["endpoints"]["GET /a"], result["endpoints"]["GET /b"]
    # one sequence shared by all users: the paths alternate, so the counts differ by at
    # most the requests in flight when the load stopped (those are not counted)
    assert abs(a["requests"] - b["requests"]) <= 3, result
    assert result["requests"] == a["requests"] + b["requests"] > 20
    assert result["failures"] == 0
    assert "locust: " in proc.stderr and "req/s" in proc.stderr  # progress lines


def test_locustfile(offline_shop: Shop, tmp_path: Path) -> None:
    locustfile = tmp_path / "lf.py"
    locustfile.write_text(
        "from locust import HttpUser, task, constant\n"
        "class Shopper(HttpUser):\n"
        "    wait_time = constant(0.01)\n"
        "    @task\n"
        "    def b(self):\n"
        "        self.client.get('/b')\n"
    )
    proc, result = drive(
        "--target", offline_shop.url, "--locustfile", str(locustfile),
        "--users", "2", "--spawn-rate", "10", "--duration", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert set(result["endpoints"]) == {"GET /b"} and result["requests"] > 5
    assert result["locustfile"] == str(locustfile)


def test_parent_gone_before_go() -> None:
    """The CLI died before starting the window: the driver exits without loading."""
    proc = subprocess.run(
        [sys.executable, "-m", "heron.loadtest.locust_driver", "--target", "http://127.0.0.1:9"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "result" not in proc.stdout
