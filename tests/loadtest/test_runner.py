"""The command runner and the CLI's own checks, with real subprocesses (no server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from heron.loadtest.runner import CommandResult, parse_duration, run_command


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("30", "30s", "2m", "1m30s", "1h", "0.5s")] == [
        30, 30, 120, 90, 3600, 0.5,
    ]  # fmt: skip
    for bad in ("", "1x", "m", "30 s s", "-1s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_exit_codes_and_status() -> None:
    assert run_command([sys.executable, "-c", "pass"]) == CommandResult(0, False)
    failed = run_command([sys.executable, "-c", "import sys; sys.exit(4)"])
    assert (failed.exit_code, failed.status) == (4, "failed")
    killed = run_command([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"])
    assert (killed.exit_code, killed.status) == (137, "failed")
    missing = run_command(["/nonexistent/load-tool"])
    assert (missing.exit_code, missing.status) == (127, "failed")


def test_sigterm_is_forwarded_to_the_command(tmp_path: Path) -> None:
    """A CI runner cancelling the job signals heron; the command gets it and can clean up;
    the run ends ``aborted``."""
    marker = tmp_path / "got-term"
    script = textwrap.dedent(
        f"""
        import signal, sys, time
        from heron.loadtest.runner import run_command
        child = '''
        import signal, sys, time, pathlib
        def bye(*_):
            pathlib.Path({str(marker)!r}).write_text("term")
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print("child ready", flush=True)
        time.sleep(30)
        '''
        r = run_command([sys.executable, "-c", child])
        print("result", r.exit_code, r.status, flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "child ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert out.strip() == "result 0 aborted"
    assert marker.read_text() == "term"


def heron(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERON_")}
    return subprocess.run(
        [sys.executable, "-m", "heron", "loadtest", *args],
        capture_output=True,
        text=True,
        env={**env, "HERON_URL": "http://127.0.0.1:9"},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--name", "x"], "either a command after -- or --target"),
        (["run", "--name", "x", "--target", "http://a", "--", "true"], "either a command"),
        (["run", "--name", "x", "--path", "/a", "--", "true"], "add --target"),
        (["run", "--name", "x", "--target", "http://a", "--duration", "5x"], "not a duration"),
        (["run", "--name", "x", "--label", "nokey", "--", "true"], "expected key=value"),
        (["stop"], "which run?"),
        (["list"], "cannot reach http://127.0.0.1:9"),
    ],
)
def test_usage_and_unreachable_server_exit_2(args: list[str], message: str) -> None:
    r = heron(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_the_cli_process_stays_light() -> None:
    """Locust monkey-patches the standard library on import: it must stay in the driver
    child; and the client needs no server code (it starts fast on a CI runner)."""
    code = (
        "import sys\n"
        "from heron.cli import build_parser\n"
        "build_parser().parse_args(['loadtest', 'list'])\n"
        "import heron.loadtest.cli, heron.loadtest.report\n"
        "heavy = ('locust', 'gevent', 'numpy', 'scipy', 'heron.server', 'duckdb')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
