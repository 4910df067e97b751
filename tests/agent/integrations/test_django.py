"""Django integration: instrumented when the first handler loads its middleware."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.agent.helpers import APPS, agent_env, python


def test_django_requests_become_server_spans(tmp_path: Path) -> None:
    env = agent_env(tmp_path, PYTHONPATH=str(APPS))
    done = subprocess.run(
        python(str(APPS / "django_probe.py")),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=APPS,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["configured_by_heron"] is False
    assert out["patched"] == "heron.agent.integrations.django"
    assert out["statuses"] == [200, 500]
    user, boom = (s for s in out["spans"] if s["kind"] == "SERVER")
    assert user["name"] == "GET users/<int:uid>"
    assert user["attributes"]["http.route"] == "users/<int:uid>"
    assert user["attributes"]["http.response.status_code"] == 200
    assert boom["status"] == "ERROR" and "exception" in boom["events"]
    assert boom["attributes"]["http.response.status_code"] == 500
