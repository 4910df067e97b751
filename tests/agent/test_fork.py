"""Fork safety beyond what the SDK does: connections, ``process.pid``, counters, locks."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import agent_env, python, wait_spans

pytestmark = pytest.mark.e2e

PROGRAM = """
    import json, os, sys
    import heron
    from heron.agent import runtime

    heron.init()
    with heron.span("before-fork"):
        pass
    assert heron.flush(10)  # the parent now holds a pooled connection to Heron
    exporter = runtime._agent.exporter
    parent_inner = exporter._inner

    pid = os.fork()
    if pid == 0:
        counts_after_fork = heron.stats().exported
        with heron.span("in-child"):
            pass
        flushed = heron.flush(10)
        print(json.dumps({"child": os.getpid(), "flushed": flushed,
                          "counts_after_fork": counts_after_fork,
                          "exported": heron.stats().exported,
                          "new_connection": exporter._inner is not parent_inner}), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    with heron.span("after-fork"):
        pass
    print(json.dumps({"parent": os.getpid(), "flushed": heron.flush(10),
                      "exported": heron.stats().exported}), flush=True)
"""


def test_a_forked_child_exports_as_itself(heron_server: Any, tmp_path: Path) -> None:
    env = agent_env(
        tmp_path,
        HERON_SERVICE="forking",
        HERON_ENDPOINT=heron_server.url,
        HERON_KEY=heron_server.key,
    )
    done = subprocess.run(
        python("-c", textwrap.dedent(PROGRAM)), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    child, parent = (json.loads(line) for line in done.stdout.splitlines())
    assert child["flushed"] and child["new_connection"]
    assert child["counts_after_fork"] == 0 and child["exported"] == 1
    assert parent["flushed"] and parent["exported"] == 2

    spans = wait_spans(heron_server, lambda s: len(s) == 3, service="forking")
    pid_of = {s["name"]: s["resource"]["process.pid"] for s in spans}
    assert pid_of == {
        "before-fork": parent["parent"],
        "after-fork": parent["parent"],
        "in-child": child["child"],
    }
    instance_of = {s["name"]: s["resource"]["service.instance.id"] for s in spans}
    assert instance_of["before-fork"] == instance_of["after-fork"] != instance_of["in-child"]
