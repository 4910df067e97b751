"""Alert rules on web vitals (condition kind ``rum``) on a real DuckDB store seeded with
RUM events through ``store.submit_rum``: p75/p50/p95, poor share and sample counts from the
rollup, per-group instances with ``by``, the ``min_samples`` guard, filters, links, the
window, shared reads, the evaluator firing and the preview."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server.alerting.conditions import CycleReads, evaluate_condition
from heron.server.alerting.evaluator import Evaluator
from heron.server.alerting.preview import preview_rule
from heron.server.model.alerting import SpecError, parse_rule
from heron.server.model.rum import (
    KIND_VIEW,
    KIND_VITAL,
    VITAL_THRESHOLDS,
    RumEvent,
    RumRollups,
    RumWrite,
    rate,
    rollup_rum,
)
from heron.server.store.base import Store
from heron.server.store.duckdb_store import DuckDBStore
from tests.server.backends import BACKENDS, open_store

NS = 1_000_000_000
MINUTE_S = 1_700_000_040  # a minute boundary
NOW = (MINUTE_S + 30) * NS
P = 1


def event(t_s: int, i: int, kind: str, name: str, value: float, page: str, browser: str,
          device: str, *, environment: str = "prod") -> RumEvent:  # fmt: skip
    return RumEvent(
        time_ns=t_s * NS + i * 1_000_000,
        kind=kind,
        session_id=f"session{i:04d}",
        view_id=f"view{i:04d}",
        page=page,
        url=f"https://shop.example{page}",
        name=name,
        value=value,
        rating=rate(name, value) if name in VITAL_THRESHOLDS else "",
        target="",
        browser=browser,
        browser_version="120",
        os="Linux",
        device=device,
        app="shop",
        release="1.0",
        environment=environment,
    )


def seed() -> list[RumEvent]:
    """In the 5 minutes before NOW: /checkout (Chrome, mobile) 30 LCP at 5 s (poor) and
    10 at 2 s (good); /home (Firefox, desktop) 30 LCP at 1.2 s, 25 CLS at 0.3 (poor) and
    25 page loads of 900 ms; /rare (Chrome, desktop) 5 LCP at 9 s; 40 minutes earlier,
    /old (Chrome, desktop, staging) 30 LCP at 9 s."""
    out: list[RumEvent] = []

    def add(n: int, name: str, value: float, page: str, browser: str, device: str,
            kind: str = KIND_VITAL, t0: int = MINUTE_S, env: str = "prod") -> None:  # fmt: skip
        for i in range(n):
            t = t0 - 60 * (i % 5)  # spread over the window's minutes
            out.append(event(t, len(out), kind, name, value, page, browser, device,
                             environment=env))  # fmt: skip

    add(30, "LCP", 5000, "/checkout", "Chrome", "mobile")
    add(10, "LCP", 2000, "/checkout", "Chrome", "mobile")
    add(30, "LCP", 1200, "/home", "Firefox", "desktop")
    add(25, "CLS", 0.3, "/home", "Firefox", "desktop")
    add(25, "navigate", 900, "/home", "Firefox", "desktop", kind=KIND_VIEW)
    add(5, "LCP", 9000, "/rare", "Chrome", "desktop")
    add(30, "LCP", 9000, "/old", "Chrome", "desktop", t0=MINUTE_S - 2400, env="staging")
    return out


def fill(s: Store) -> Store:
    events = seed()
    acc: RumRollups = {}
    rollup_rum(P, events, acc)
    assert s.submit_rum(RumWrite(P, events, acc)).result(60) == len(events)
    return s


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = DuckDBStore(tmp_path_factory.mktemp("rum-alerts") / "heron.duckdb", commit_interval_ms=0)
    yield fill(s.start())
    s.close()


@pytest.fixture(scope="module", params=BACKENDS)
def any_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Store]:
    s = fill(open_store(request.param, tmp_path_factory.mktemp("rum-alerts-any"), chdb_dir))
    yield s
    s.close()


def rule(**cond: Any) -> dict[str, Any]:
    return {"name": "web vitals", "interval": 60, "condition": {"kind": "rum", **cond}}


def samples(store: Store, data: dict[str, Any], now: int = NOW) -> dict[str, float | None]:
    got = evaluate_condition(CycleReads(store), P, parse_rule(data), now)
    return {",".join(f"{k}={v}" for k, v in sorted(s.labels.items())): s.value for s in got}


def links(store: Store, data: dict[str, Any]) -> dict[str, str]:
    got = evaluate_condition(CycleReads(store), P, parse_rule(data), NOW)
    return {",".join(f"{k}={v}" for k, v in sorted(s.labels.items())): s.link for s in got}


# ------------------------------------------------------------------ figures
def test_p75_overall_and_per_page(store: Store) -> None:
    # 75 LCP samples in the window: 30 at 1.2 s, 10 at 2 s, 30 at 5 s, 5 at 9 s
    overall = samples(store, rule(vital="LCP"))
    assert overall == {"": pytest.approx(5000, rel=0.06)}
    per_page = samples(store, rule(vital="LCP", by="page"))
    assert per_page == {
        "page=/checkout": pytest.approx(5000, rel=0.06),
        "page=/home": pytest.approx(1200, rel=0.06),
        "page=/rare": None,  # 5 samples < min_samples 20: no value
    }
    p50 = samples(store, rule(vital="LCP", figure="p50", page="/checkout"))
    assert p50 == {"": pytest.approx(5000, rel=0.06)}
    p95 = samples(store, rule(vital="LCP", figure="p95"))
    assert p95 == {"": pytest.approx(9000, rel=0.06)}
    cls = samples(store, rule(vital="CLS"))
    assert cls == {"": pytest.approx(0.3, rel=0.06)}  # unitless
    load = samples(store, rule(vital="load", page="/home"))
    assert load == {"": pytest.approx(900, rel=0.06)}


def test_min_samples_guard(store: Store) -> None:
    assert samples(store, rule(vital="LCP", page="/checkout", min_samples=41)) == {"": None}
    assert samples(store, rule(vital="LCP", page="/checkout", min_samples=40)) == {
        "": pytest.approx(5000, rel=0.06)
    }
    rare = samples(store, rule(vital="LCP", by="page", min_samples=5))
    assert rare["page=/rare"] == pytest.approx(9000, rel=0.06)
    # no samples at all: no value, but a sample count of 0 once min_samples allows it
    assert samples(store, rule(vital="INP")) == {"": None}
    assert samples(store, rule(vital="INP", figure="samples", min_samples=0)) == {"": 0.0}


def test_poor_share_and_samples(store: Store) -> None:
    poor = samples(store, rule(vital="LCP", figure="poor_share", by="page", min_samples=1))
    assert poor == {
        "page=/checkout": pytest.approx(75.0),  # 30 of 40 over 4 s
        "page=/home": 0.0,
        "page=/rare": 100.0,
    }
    assert samples(store, rule(vital="CLS", figure="poor_share")) == {"": 100.0}
    counts = samples(store, rule(vital="LCP", figure="samples", by="browser", min_samples=0))
    assert counts == {"browser=Chrome": 45.0, "browser=Firefox": 30.0}
    devices = samples(store, rule(vital="LCP", figure="samples", by="device", min_samples=0))
    assert devices == {"device=desktop": 35.0, "device=mobile": 40.0}


def test_filters_window_and_links(store: Store) -> None:
    mobile = samples(store, rule(vital="LCP", figure="samples", by="page", device="mobile"))
    assert mobile == {"page=/checkout": 40.0}
    assert samples(store, rule(vital="LCP", browser="Safari")) == {"": None}
    # /old is 40 minutes old: outside the default 5-minute window, inside an hour's
    hour = samples(store, rule(vital="LCP", figure="samples", by="page", window="1h"))
    assert hour["page=/old"] == 30.0 and hour["page=/checkout"] == 40.0
    assert samples(
        store, rule(vital="LCP", figure="samples", window="1h", environment="staging")
    ) == {"": 30.0}
    got = links(store, rule(vital="LCP", by="page", environment="prod", device="mobile"))
    assert got == {"page=/checkout": "/rum/page?env=prod&page=%2Fcheckout&device=mobile"}
    assert links(store, rule(vital="LCP")) == {"": "/rum"}
    assert links(store, rule(vital="LCP", by="browser", app="shop")) == {
        "browser=Chrome": "/rum?app=shop&browser=Chrome",
        "browser=Firefox": "/rum?app=shop&browser=Firefox",
    }


def test_rules_on_one_vital_share_a_read(store: Store) -> None:
    reads = CycleReads(store)
    for threshold in (2500, 4000):
        spec = parse_rule(rule(vital="LCP", by="page", threshold=threshold))
        evaluate_condition(reads, P, spec, NOW)
    assert reads.reads == 1
    evaluate_condition(reads, P, parse_rule(rule(vital="LCP", figure="poor_share", by="page")), NOW)
    assert reads.reads == 1  # the same rollup read serves every figure
    evaluate_condition(reads, P, parse_rule(rule(vital="CLS", by="page")), NOW)
    assert reads.reads == 2


# ------------------------------------------------------------- evaluation
def test_fires_above_threshold_per_page_not_below(store: Store) -> None:
    spec = parse_rule(
        {
            **rule(vital="LCP", by="page", op=">", threshold=4000),
            "name": "LCP p75 > 4 s",
            "annotations": {"summary": "{{ labels.page }} LCP p75 {{ value | round | int }} ms"},
        }
    )
    rid = store.state.create_alert_config(P, "rule", spec.name, spec.to_json(), "api", NOW).id
    try:
        Evaluator(store, lambda: NOW, public_url="https://heron.example/").run(NOW)
        got = {
            json.loads(i.labels).get("page"): i
            for i in store.state.alert_instances(P)
            if i.rule_id == rid
        }
        assert set(got) == {"/checkout"}  # /home is below 4 s, /rare has too few samples
        inst = got["/checkout"]
        assert inst.state == "firing"
        assert inst.value == pytest.approx(5000, rel=0.06)
        assert json.loads(inst.labels) == {
            "page": "/checkout",
            "alertname": "LCP p75 > 4 s",
            "severity": "warning",
        }
    finally:
        store.state.delete_alert_config(P, "rule", rid)


def test_preview_of_a_rum_rule(store: Store) -> None:
    # /old (40 minutes before NOW, in the preview's hour) is staging: filtered out
    spec = parse_rule(rule(vital="LCP", by="page", threshold=4000, environment="prod"))
    p = preview_rule(store, P, spec, NOW + 10 * 60 * NS, hours=1)
    assert (p.op, p.threshold, p.step_s) == (">", 4000, 60)
    by_page = {s.labels["page"]: s for s in p.series}
    assert set(by_page) == {"/checkout", "/home", "/rare"}
    checkout = [v for _, v in by_page["/checkout"].points if v is not None]
    assert checkout and max(checkout) == pytest.approx(5000, rel=0.06)
    assert [e.labels for e in p.events] == [{"page": "/checkout"}]
    assert p.events[0].resolved_ns is not None  # the events left the window before the end


# ------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({"vital": "LCPX"}, "condition.vital"),
        ({}, "condition.vital: Field required"),
        ({"vital": "LCP", "figure": "p99"}, "condition.figure"),
        ({"vital": "load", "figure": "poor_share"}, "poor_share is for web vitals"),
        ({"vital": "LCP", "by": "os"}, "condition.by"),
        ({"vital": "LCP", "device": "watch"}, "condition.device"),
        ({"vital": "LCP", "min_samples": -1}, "condition.min_samples"),
        ({"vital": "LCP", "window": "10s"}, "condition.window"),
        ({"vital": "LCP", "vitals": "CLS"}, "condition.vitals"),
    ],
)
def test_bad_rum_conditions_name_the_field(cond: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace(".", r"\.")):
        parse_rule({"name": "x", "condition": {"kind": "rum", **cond}})


def test_defaults() -> None:
    cond = parse_rule(rule(vital="INP")).condition
    assert cond.model_dump() == {
        "kind": "rum",
        "vital": "INP",
        "figure": "p75",
        "app": None,
        "environment": None,
        "page": None,
        "browser": None,
        "device": None,
        "by": None,
        "min_samples": 20,
        "window": 300,
        "op": ">",
        "threshold": 0.0,
    }


def test_rum_conditions_agree_on_every_backend(any_store: Store) -> None:
    """The same RUM events give the same samples on each backend."""
    s = any_store
    assert samples(s, rule(vital="LCP", by="page")) == {
        "page=/checkout": pytest.approx(5000, rel=0.06),
        "page=/home": pytest.approx(1200, rel=0.06),
        "page=/rare": None,
    }
    assert samples(s, rule(vital="LCP", figure="poor_share", page="/checkout")) == {
        "": pytest.approx(75.0)
    }
    assert samples(s, rule(vital="CLS")) == {"": pytest.approx(0.3, rel=0.06)}
    assert samples(s, rule(vital="load", figure="samples", min_samples=0)) == {"": 25.0}
    counts = samples(s, rule(vital="LCP", figure="samples", by="browser", device="desktop"))
    assert counts == {"browser=Chrome": None, "browser=Firefox": 30.0}  # Chrome: 5 < 20
