"""Prometheus exposition from the app: ``heron.metrics_app()`` under gunicorn with two
workers (a shared HERON_PROMETHEUS_DIR), ``prometheus=<port>``, checked by ``promtool``."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.agent.helpers import APPS, Procs, agent_env, closed_port, free_port, python

pytestmark = pytest.mark.e2e

PROMTOOL = "/usr/bin/promtool"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
            out.append((labels, float(m.group(3))))
    return out


def promtool_check(text: str) -> None:
    if shutil.which(PROMTOOL) is None:
        pytest.fail(f"{PROMTOOL} is missing (apt-get install prometheus)")
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    # promtool exits 0 when clean; lint remarks (not errors) would make it non-zero too.
    assert done.returncode == 0, done.stdout + done.stderr


def test_gunicorn_workers_are_all_in_one_scrape(procs: Procs, tmp_path: Path) -> None:
    port = free_port()
    shared = tmp_path / "prom"
    proc = procs.start(
        python(
            "-m",
            "gunicorn",
            "--preload",
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--threads",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(APPS),
            "prom_app:app",
        ),
        agent_env(
            tmp_path,
            HERON_SERVICE="shop",
            HERON_RELEASE="9.9",
            HERON_ENDPOINT=f"http://127.0.0.1:{closed_port()}",
            OTEL_METRICS_EXPORTER="none",
            OTEL_METRIC_EXPORT_INTERVAL="200",
            HERON_PROMETHEUS_DIR=str(shared),
        ),
        "gunicorn",
    )
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(proc, f"{url}/metrics")
    pids: set[int] = set()
    sent = 0
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(8) as pool:
        while len(pids) < 2 and time.monotonic() < deadline:
            answers = list(pool.map(lambda _: httpx.get(f"{url}/work", timeout=10), range(16)))
            sent += len(answers)
            pids |= {a.json()["pid"] for a in answers}
    assert len(pids) == 2, "both workers should have answered"
    time.sleep(1.0)  # each worker writes its snapshot every 200 ms
    for _ in range(4):  # whichever worker answers the scrape, all workers are in it
        text = httpx.get(f"{url}/metrics", timeout=10).text
        orders = samples(text, "orders_placed_total")
        assert {int(labels["process_pid"]) for labels, _ in orders} == pids, text[:2000]
        assert sum(value for _, value in orders) == sent
        assert all(labels["service_name"] == "shop" for labels, _ in orders)
        assert all(labels["service_version"] == "9.9" for labels, _ in orders)
        assert all(labels["country"] == "FR" for labels, _ in orders)
        counts = samples(text, "payment_amount_EUR_count") or samples(text, "payment_amount_count")
        assert sum(v for _, v in counts) == sent
    assert "# TYPE orders_placed_total counter" in text
    assert "# TYPE process_memory_usage_bytes gauge" in text
    assert samples(text, "process_cpu_time_seconds_total")
    promtool_check(text)


def test_prometheus_port_serves_the_metrics(tmp_path: Path, procs: Procs) -> None:
    port = free_port()
    program = f"""
        import time, heron
        heron.init(prometheus={port}, runtime_metrics=False, host_metrics=False)
        for i in range(5):
            heron.record_metric("jobs.done", 1, "counter", queue="email")
        for v in (0.1, 0.2, 0.7):
            heron.histogram("job.duration", unit="s").record(v)
        print("ready", flush=True)
        time.sleep(60)
    """
    env = agent_env(tmp_path, HERON_SERVICE="worker", OTEL_METRICS_EXPORTER="none")
    proc = procs.start(python("-c", textwrap.dedent(program)), env, "app")
    procs.wait_http(proc, f"http://127.0.0.1:{port}/metrics")
    # The port answers from init on; scrape once the program has recorded ("ready").
    deadline = time.monotonic() + 30
    while "ready" not in procs.log(proc) and time.monotonic() < deadline:
        time.sleep(0.05)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    ((labels, value),) = samples(text, "jobs_done_total")
    assert value == 5 and labels["queue"] == "email" and labels["service_name"] == "worker"
    assert [v for _, v in samples(text, "job_duration_seconds_count")] == [3]
    assert abs(samples(text, "job_duration_seconds_sum")[0][1] - 1.0) < 1e-9
    buckets = {lab["le"]: v for lab, v in samples(text, "job_duration_seconds_bucket")}
    assert buckets["+Inf"] == 3 and buckets["0.0"] == 0
    assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404
    promtool_check(text)


def test_metrics_app_without_prometheus_answers_503(tmp_path: Path) -> None:
    program = """
        import heron
        heron.init(metrics=False)
        status = []
        body = heron.metrics_app()({"REQUEST_METHOD": "GET"}, lambda s, h: status.append(s))
        print(status[0], b"".join(body).decode().strip())
    """
    done = subprocess.run(
        python("-c", textwrap.dedent(program)),
        env=agent_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("503 ")


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("process.cpu.time", "s", "counter", "process_cpu_time_seconds_total"),
        ("process.memory.usage", "By", "gauge", "process_memory_usage_bytes"),
        ("system.cpu.utilization", "1", "gauge", "system_cpu_utilization_ratio"),
        ("process.thread.count", "{thread}", "gauge", "process_threads"),
        ("orders.placed", "{order}", "counter", "orders_placed_total"),
        ("http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"),
        ("jobs_total", "", "counter", "jobs_total"),
        ("9lives", "", "gauge", "_9lives"),
        ("naïve-name", "", "gauge", "na_ve_name"),
    ],
)
def test_metric_names(name: str, unit: str, kind: str, expected: str) -> None:
    from heron.agent.prometheus import metric_name

    assert metric_name(name, unit, kind) == expected


def test_label_values_are_escaped() -> None:
    from heron.agent.prometheus import render

    family = {
        "name": "x",
        "type": "gauge",
        "help": "a\nb",
        "samples": [["", {"path": 'a"b\\c\nd', "ok": True}, 1.5]],
    }
    text = render([[family]])
    assert 'x{path="a\\"b\\\\c\\nd",ok="true"} 1.5' in text
    assert "# HELP x a\\nb" in text
    promtool_check(text)
