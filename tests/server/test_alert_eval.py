"""The alert evaluator on a real DuckDB store seeded with known requests, metrics and
errors: conditions' values, the state machine through a controlled clock, broken rules,
shared reads, annotations, the preview, and the engine in the app."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server.alerting.conditions import CycleReads, evaluate_condition
from heron.server.alerting.engine import AlertEngine
from heron.server.alerting.evaluator import RESOLVED_KEEP_NS, Evaluator
from heron.server.alerting.preview import preview_rule
from heron.server.config import Config
from heron.server.ingest.pipeline import Pipeline
from heron.server.model import SPAN_KIND_SERVER, STATUS_ERROR, STATUS_OK, Span
from heron.server.model.alerting import parse_rule
from heron.server.model.metric import MetricPoint, MetricWrite
from heron.server.store.base import Store
from heron.server.store.duckdb_store import DuckDBStore
from tests.server import errors_seed
from tests.server.backends import BACKENDS, open_store

NS = 1_000_000_000
MS = 1_000_000
MINUTE_S = 1_700_000_040  # a minute boundary
NOW = (MINUTE_S + 30) * NS
P = 1
MINUTES = 10  # minutes of api traffic: the current one and the nine before


def span(trace: int, start_ns: int, dur_ms: float, route: str, *, error: bool = False,
         service: str = "api") -> Span:  # fmt: skip
    return Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=1,
        parent_id=0,
        start_ns=start_ns,
        duration_ns=round(dur_ms * MS),
        name=f"GET {route}",
        kind=SPAN_KIND_SERVER,
        status=STATUS_ERROR if error else STATUS_OK,
        status_message="boom" if error else "",
        service=service,
        environment="prod",
        release="1.0",
        http_method="GET",
        http_route=route,
        http_status=500 if error else 200,
        db_system=None,
        db_statement=None,
        attributes={},
        resource={"service.name": service},
    )


def traffic() -> list[Span]:
    """Per minute of api: 90 GET /fast (10 ms, 5 of them errors) and 10 GET /slow
    (3 s, no errors); web: 20 requests 40 minutes ago only."""
    spans, trace = [], 1
    for k in range(MINUTES):
        base = (MINUTE_S - 60 * k) * NS
        for i in range(100):
            slow = i >= 90
            spans.append(
                span(
                    trace,
                    base + i * 200 * MS,
                    3000 if slow else 10,
                    "/slow" if slow else "/fast",
                    error=i < 5,
                )  # fmt: skip
            )
            trace += 1
    for i in range(20):
        spans.append(span(trace + i, (MINUTE_S - 2400) * NS + i * MS, 20, "/", service="web"))
    return spans


def metrics() -> list[MetricPoint]:
    out = []
    for k in range(MINUTES):
        t = (MINUTE_S - 60 * k) * NS + 5 * NS
        for host, value in (("a", 0.9), ("b", 0.5)):
            out.append(MetricPoint(t, "system.cpu.utilization", "gauge", "api", {"host": host},
                                   value, unit="1"))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = DuckDBStore(tmp_path_factory.mktemp("alerts") / "heron.duckdb", commit_interval_ms=0)
    s.start()
    Pipeline(s).submit_spans(P, traffic()).result(30)
    s.submit_metrics(MetricWrite(P, metrics())).result(30)
    yield s
    s.close()


@pytest.fixture
def fresh(store: Store) -> Iterator[Store]:
    """The seeded store with no alerting config left by an earlier test."""
    yield store
    st = store.state
    for kind in ("rule", "slo"):
        for row in st.list_alert_config(None, kind):  # type: ignore[arg-type]
            st.delete_alert_config(row.project_id, kind, row.id)  # type: ignore[arg-type]


def rule(**kw: Any) -> dict[str, Any]:
    return {"name": "r", "interval": 60, **kw}


def add_rule(store: Store, data: dict[str, Any]) -> int:
    spec = parse_rule(data)
    return store.state.create_alert_config(P, "rule", spec.name, spec.to_json(), "api", NOW).id


def samples(store: Store, data: dict[str, Any], now: int = NOW) -> dict[str, float | None]:
    got = evaluate_condition(CycleReads(store), P, parse_rule(data), now)
    return {",".join(f"{k}={v}" for k, v in sorted(s.labels.items())): s.value for s in got}


def instances(store: Store) -> dict[tuple[int, str], Any]:
    return {
        (i.rule_id, json.loads(i.labels).get("service", "") + json.loads(i.labels).get("endpoint", "")): i
        for i in store.state.alert_instances(P)
    }  # fmt: skip


# ------------------------------------------------------------------ conditions
def test_red_figures_per_service_and_endpoint(store: Store) -> None:
    err = samples(store, rule(condition={"kind": "red", "figure": "error_rate"}))
    # the 5-minute window: minutes -4..0, 500 requests, 25 errors (the web service is older)
    assert err == {"service=api": pytest.approx(5.0)}
    req = samples(store, rule(condition={"kind": "red", "figure": "requests", "window": "10m"}))
    assert req == {"service=api": 1000}
    p95 = samples(
        store,
        rule(condition={"kind": "red", "figure": "p95_ms", "per": "endpoint", "service": "api"}),
    )
    assert set(p95) == {"endpoint=GET /fast,service=api", "endpoint=GET /slow,service=api"}
    assert p95["endpoint=GET /fast,service=api"] < 20  # type: ignore[operator]
    assert 2500 < p95["endpoint=GET /slow,service=api"] < 3600  # type: ignore[operator]
    few = samples(store, rule(condition={"kind": "red", "figure": "p50_ms", "min_requests": 501}))
    assert few == {"service=api": None}


def test_metric_groups_and_unknown_metric(store: Store) -> None:
    cond = {"kind": "metric", "metric": "system.cpu.utilization", "agg": "avg", "by": ["host"]}
    assert samples(store, rule(condition=cond)) == {
        "host=a": pytest.approx(0.9),
        "host=b": pytest.approx(0.5),
    }
    cond_max = {**cond, "agg": "max", "by": [], "filter": {"host": "b"}}
    assert samples(store, rule(condition=cond_max)) == {"": pytest.approx(0.5)}
    # filtered on a grouped label: answered from the grouped read of the same cycle
    reads = CycleReads(store)
    both = [parse_rule(rule(condition={**cond, "filter": {"host": h}})) for h in "ab"]
    got = [evaluate_condition(reads, P, r, NOW) for r in both]
    assert [[(s.labels, s.value) for s in g] for g in got] == [
        [({"host": "a"}, pytest.approx(0.9))],
        [({"host": "b"}, pytest.approx(0.5))],
    ]
    assert reads.reads == 1
    from heron.server.alerting.conditions import ConditionError

    with pytest.raises(ConditionError, match="no metric named 'nope'"):
        samples(store, rule(condition={**cond, "metric": "nope"}))


def test_absence_of_a_service(store: Store) -> None:
    got = samples(store, rule(condition={"kind": "absence", "target": "service"}))
    assert got == {"service=web": 600.0}  # web was last seen 40 minutes ago; api reports


# ------------------------------------------------------------- state machine
def test_pending_then_firing_then_resolved_with_history(fresh: Store) -> None:
    rid = add_rule(
        fresh,
        rule(
            name="api errors",
            severity="critical",
            condition={"kind": "red", "figure": "error_rate", "op": ">", "threshold": 4},
            **{"for": "2m"},
            annotations={
                "summary": "{{ labels.service }} at {{ value | round(1) }}% > {{ threshold }}",
                "runbook_url": "https://rb/{{ rule.name }}",
            },
        ),  # fmt: skip
    )
    ev = Evaluator(fresh, lambda: NOW, public_url="https://heron.example/")
    assert ev.run(NOW).evaluated == 1
    inst = instances(fresh)[(rid, "api")]
    assert (inst.state, inst.active_since_ns, inst.fired_ns) == ("pending", NOW, 0)
    ann = json.loads(inst.annotations)
    assert ann["summary"] == "api at 5.0% > 4.0"
    assert ann["runbook_url"] == "https://rb/api errors"
    assert ann["link"] == "https://heron.example/service?service=api"
    assert ev.run(NOW + 30 * NS).evaluated == 0  # not due: the interval is 60 s
    ev.run(NOW + 60 * NS)
    assert instances(fresh)[(rid, "api")].state == "pending"  # held 1 min of 2
    ev.run(NOW + 120 * NS)
    inst = instances(fresh)[(rid, "api")]
    assert (inst.state, inst.fired_ns) == ("firing", NOW + 120 * NS)
    # 20 minutes later there is no traffic at all: the sample is gone → resolved
    later = NOW + 20 * 60 * NS
    ev.run(later)
    inst = instances(fresh)[(rid, "api")]
    assert (inst.state, inst.resolved_ns) == ("resolved", later)
    history = [h.state for h in reversed(fresh.state.alert_history(P, rule_id=rid))]
    assert history == ["pending", "firing", "resolved"]
    ev.run(later + RESOLVED_KEEP_NS)
    assert (rid, "api") not in instances(fresh)
    status = {s.rule_id: s for s in fresh.state.rule_statuses(P)}[rid]
    assert (status.error, status.instances) == ("", 0)


def test_pending_that_stops_holding_goes_inactive(fresh: Store) -> None:
    rid = add_rule(
        fresh,
        rule(condition={"kind": "red", "figure": "requests", "threshold": 10}, **{"for": "10m"}),
    )
    ev = Evaluator(fresh, lambda: NOW)
    ev.run(NOW)
    assert instances(fresh)[(rid, "api")].state == "pending"
    ev.run(NOW + 15 * 60 * NS)  # traffic over: the condition no longer holds
    assert (rid, "api") not in instances(fresh)
    assert [h.state for h in fresh.state.alert_history(P, rule_id=rid)] == ["inactive", "pending"]


def test_keep_firing_for_and_recover_threshold(fresh: Store) -> None:
    from heron.server.alerting.conditions import Sample
    from heron.server.alerting.evaluator import advance

    spec = parse_rule(
        rule(
            condition={"kind": "red", "figure": "p95_ms", "threshold": 100},
            keep_firing_for=120,
            recover_threshold=50,
        )  # fmt: skip
    )

    def step(prev: Any, value: float | None, t: int) -> Any:
        s = None if value is None else Sample({"service": "api"}, value, "/service?service=api")
        return advance(spec, 1, P, prev, s, t * NS)

    row, entered = step(None, 150, 0)
    assert (row.state, entered) == ("firing", ["pending", "firing"])  # for 0: fires at once
    row, entered = step(row, 80, 60)  # below the threshold, above the recovery one
    assert (row.state, row.last_true_ns, entered) == ("firing", 60 * NS, [])
    row, entered = step(row, 40, 120)  # recovered, but keep_firing_for counts from 60
    assert (row.state, entered) == ("firing", [])
    row, entered = step(row, 40, 180)
    assert (row.state, row.resolved_ns, entered) == ("resolved", 180 * NS, ["resolved"])
    row, entered = step(row, 150, 240)  # holds again: a new pending/firing cycle
    assert (row.state, row.active_since_ns, entered) == ("firing", 240 * NS, ["pending", "firing"])


def test_broken_rules_never_stop_the_others(fresh: Store) -> None:
    bad_metric = add_rule(
        fresh, rule(name="m", condition={"kind": "metric", "metric": "nope"}, interval=10)
    )
    bad_tpl = add_rule(
        fresh,
        rule(
            name="t",
            condition={"kind": "red", "figure": "requests"},
            annotations={"summary": "{{ value | nosuchfilter }}"},
        ),  # fmt: skip
    )
    bad_slo = add_rule(fresh, rule(name="s", condition={"kind": "slo_burn", "slo_id": 999,
                                                         "alert": "page"}))  # fmt: skip
    good = add_rule(fresh, rule(name="g", condition={"kind": "red", "figure": "requests"}))
    stats = Evaluator(fresh, lambda: NOW).run(NOW)
    assert (stats.evaluated, stats.broken) == (4, 3)
    errors = {s.rule_id: s.error for s in fresh.state.rule_statuses(P)}
    assert errors[bad_metric] == "no metric named 'nope'"
    assert "annotations.summary" in errors[bad_tpl] and "nosuchfilter" in errors[bad_tpl]
    assert errors[bad_slo] == "condition.slo_id: no SLO with id 999"
    assert errors[good] == ""
    assert instances(fresh)[(good, "api")].state == "firing"


def test_sandbox_refuses_internals() -> None:
    from heron.server.alerting.templates import TemplateError, render_annotations

    spec = parse_rule(rule(condition={"kind": "red", "figure": "requests"},
                           annotations={"summary": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}))  # fmt: skip
    with pytest.raises(TemplateError, match="annotations.summary"):
        render_annotations(spec, value=1.0, labels={}, link="/")


def test_one_cycle_shares_reads_between_rules(fresh: Store) -> None:
    for i in range(50):
        add_rule(fresh, rule(name=f"p95 {i}", condition={"kind": "red", "figure": "p95_ms",
                                                         "threshold": i * 100}))  # fmt: skip
    stats = Evaluator(fresh, lambda: NOW).run(NOW)
    assert stats.evaluated == 50
    assert stats.reads == 1  # one service table for all fifty
    firing = [i for i in fresh.state.alert_instances(P) if i.state == "firing"]
    assert 20 <= len(firing) < 50  # p95 ~3 s: the thresholds up to it fire


def test_disabled_rule_resolves_its_alerts(fresh: Store) -> None:
    data = rule(name="d", condition={"kind": "red", "figure": "requests"})
    rid = add_rule(fresh, data)
    ev = Evaluator(fresh, lambda: NOW)
    ev.run(NOW)
    assert instances(fresh)[(rid, "api")].state == "firing"
    spec = parse_rule({**data, "enabled": False})
    fresh.state.update_alert_config(P, "rule", rid, "d", spec.to_json(), NOW)
    ev.run(NOW + 60 * NS)
    assert instances(fresh)[(rid, "api")].state == "resolved"


# ------------------------------------------------------------------- errors
def test_error_conditions(tmp_path: Path) -> None:
    s = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0)
    s.start()
    try:
        now = time.time_ns()
        ids = errors_seed.insert(s, errors_seed.build(now))
        at = time.time_ns()

        def issues(cond: dict[str, Any]) -> dict[int, float | None]:
            got = evaluate_condition(CycleReads(s), P, parse_rule(rule(condition=cond)), at)
            assert all(x.link == f"/issues/{x.labels['issue_id']}" for x in got)
            return {int(x.labels["issue_id"]): x.value for x in got}

        new = issues({"kind": "error", "event": "new_issue", "window": "1h"})
        assert new[ids["zero"]] == 5.0  # its events in the window
        assert ids["slow"] not in new  # first seen three hours ago
        reg = issues({"kind": "error", "event": "regression", "window": "1h"})
        assert list(reg) == [ids["timeout"]]
        rate = {"kind": "error", "event": "rate", "issue_id": ids["zero"], "window": "1h"}
        assert issues(rate) == {ids["zero"]: 5.0}
    finally:
        s.close()


# --------------------------------------------------------------------- preview
def test_preview_replays_the_state_machine(store: Store) -> None:
    spec = parse_rule(
        rule(
            condition={
                "kind": "red",
                "figure": "requests",
                "window": "5m",
                "threshold": 300,
                "service": "api",
            },
            **{"for": "2m"},
        )  # fmt: skip
    )
    p = preview_rule(store, P, spec, NOW + 10 * 60 * NS, hours=1)
    assert p.step_s == 60 and (p.op, p.threshold) == (">", 300)
    (series,) = p.series
    assert series.labels == {"service": "api"}
    assert len(series.points) == 60
    values = {t: v for t, v in series.points if v is not None}
    assert max(values.values()) == 500
    (event,) = p.events
    # > 300 requests in 5 min: from the 4th minute of traffic (M-6) on, pending 2 min
    assert event.labels == {"service": "api"}
    # steps at :30 of each minute; a 5-minute window holds > 300 requests from the step in
    # the 4th minute of traffic (minute -6) until the step whose window has only 3 (+2)
    assert event.fired_ns == (MINUTE_S - 330 + 120) * NS  # pending 2 minutes first
    assert event.resolved_ns == (MINUTE_S + 150) * NS


# ---------------------------------------------------------------------- engine
def test_engine_cycle_and_app_wiring(fresh: Store, tmp_path: Path) -> None:
    rid = add_rule(fresh, rule(name="e", condition={"kind": "red", "figure": "requests"}))
    cfg = Config(data_dir=str(tmp_path), port=4999)
    jobs: dict[str, Any] = {}
    engine = AlertEngine(fresh, cfg, lambda: NOW, jobs=jobs)
    engine.run_cycle()
    assert engine.stats.cycles == 1 and engine.stats.failed_cycles == 0
    assert (jobs["alerts"].succeeded, jobs["alerts"].failed) == (1, 0)  # GET /metrics
    assert jobs["alerts"].last_end_s == NOW / 1e9
    assert instances(fresh)[(rid, "api")].state == "firing"
    assert json.loads(instances(fresh)[(rid, "api")].annotations)["link"] == (
        "http://127.0.0.1:4999/service?service=api"
    )

    from heron.server.app import create_app

    app = create_app(Config(data_dir=str(tmp_path / "a")))
    assert isinstance(app.state.alert_engine, AlertEngine)
    assert app.state.alert_engine.jobs is app.state.maintenance.jobs
    assert (
        create_app(Config(data_dir=str(tmp_path / "b"), alerts_enabled=False)).state.alert_engine
        is None
    )


def test_second_engine_stands_by_while_the_first_holds_the_lease(fresh: Store) -> None:
    cond = {"kind": "red", "figure": "requests", "window": "1h"}
    rid = add_rule(fresh, rule(name="lease", condition=cond))
    at = NOW + 600 * NS  # past the lease an earlier test's engine took at NOW
    cfg = Config(alert_tick_s=5)
    first, second = AlertEngine(fresh, cfg, lambda: at), AlertEngine(fresh, cfg, lambda: at)
    first.run_cycle()
    second.run_cycle()
    assert (first.stats.cycles, second.stats.cycles, second.stats.standby_cycles) == (1, 0, 1)
    assert instances(fresh)[(rid, "api")].state == "firing"
    late = AlertEngine(fresh, cfg, lambda: at + 31 * NS)  # the first's lease (30 s) ran out
    late.run_cycle()
    assert (late.stats.cycles, late.stats.standby_cycles) == (1, 0)


@pytest.fixture(scope="module", params=BACKENDS)
def any_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Store]:
    s = open_store(request.param, tmp_path_factory.mktemp("alerts-any"), chdb_dir)
    Pipeline(s).submit_spans(P, traffic()).result(60)
    s.submit_metrics(MetricWrite(P, metrics())).result(60)
    yield s
    s.close()


def test_conditions_and_slo_agree_on_every_backend(any_store: Store) -> None:
    """The same seeded data gives the same samples and SLO figures on each backend."""
    from heron.server.alerting.slo import slo_status
    from heron.server.model.alerting import parse_slo

    s = any_store
    assert samples(s, rule(condition={"kind": "red", "figure": "error_rate"})) == {
        "service=api": pytest.approx(5.0)
    }
    p95 = samples(s, rule(condition={"kind": "red", "figure": "p95_ms", "per": "endpoint"}))
    assert 2500 < p95["endpoint=GET /slow,service=api"] < 3600  # type: ignore[operator]
    cond = {"kind": "metric", "metric": "system.cpu.utilization", "by": ["host"]}
    assert samples(s, rule(condition=cond)) == {
        "host=a": pytest.approx(0.9),
        "host=b": pytest.approx(0.5),
    }
    assert samples(s, rule(condition={"kind": "absence", "target": "service"})) == {
        "service=web": 600.0
    }
    spec = parse_slo({"name": "a", "service": "api", "objective": 99, "window_days": 7})
    st = slo_status(s, P, 1, spec, NOW)
    assert (st.good, st.total) == (950, 1000)
    assert st.burn_rates["5m"] == pytest.approx(5.0)
