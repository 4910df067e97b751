"""``import heron`` (and ``heron.init()``) never load the server's dependencies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.agent.helpers import agent_env, python

SERVER_DEPENDENCIES = ("duckdb", "fastapi", "starlette", "pyarrow", "uvicorn", "orjson")


@pytest.mark.parametrize(
    ("code", "also_absent"),
    [
        ("import heron", ("opentelemetry.sdk", "requests")),
        # Frameworks load only when the app imports them; with nothing to export, the
        # HTTP stack does not load either.
        ("import heron; heron.init(); heron.shutdown(1)", ("flask", "django", "requests")),
    ],
)
def test_the_agent_is_light(tmp_path: Path, code: str, also_absent: tuple[str, ...]) -> None:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = agent_env(tmp_path, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
    done = subprocess.run(python("-c", probe), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "heron" in loaded
    assert not loaded & {*SERVER_DEPENDENCIES, *also_absent}
