"""Alerting end to end over real sockets: a real ``heron serve`` subprocess with a rule
file, a gauge pushed as OTLP, and a local webhook receiver.

The rule fires → the receiver gets one firing notification; ``heron serve`` is killed
(SIGKILL) and restarted while the alert fires → no second firing notification (the
group's last send is in the state store); the gauge drops → the resolve arrives, once.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from heron.demo.alerts import AlertSink
from tests.conftest import HeronProcess, make_heron

pytestmark = pytest.mark.e2e

METRIC = "e2e.queue.depth"
RULE = "Queue too deep"
TICK_S = "0.5"
INTERVAL_S = 10


def rule_file(path: Path, hook_url: str) -> Path:
    path.write_text(
        f"""
[[channel]]
name = "e2e webhook"
config = {{ type = "webhook", url = {json.dumps(hook_url)} }}

[[rule]]
name = "{RULE}"
severity = "critical"
interval = "{INTERVAL_S}s"
for = "0s"
group_wait = "0s"
group_interval = "0s"
repeat_interval = "1h"
channels = ["e2e webhook"]
group_by = ["alertname", "queue"]
condition = {{ kind = "metric", metric = "{METRIC}", agg = "last", by = ["queue"], window = "2m", op = ">", threshold = 5 }}
annotations = {{ summary = "queue {{{{ labels.queue }}}} holds {{{{ value }}}} jobs" }}
"""
    )
    return path


def gauge(value: float) -> dict[str, Any]:
    """One OTLP-JSON gauge point of METRIC for queue q1, stamped now."""
    point = {
        "timeUnixNano": str(time.time_ns()),
        "asDouble": value,
        "attributes": [{"key": "queue", "value": {"stringValue": "q1"}}],
    }
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "worker"}}]
                },
                "scopeMetrics": [{"metrics": [{"name": METRIC, "gauge": {"dataPoints": [point]}}]}],
            }
        ]
    }


class Feeder:
    """Pushes the gauge's current value every half second while running."""

    def __init__(self) -> None:
        self.value = 0.0
        self.heron: HeronProcess | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            h = self.heron
            if h is None:
                continue
            with contextlib.suppress(httpx.HTTPError):  # the server is restarting
                httpx.post(
                    f"{h.url}/v1/metrics",
                    json=gauge(self.value),
                    headers={"x-heron-key": h.key},
                    timeout=5,
                )


def notifications(sink: AlertSink) -> list[dict[str, Any]]:
    return [r["payload"] for r in sink.snapshot() if isinstance(r["payload"], dict)]


def by_status(sink: AlertSink, status: str) -> list[dict[str, Any]]:
    return [p for p in notifications(sink) if p.get("status") == status]


def wait_until(what: str, check: Any, timeout: float, h: HeronProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{h.log()[-4000:]}")


@pytest.fixture
def sink() -> Iterator[AlertSink]:
    s = AlertSink().start()
    yield s
    s.stop()


def test_fires_once_survives_a_kill_and_resolves(tmp_path: Path, sink: AlertSink) -> None:
    rules = rule_file(tmp_path / "rules.toml", sink.url + "/hook")
    env = {
        "HERON_ALERT_RULES_PATH": str(rules),
        "HERON_ALERT_ALLOWED_HOSTS": "127.0.0.1",
        "HERON_ALERT_TICK_S": TICK_S,
    }
    h = make_heron(tmp_path, **env).start()
    feeder = Feeder()
    feeder.heron, feeder.value = h, 42.0
    feeder.thread.start()
    try:
        wait_until("the firing notification", lambda: by_status(sink, "firing"), 60, h)
        firing = by_status(sink, "firing")
        assert len(firing) == 1
        alert = firing[0]["alerts"][0]
        assert alert["labels"]["alertname"] == RULE
        assert alert["labels"]["queue"] == "q1"
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["summary"] == "queue q1 holds 42.0 jobs"
        assert alert["status"] == "firing"

        # Kill the server while the alert fires, start it again on the same data.
        assert h.stop(signal.SIGKILL) == -signal.SIGKILL
        feeder.heron = h = make_heron(tmp_path, **env).start()
        # Two evaluation intervals with the condition still true: nothing new is sent.
        time.sleep(2.5 * INTERVAL_S)
        assert len(by_status(sink, "firing")) == 1, notifications(sink)
        assert by_status(sink, "resolved") == []

        feeder.value = 1.0
        wait_until("the resolve notification", lambda: by_status(sink, "resolved"), 60, h)
        time.sleep(INTERVAL_S)
        resolved = by_status(sink, "resolved")
        assert len(resolved) == 1, notifications(sink)
        assert resolved[0]["alerts"][0]["labels"]["queue"] == "q1"
        assert resolved[0]["alerts"][0]["status"] == "resolved"
        assert len(by_status(sink, "firing")) == 1
        assert sink.snapshot()[0]["path"] == "/hook"
    finally:
        feeder.stop.set()
        feeder.thread.join(5)
        h.stop()
