"""``heron run -- <command>`` instruments a program that never imports heron."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from heron.agent.run import BOOTSTRAP_DIR, run_command, with_bootstrap
from tests.agent.helpers import APPS, Procs, agent_env, free_port, python, server_spans, wait_spans


@pytest.mark.e2e
def test_heron_run_instruments_an_unmodified_flask_app(
    heron_server: Any, procs: Procs, tmp_path: Path
) -> None:
    port = free_port()
    env = agent_env(
        tmp_path,
        HERON_SERVICE="unmodified",
        HERON_ENDPOINT=heron_server.url,
        HERON_KEY=heron_server.key,
        HERON_RELEASE="9.9",
    )
    app = procs.start(
        python("-m", "heron", "run", "--", "python", str(APPS / "plain_flask.py"), str(port)),
        env,
        "plain_flask",
    )
    procs.wait_http(app, f"http://127.0.0.1:{port}/health")
    for name in ("ada", "grace"):
        assert (
            httpx.get(f"http://127.0.0.1:{port}/hello/{name}", timeout=10).text == f"hello {name}"
        )

    spans = wait_spans(
        heron_server,
        lambda s: (
            len([x for x in server_spans(s, "unmodified") if x["name"] == "GET /hello/<name>"]) == 2
        ),
        service="unmodified",
    )
    hello = [s for s in server_spans(spans, "unmodified") if s["name"] == "GET /hello/<name>"]
    assert {s["attributes"]["url.path"] for s in hello} == {"/hello/ada", "/hello/grace"}
    assert all(s["attributes"]["http.route"] == "/hello/<name>" for s in hello)
    assert all(s["duration_ms"] >= 20 and s["release"] == "9.9" for s in hello)
    assert {s["resource"]["process.pid"] for s in hello} == {app.pid}  # exec'd: same process

    assert procs.stop(app) == 0
    assert "heron run: the agent did not start" not in procs.log(app)


def test_heron_run_keeps_the_sitecustomize_it_shadows(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "sitecustomize.py").write_text("import os\nos.environ['OWN_SITECUSTOMIZE'] = 'ran'\n")
    env = agent_env(tmp_path, PYTHONPATH=str(own), OTEL_TRACES_EXPORTER="none")
    code = "import os, sys; print(os.environ.get('OWN_SITECUSTOMIZE'), 'heron' in sys.modules)"
    done = subprocess.run(
        python("-m", "heron", "run", "--", "python", "-c", code),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ran", "True"]


def test_heron_run_passes_the_exit_code_on(tmp_path: Path) -> None:
    env = agent_env(tmp_path, OTEL_TRACES_EXPORTER="none")
    done = subprocess.run(
        python("-m", "heron", "run", "--", "python", "-c", "raise SystemExit(7)"),
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 7


def test_run_command_without_a_program(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command([]) == 2
    assert run_command(["--"]) == 2
    assert "usage: heron run" in capsys.readouterr().err


def test_run_command_with_an_unknown_program(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(["--", "no-such-program-heron-test"]) == 127
    assert "command not found" in capsys.readouterr().err


def test_bootstrap_dir_goes_first_on_pythonpath_once() -> None:
    env = with_bootstrap({"PYTHONPATH": os.pathsep.join(["/a", BOOTSTRAP_DIR, "/b"])})
    assert env["PYTHONPATH"].split(os.pathsep) == [BOOTSTRAP_DIR, "/a", "/b"]
    assert with_bootstrap({})["PYTHONPATH"] == BOOTSTRAP_DIR
    assert (Path(BOOTSTRAP_DIR) / "sitecustomize.py").is_file()
