"""Unhandled exceptions outside frameworks: ``sys.excepthook`` (the process crashes),
``threading.excepthook`` and asyncio's exception handler, in subprocesses running
``heron.init()`` against a real OTLP receiver. The previous hooks still run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import agent_env, python
from tests.agent.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.e2e

PRELUDE = """
import os, heron
heron.init(service="hooks", endpoint=os.environ["RECEIVER"])
"""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


def run(tmp_path: Path, receiver: OtlpReceiver, body: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app.py"
    script.write_text(PRELUDE + body)
    env = agent_env(tmp_path, RECEIVER=receiver.url)
    return subprocess.run(
        python(str(script)), env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


def only_event(receiver: OtlpReceiver) -> dict[str, Any]:
    receiver.wait(lambda r: bool(r.events()))
    (event,) = receiver.events()
    return event


def test_a_crash_is_sent_before_the_process_exits(tmp_path: Path, receiver: OtlpReceiver) -> None:
    done = run(
        tmp_path,
        receiver,
        """
def load_config(path):
    raise FileNotFoundError(f"no config at {path}")

load_config("/etc/shop.toml")
""",
    )
    assert done.returncode == 1
    assert "FileNotFoundError: no config at /etc/shop.toml" in done.stderr  # default hook ran
    event = only_event(receiver)  # already received: the exit flushed it
    (exc,) = event["exception"]["values"]
    assert exc["type"] == "FileNotFoundError"
    assert exc["mechanism"] == {"type": "excepthook", "handled": False}
    assert [f["function"] for f in exc["stacktrace"]["frames"]] == ["<module>", "load_config"]
    assert exc["stacktrace"]["frames"][-1]["context_line"].strip().startswith("raise FileNotFound")


def test_threading_excepthook_captures_and_chains(tmp_path: Path, receiver: OtlpReceiver) -> None:
    done = run(
        tmp_path,
        receiver,
        """
import threading
seen = []
previous = threading.excepthook
threading.excepthook = lambda args: (seen.append(args.exc_type.__name__), previous(args))
heron.init()  # already initialised: does nothing
def work():
    raise ZeroDivisionError("in a worker")
t = threading.Thread(target=work)
t.start(); t.join()
print("seen", seen)
""",
    )
    assert done.returncode == 0, done.stderr
    event = only_event(receiver)
    (exc,) = event["exception"]["values"]
    assert (exc["type"], exc["mechanism"]["type"]) == ("ZeroDivisionError", "threading")
    assert exc["stacktrace"]["frames"][-1]["function"] == "work"


def test_threading_hook_installed_before_the_app_chains_to_the_app_hook(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    done = run(
        tmp_path,
        receiver,
        """
import threading
def work():
    raise ZeroDivisionError("in a worker")
t = threading.Thread(target=work)
t.start(); t.join()
""",
    )
    assert done.returncode == 0 and "ZeroDivisionError: in a worker" in done.stderr
    assert only_event(receiver)["exception"]["values"][0]["type"] == "ZeroDivisionError"


def test_asyncio_task_exception_never_retrieved(tmp_path: Path, receiver: OtlpReceiver) -> None:
    done = run(
        tmp_path,
        receiver,
        """
import asyncio, gc

async def charge():
    raise ConnectionError("payment gateway down")

async def main():
    task = asyncio.get_running_loop().create_task(charge())
    await asyncio.sleep(0.05)
    del task
    gc.collect()

asyncio.run(main())
""",
    )
    assert done.returncode == 0, done.stderr
    assert "Task exception was never retrieved" in done.stderr  # asyncio's own report
    event = only_event(receiver)
    (exc,) = event["exception"]["values"]
    assert (exc["type"], exc["mechanism"]["type"]) == ("ConnectionError", "asyncio")
    assert exc["stacktrace"]["frames"][-1]["function"] == "charge"
    # asyncio logged it too: that record points at the event instead of repeating it.
    receiver.wait(lambda r: bool(r.logs_with("heron.event_ref")))
    (ref,) = receiver.logs_with("heron.event_ref")
    assert ref["attributes"]["heron.event_ref"] == event["event_id"] and ref["scope"] == "asyncio"
