"""``heron demo --loadtest`` end to end: the injected slowdown is caught.

The real demo (server, shop, inventory, traffic) runs the real ``heron loadtest run``
twice with the built-in Locust driver (runs shortened to a few seconds with
``HERON_DEMO_LOADTEST_S``): the baseline at normal speed must pass, the run after the
slowdown knob is turned on must exit 1, the demo must print the verdict and a compare URL
that opens, the stored comparison must flag the slowed endpoints of demo-shop, and the
knob must be off again afterwards. Then Ctrl-C stops everything with exit 0.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from heron.demo import DEMO_API_TOKEN, SHOP_SERVICE
from heron.demo.loadtest import RUN_NAME

from .test_demo import Demo

pytestmark = pytest.mark.e2e

RUN_S = "6"
CAUGHT_WITHIN_S = 180.0  # start (~15 s), 2 x (run + settling + comparison) on a busy box
SLOWED = {"GET /products", "GET /products/<int:product_id>"}


def test_demo_loadtest_catches_the_slowdown(tmp_path: Path) -> None:
    demo = Demo(tmp_path, "--loadtest", "--duration", "300", HERON_DEMO_LOADTEST_S=RUN_S)
    try:
        shop = demo.wait_for_output(r"demo-shop:\s+(http://\S+)", 60).group(1)
        m = demo.wait_for_output(r"Load-test gate: (.+)\n", CAUGHT_WITHIN_S)
        assert m.group(1).startswith("REGRESSION caught (exit 1)"), demo.output
        url = demo.wait_for_output(r"compare page:\s+(http://\S+)", 5).group(1)
        auth = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
        runs = httpx.get(
            f"http://127.0.0.1:{demo.port}/api/v1/loadtests",
            params={"name": RUN_NAME},
            headers=auth,
            timeout=10,
        ).json()["runs"]
        assert len(runs) == 2, runs
        run, base = runs
        assert run["labels"]["slowdown"] == "1.5" and base["labels"]["slowdown"] == "1.0"
        assert run["verdict"] == "regression", run
        assert url.endswith(f"/loadtests/{run['id']}/compare?baseline={base['id']}"), url
        comparison = httpx.get(
            f"http://127.0.0.1:{demo.port}/api/v1/loadtests/{run['id']}/compare",
            params={"baseline": str(base["id"])},
            headers=auth,
            timeout=60,
        ).json()
        status = {
            e["endpoint"]: e["status"]
            for e in comparison["endpoints"]
            if e["service"] == SHOP_SERVICE
        }
        regressed = {name for name, s in status.items() if s == "regression"}
        assert regressed and regressed <= SLOWED, status
        # The compare page opens (it needs a session: the sign-in redirect is fine here,
        # a 5xx is not); the knob is off again.
        page = httpx.get(url, timeout=30)
        assert page.status_code < 500, page.text[:500]
        knob = httpx.get(f"{shop}/admin/slowdown", timeout=10).json()
        assert knob["factor"] == 1.0
        assert "  | " in demo.output  # Locust's progress, forwarded
    finally:
        rc = demo.finish(signal.SIGINT)
    assert rc == 0, demo.output
