"""``heron loadtest`` end to end, as a CI job runs it: the real CLI (a subprocess) drives
real Locust against the real shop app (Flask + the Heron agent), which exports to a real
``heron serve``; the gate reads the comparison through the API.

One server and one app for the module; the tests share its runs in file order:
the baseline, reruns without change (none may be flagged), a +40 % slowdown of ``/a``
(flagged, and ``/a`` only), then the other modes (``-- COMMAND``, start/stop, compare)
and the exit codes.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HeronProcess
from tests.loadtest.conftest import HERE, Shop, heron_cli

pytestmark = pytest.mark.e2e

USERS = 4
LOCUST = ["--users", str(USERS), "--spawn-rate", "20", "--duration", "8s", "--settle", "20"]
NAME = "shop-4u"


def locust_run(h: HeronProcess, shop: Shop, *args: str, env: dict[str, str] | None = None) -> Any:
    return heron_cli(
        h, "run", "--name", NAME, "--target", shop.url, "--path", "/a", "--path", "/b",
        *LOCUST, *args, env=env,
    )  # fmt: skip


def run_id(stderr: str) -> int:
    match = re.search(r"run (\d+) started", stderr)
    assert match, stderr
    return int(match.group(1))


def by_endpoint(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["endpoint"]: e for e in run["summary"]["endpoints"] if e["service"] == "lt-shop"}


@pytest.fixture(scope="module")
def baseline(lt_server: HeronProcess, shop: Shop) -> dict[str, Any]:
    r = locust_run(lt_server, shop)
    assert r.returncode == 0, r.stdout + r.stderr
    run = lt_server.api(f"/api/v1/loadtests/{run_id(r.stderr)}").json()
    return {"run": run, "stdout": r.stdout, "stderr": r.stderr}


def test_locust_run_is_stored_with_its_window_load_and_counts(
    lt_server: HeronProcess, baseline: dict[str, Any]
) -> None:
    run = baseline["run"]
    assert (run["name"], run["status"], run["tool"], run["exit_code"]) == (
        NAME,
        "finished",
        "locust",
        0,
    )
    assert run["end_ns"] > run["start_ns"] and 8 <= run["duration_s"] < 30
    assert run["command"].startswith(f"built-in Locust --target {run['load']['host']}")
    load = run["load"]
    assert (load["tool"], load["users"], load["host"]) == ("locust", USERS, load["host"])
    assert load["requests"] > 100 and load["failures"] == 0
    # Heron saw every request Locust counted, plus at most the ones in flight when the
    # load stopped (Locust drops those from its stats; the app still served them).
    seen = by_endpoint(run)
    assert set(seen) >= {"GET /a", "GET /b"}, seen
    for endpoint in ("GET /a", "GET /b"):
        sent = load["endpoints"][endpoint]["requests"]
        assert sent <= seen[endpoint]["requests"] <= sent + USERS, (endpoint, sent, seen)
    total = seen["GET /a"]["requests"] + seen["GET /b"]["requests"]
    assert load["requests"] <= total <= load["requests"] + USERS
    assert set(seen) == {"GET /a", "GET /b"}  # the knob and the health check are outside
    # the summary printed by the CLI
    assert "GET /a" in baseline["stdout"] and f"/loadtests/{run['id']}" in baseline["stdout"]
    assert "locust: " in baseline["stderr"]  # progress lines


def test_reruns_without_change_pass(
    lt_server: HeronProcess, shop: Shop, baseline: dict[str, Any], tmp_path: Path
) -> None:
    for i in range(3):
        junit = tmp_path / f"rerun{i}.xml"
        r = locust_run(
            lt_server, shop, "--baseline", str(baseline["run"]["id"]), "--junit", str(junit)
        )
        assert r.returncode == 0, r.stdout + r.stderr
        suite = ET.parse(junit).getroot().find("testsuite")
        assert suite is not None
        assert suite.get("failures") == "0", r.stdout
        assert int(suite.get("tests") or 0) >= 2
        assert "No regression" in r.stdout


def test_slowdown_of_40_percent_fails_the_gate(
    lt_server: HeronProcess, shop: Shop, baseline: dict[str, Any], tmp_path: Path
) -> None:
    out = {k: tmp_path / f"report.{k}" for k in ("xml", "md", "json")}
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    shop.slow("/a", 1.4)
    try:
        r = locust_run(
            lt_server, shop, "--baseline", str(baseline["run"]["id"]),
            "--junit", str(out["xml"]), "--markdown", str(out["md"]), "--json", str(out["json"]),
            env={"GITHUB_STEP_SUMMARY": str(summary)},
        )  # fmt: skip
    finally:
        shop.slow("/a", 1.0)
    assert r.returncode == 1, r.stdout + r.stderr

    suite = ET.parse(out["xml"]).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == f"heron loadtest {NAME}"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert {"GET /a", "GET /b"} <= set(cases)
    failed = [name for name, c in cases.items() if c.find("failure") is not None]
    assert failed == ["GET /a"], r.stdout
    assert cases["GET /a"].get("classname") == "lt-shop"

    md = out["md"].read_text()
    assert md.startswith("## Regression: 1 endpoint slower"), md
    assert f"/loadtests/{run_id(r.stderr)}/compare?baseline={baseline['run']['id']}" in md
    assert summary.read_text() == "earlier step\n" + md + "\n"

    comparison = json.loads(out["json"].read_text())
    assert comparison["verdict"] == "regression" and comparison["regressions"] == 1
    (a,) = [e for e in comparison["endpoints"] if e["endpoint"] == "GET /a"]
    assert a["status"] == "regression" and a["p95_change_pct"] > 20
    # the server stored the verdict on the run
    stored = lt_server.api(f"/api/v1/loadtests/{run_id(r.stderr)}").json()
    assert stored["verdict"] == "regression"


def test_command_mode_counts_exactly(lt_server: HeronProcess, shop: Shop) -> None:
    r = heron_cli(
        lt_server, "run", "--name", "cmd", "--label", "branch=main", "--settle", "20",
        "--", sys.executable, str(HERE / "traffic.py"), shop.url, "25", "/a", "/b",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "traffic: 50 requests" in r.stdout  # the command's own output passes through
    run = lt_server.api(f"/api/v1/loadtests/{run_id(r.stderr)}").json()
    assert (run["tool"], run["status"], run["labels"]) == (
        "command",
        "finished",
        {"branch": "main"},
    )
    assert "traffic.py" in run["command"]
    seen = by_endpoint(run)
    assert (seen["GET /a"]["requests"], seen["GET /b"]["requests"]) == (25, 25)


def test_start_stop_mode(lt_server: HeronProcess, shop: Shop, tmp_path: Path) -> None:
    id_file = tmp_path / "run-id"
    r = heron_cli(lt_server, "start", "--name", "manual", "--id-file", str(id_file))
    assert r.returncode == 0, r.stderr
    rid = int(r.stdout.strip())
    assert id_file.read_text().strip() == str(rid)
    assert lt_server.api(f"/api/v1/loadtests/{rid}").json()["status"] == "running"

    import subprocess

    subprocess.run(
        [sys.executable, str(HERE / "traffic.py"), shop.url, "10", "/b"], check=True, timeout=60
    )
    r = heron_cli(lt_server, "stop", "--id-file", str(id_file), "--settle", "20")
    assert r.returncode == 0, r.stderr
    assert "10 requests" in r.stdout.splitlines()[0]
    run = lt_server.api(f"/api/v1/loadtests/{rid}").json()
    assert (run["status"], run["tool"]) == ("finished", "manual")
    assert by_endpoint(run)["GET /b"]["requests"] == 10

    # stop by name: the newest running run of that name
    r = heron_cli(lt_server, "start", "--name", "manual2")
    rid2 = int(r.stdout.strip())
    r = heron_cli(lt_server, "stop", "--name", "manual2", "--status", "failed", "--exit-code", "5")
    assert r.returncode == 0, r.stderr
    run2 = lt_server.api(f"/api/v1/loadtests/{rid2}").json()
    assert (run2["status"], run2["exit_code"]) == ("failed", 5)


def test_compare_mode_and_list(
    lt_server: HeronProcess, baseline: dict[str, Any], tmp_path: Path
) -> None:
    # RUN by name = its newest run (a rerun without change, or the slowed one: the
    # slowed run is the newest of NAME only if the reruns ran first; compare by id)
    runs = lt_server.api("/api/v1/loadtests", name=NAME).json()["runs"]
    unchanged = [r for r in runs if r["verdict"] == "pass"]
    assert unchanged, runs
    junit = tmp_path / "c.xml"
    r = heron_cli(
        lt_server, "compare", str(unchanged[0]["id"]), "--baseline", str(baseline["run"]["id"]),
        "--junit", str(junit),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "0"  # type: ignore[union-attr]
    slowed = [r for r in runs if r["verdict"] == "regression"]
    if slowed:  # the slowdown test ran: by name, then --fail-on never
        r = heron_cli(lt_server, "compare", NAME, "--baseline", str(baseline["run"]["id"]))
        assert r.returncode == 1, r.stdout
        r = heron_cli(
            lt_server, "compare", NAME, "--baseline", str(baseline["run"]["id"]),
            "--fail-on", "never",
        )  # fmt: skip
        assert r.returncode == 0 and "Regression" in r.stdout
    r = heron_cli(lt_server, "list", "--name", NAME)
    assert r.returncode == 0
    assert str(baseline["run"]["id"]) in r.stdout and NAME in r.stdout


def test_exit_codes(lt_server: HeronProcess, shop: Shop, baseline: dict[str, Any]) -> None:
    # a bad token: 2, and no run is started
    r = heron_cli(lt_server, "run", "--name", "bad-token", "--", "true", token="ht_wrong")
    assert r.returncode == 2 and "401" in r.stderr, r.stderr
    assert lt_server.api("/api/v1/loadtests", name="bad-token").json()["runs"] == []
    # an unknown baseline: 2
    r = heron_cli(lt_server, "compare", str(baseline["run"]["id"]), "--baseline", "no-such-run")
    assert r.returncode == 2 and "404" in r.stderr, r.stderr
    r = heron_cli(lt_server, "compare", "no-such-name")
    assert r.returncode == 2 and "no run named" in r.stderr
    # a failing command: 3, stored as failed with its exit code, not compared
    r = heron_cli(
        lt_server, "run", "--name", "broken", "--baseline", NAME, "--settle", "0",
        "--", sys.executable, "-c", "import sys; sys.exit(4)",
    )  # fmt: skip
    assert r.returncode == 3, r.stdout + r.stderr
    run = lt_server.api(f"/api/v1/loadtests/{run_id(r.stderr)}").json()
    assert (run["status"], run["exit_code"], run["verdict"]) == ("failed", 4, None)


def test_cancelled_job_aborts_the_run_and_keeps_the_load(
    lt_server: HeronProcess, shop: Shop
) -> None:
    """A CI runner cancelling the job sends SIGTERM to heron: Locust is stopped through
    the driver, the run is stored ``aborted`` with what Locust sent, exit 130."""
    import os
    import signal
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "GITHUB_"))}
    env.update(HERON_URL=lt_server.url, HERON_API_TOKEN=lt_server.token)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "heron", "loadtest", "run", "--name", "cancelled",
            "--target", shop.url, "--path", "/b", "--users", "2", "--duration", "60s",
            "--settle", "5",
        ],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # wait for the first progress line: the load is on
        lines.append(line)
        if line.startswith("locust: "):
            break
    else:
        raise AssertionError("".join(lines))
    rid = run_id("".join(lines))
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    run = lt_server.api(f"/api/v1/loadtests/{rid}").json()
    assert (run["status"], run["tool"]) == ("aborted", "locust")
    assert run["load"]["requests"] > 0
    assert run["load"]["duration_s"] < 45  # Locust stopped early, not after 60 s


def test_too_few_requests_is_insufficient_data_and_passes(
    lt_server: HeronProcess, shop: Shop, baseline: dict[str, Any], tmp_path: Path
) -> None:
    junit, md = tmp_path / "tiny.xml", tmp_path / "tiny.md"
    r = heron_cli(
        lt_server, "run", "--name", "tiny", "--baseline", str(baseline["run"]["id"]),
        "--junit", str(junit), "--markdown", str(md), "--settle", "20",
        "--", sys.executable, str(HERE / "traffic.py"), shop.url, "5", "/a", "/b",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "0", "2")
    assert md.read_text().startswith("## Insufficient data")
    stored = lt_server.api(f"/api/v1/loadtests/{run_id(r.stderr)}").json()
    assert stored["verdict"] == "insufficient-data"
