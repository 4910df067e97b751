"""The demo shop's slowdown knob (``heron.demo.loadtest``) on a real Flask app: only the
slowed endpoints wait, by ``(factor - 1) * max(handler time, 100 ms)``; bad factors are
400s; the environment variable sets the start value. Delays are recorded, not timed."""

from __future__ import annotations

import pytest
from flask import Flask

from heron.demo.loadtest import (
    SLOWDOWN_BASIS_S,
    SLOWDOWN_ENV,
    Slowdown,
    install_slowdown,
    load_duration_s,
    parse_factor,
)


def _app(knob: Slowdown) -> tuple[Flask, list[float]]:
    slept: list[float] = []
    app = Flask("slowdown-test")
    install_slowdown(app, knob, sleep=slept.append)

    @app.get("/products")
    def products() -> str:
        return "ok"

    @app.get("/search")
    def search() -> str:
        return "ok"

    return app, slept


def test_off_by_default_and_only_slowed_endpoints_wait() -> None:
    app, slept = _app(Slowdown())
    c = app.test_client()
    assert c.get("/products").status_code == 200
    assert slept == []
    r = c.post("/admin/slowdown", json={"factor": 1.5})
    assert r.status_code == 200 and r.get_json()["factor"] == 1.5
    c.get("/search")
    assert slept == []  # not a slowed endpoint
    c.get("/products")
    assert len(slept) == 1
    assert slept[0] == pytest.approx(0.5 * SLOWDOWN_BASIS_S, rel=0.01)  # fast handler: the floor
    assert c.get("/admin/slowdown").get_json()["factor"] == 1.5
    c.post("/admin/slowdown", json={"factor": 1})
    c.get("/products")
    assert len(slept) == 1


@pytest.mark.parametrize("body", [{"factor": "x"}, {"factor": 0.5}, {"factor": 11}, {}, [1]])
def test_bad_factors_are_400(body: object) -> None:
    app, _ = _app(Slowdown())
    r = app.test_client().post("/admin/slowdown", json=body)
    assert r.status_code == 400
    assert "factor" in r.get_json()["error"]


def test_env_sets_the_start_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SLOWDOWN_ENV, "1.4")
    assert Slowdown.from_env().factor == 1.4
    monkeypatch.setenv(SLOWDOWN_ENV, "nan")
    with pytest.raises(ValueError, match="between 1 and 10"):
        Slowdown.from_env()
    assert parse_factor("2") == 2.0


def test_run_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERON_DEMO_LOADTEST_S", raising=False)
    assert load_duration_s() == 15
    monkeypatch.setenv("HERON_DEMO_LOADTEST_S", "6")
    assert load_duration_s() == 6
    monkeypatch.setenv("HERON_DEMO_LOADTEST_S", "1")
    with pytest.raises(ValueError, match="3-600"):
        load_duration_s()
