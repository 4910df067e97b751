"""The logging handler: records arrive as OTLP logs with trace ids, severities and code
attributes; error records carry an event; heron never logs its own export in a loop.

Each case runs ``heron.init()`` in a subprocess against a real OTLP receiver.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from heron._scrub import FILTERED
from tests.agent.helpers import agent_env, python
from tests.agent.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.e2e

APP = """
import logging, os, heron
heron.init(service="logs", endpoint=os.environ["RECEIVER"], release="7.1", {options})
logging.basicConfig(level=logging.DEBUG, format="app: %(message)s")  # still works after init
for name in ("urllib3", "opentelemetry", "heron"):
    logging.getLogger(name).setLevel(logging.DEBUG)
log = logging.getLogger("shop.orders")
log.debug("debug line")
with heron.span("GET /orders") as span:
    ctx = span.get_span_context()
    print("trace", format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))
    log.info("order %s created for token=%s", 42, "s3cr3t" + "value")
    log.warning("stock low")
    try:
        {{}}["missing"]
    except KeyError:
        log.exception("lookup failed")
log.error("payment declined")
log.critical("disk full")
heron.flush()
heron.flush()  # a second export, while debug logging is on: must not feed itself
"""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


def run(tmp_path: Path, receiver: OtlpReceiver, options: str = "") -> tuple[str, str, str]:
    script = tmp_path / "app.py"
    script.write_text(APP.format(options=options))
    env = agent_env(tmp_path, RECEIVER=receiver.url)
    done = subprocess.run(
        python(str(script)), env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "app: stock low" in done.stderr  # the app's own logging config was applied
    trace_id, span_id = done.stdout.split()[1:3]
    return trace_id, span_id, done.stderr


def test_records_arrive_with_trace_ids_severity_and_events(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    trace_id, span_id, _ = run(tmp_path, receiver)
    receiver.wait(lambda r: any(x["body"] == "disk full" for x in r.logs))
    by_body = {r["body"]: r for r in receiver.logs}
    assert set(by_body) == {
        f"order 42 created for token={FILTERED}",
        "stock low",
        "lookup failed",
        "payment declined",
        "disk full",
    }  # no DEBUG (log_level INFO), and nothing from urllib3, OpenTelemetry or heron
    info = by_body[f"order 42 created for token={FILTERED}"]
    assert (info["trace_id"], info["span_id"]) == (trace_id, span_id)
    assert info["scope"] == "shop.orders" and info["resource"]["service.version"] == "7.1"
    assert info["attributes"]["code.function.name"] == "<module>"
    assert info["attributes"]["code.file.path"].endswith("app.py")
    assert isinstance(info["attributes"]["code.line.number"], int)
    assert "heron.event" not in info["attributes"]
    severities = {b: (r["severity_number"], r["severity_text"]) for b, r in by_body.items()}
    assert severities["stock low"] == (13, "WARN")
    assert severities["payment declined"] == (17, "ERROR")
    assert severities["disk full"] == (21, "FATAL")
    assert by_body["payment declined"]["trace_id"] == ""  # outside any span

    failed = by_body["lookup failed"]
    assert failed["attributes"]["exception.type"] == "KeyError"
    assert "Traceback (most recent call last)" in failed["attributes"]["exception.stacktrace"]
    event = json.loads(failed["attributes"]["heron.event"])
    assert event["logger"] == "shop.orders" and event["message"] == "lookup failed"
    assert event["exception"]["values"][0]["mechanism"] == {"type": "logging", "handled": True}
    assert event["contexts"]["trace"] == {"trace_id": trace_id, "span_id": span_id}
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
    assert crumbs == [f"order 42 created for token={FILTERED}", "stock low"]  # this trace's
    declined = json.loads(by_body["payment declined"]["attributes"]["heron.event"])
    assert (declined["level"], declined["message"]) == ("error", "payment declined")
    assert "exception" not in declined
    assert json.loads(by_body["disk full"]["attributes"]["heron.event"])["level"] == "fatal"
    assert b"s3cr3tvalue" not in receiver.raw("/v1/logs")


def test_logs_off_still_sends_error_events(tmp_path: Path, receiver: OtlpReceiver) -> None:
    run(tmp_path, receiver, "logs=False")
    receiver.wait(lambda r: len(r.logs) >= 3)
    assert sorted(r["body"] for r in receiver.logs) == [
        "disk full",
        "lookup failed",
        "payment declined",
    ]
    assert all("heron.event" in r["attributes"] for r in receiver.logs)


def test_log_level_option(tmp_path: Path, receiver: OtlpReceiver) -> None:
    run(tmp_path, receiver, 'log_level="DEBUG"')
    receiver.wait(lambda r: any(x["body"] == "disk full" for x in r.logs))
    assert any(r["body"] == "debug line" and r["severity_number"] == 5 for r in receiver.logs)
    assert not [
        r for r in receiver.logs if r["scope"].startswith(("urllib3", "opentelemetry", "heron"))
    ]


def test_events_the_app_drops_are_marked_so_the_server_makes_none(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    """before_send returning None (here: for the KeyError) and ignore_exceptions keep the
    log line but mark it, so the server does not turn the ERROR record into an event."""
    run(
        tmp_path,
        receiver,
        "before_send=lambda e, h: None if 'KeyError' in str(e.get('exception')) else e",
    )
    receiver.wait(lambda r: any(x["body"] == "disk full" for x in r.logs))
    by_body = {r["body"]: r for r in receiver.logs}
    dropped = by_body["lookup failed"]["attributes"]
    assert dropped.get("heron.event_dropped") is True and "heron.event" not in dropped
    kept = by_body["payment declined"]["attributes"]
    assert "heron.event" in kept and "heron.event_dropped" not in kept
