"""Fork safety: ``gunicorn --preload`` with 3 sync workers, heron.init() run in the master.

Each worker must export its own spans (over its own connection), labelled with its own
``process.pid`` and ``service.instance.id``, while running and when it exits.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.helpers import APPS, Procs, agent_env, free_port, python, server_spans, wait_spans

pytestmark = pytest.mark.e2e

WORKERS = 3


def _start_gunicorn(heron_server: Any, procs: Procs, tmp_path: Path, **env: str) -> tuple[Any, str]:
    port = free_port()
    proc = procs.start(
        python(
            "-m",
            "gunicorn",
            "--preload",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(APPS),
            "--graceful-timeout",
            "10",
            "preload_app:app",
        ),
        agent_env(
            tmp_path,
            HERON_SERVICE="preforked",
            HERON_ENDPOINT=heron_server.url,
            HERON_KEY=heron_server.key,
            **env,
        ),
        "gunicorn",
    )
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(proc, f"{url}/work")
    return proc, url


def _hit_every_worker(url: str, timeout: float = 30.0) -> tuple[set[int], int]:
    """Send waves of concurrent slow requests until every worker has answered one."""
    pids: set[int] = set()
    master = 0
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(WORKERS * 2) as pool:
        while len(pids) < WORKERS and time.monotonic() < deadline:
            answers = pool.map(
                lambda _: httpx.get(f"{url}/work", timeout=10).json(), range(WORKERS * 2)
            )
            for answer in answers:
                pids.add(answer["pid"])
                master = answer["master"]
    assert len(pids) == WORKERS, f"only workers {pids} answered"
    return pids, master


def _by_pid(spans: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for s in server_spans(spans, "preforked"):
        out.setdefault(s["resource"]["process.pid"], []).append(s)
    return out


def test_every_preforked_worker_exports_its_spans(
    heron_server: Any, procs: Procs, tmp_path: Path
) -> None:
    proc, url = _start_gunicorn(heron_server, procs, tmp_path)
    pids, master = _hit_every_worker(url)
    assert master not in pids and master == proc.pid  # the app was imported in the master

    spans = wait_spans(heron_server, lambda s: pids <= set(_by_pid(s)), service="preforked")
    by_pid = _by_pid(spans)
    assert set(by_pid) == pids  # nothing is attributed to the master
    instance_ids = {
        s["resource"]["service.instance.id"] for group in by_pid.values() for s in group
    }
    assert len(instance_ids) == WORKERS
    for group in by_pid.values():
        assert all(s["name"] == "GET /work" and s["duration_ms"] >= 150 for s in group)
    assert "heron agent internal error" not in procs.log(proc)
    assert procs.stop(proc) == 0


def test_workers_flush_when_gunicorn_stops(heron_server: Any, procs: Procs, tmp_path: Path) -> None:
    # Nothing is exported on schedule within the test: only the exit-time flush sends.
    proc, url = _start_gunicorn(heron_server, procs, tmp_path, OTEL_BSP_SCHEDULE_DELAY="600000")
    pids, _ = _hit_every_worker(url)
    time.sleep(1.0)
    assert not _by_pid(wait_spans(heron_server, lambda s: True, service="preforked"))

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    wait_spans(heron_server, lambda s: pids <= set(_by_pid(s)), service="preforked", timeout=15)
