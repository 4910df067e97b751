"""SLO maths against hand-computed windows: burn-rate thresholds scaled to the SLO's
window, SLI and budget from the seeded requests (per minute of api: 100 requests, 5
errors, 10 of 3 s), burn rates, the burn-down, and the generated burn rules firing
through the evaluator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heron.server.alerting.evaluator import Evaluator
from heron.server.alerting.slo import BURN_WINDOWS, burn_rate, burn_rules, slo_status
from heron.server.model.alerting import SloSpec, parse_slo
from heron.server.store.base import Store
from tests.server.test_alert_eval import NOW, P, fresh, store  # noqa: F401 - fixtures

KEYS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def test_thresholds_scale_with_the_window() -> None:
    assert [w.threshold(30) for w in BURN_WINDOWS] == pytest.approx([14.4, 6, 3, 1])
    assert BURN_WINDOWS[0].threshold(28) == pytest.approx(13.44)  # 2 % x 672 h / 1 h
    assert [w.threshold(7) for w in BURN_WINDOWS] == pytest.approx([3.36, 1.4, 0.7, 7 / 30])
    assert [(w.alert, w.long, w.short) for w in BURN_WINDOWS] == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "1d", "2h"),
        ("ticket", "3d", "6h"),
    ]


def test_burn_rate() -> None:
    assert burn_rate(999, 1000, 99.9) == pytest.approx(1.0)  # exactly on budget
    assert burn_rate(950, 1000, 99.0) == pytest.approx(5.0)
    assert burn_rate(0, 0, 99.0) is None


def test_burn_rules() -> None:
    spec = parse_slo({"name": "checkout", "service": "api", "channels": ["ops"]})
    fast, slow = burn_rules(7, spec)
    assert (fast.name, fast.severity) == ("checkout — fast burn", "critical")
    assert (slow.name, slow.severity) == ("checkout — slow burn", "warning")
    assert fast.condition.model_dump() == {"kind": "slo_burn", "slo_id": 7, "alert": "page"}
    assert slow.condition.model_dump() == {"kind": "slo_burn", "slo_id": 7, "alert": "ticket"}
    assert fast.labels == {"slo": "checkout", "service": "api"} and fast.channels == ["ops"]
    assert burn_rules(7, parse_slo({"name": "x", "service": "api", "alerts": False})) == []
    long = burn_rules(1, parse_slo({"name": "n" * 200, "service": "api"}))
    assert all(len(r.name) <= 200 for r in long)


def test_availability_status(store: Store) -> None:  # noqa: F811
    spec = parse_slo({"name": "a", "service": "api", "objective": 99, "window_days": 7})
    st = slo_status(store, P, 1, spec, NOW)
    # 10 minutes x 100 requests, 5 errors each
    assert (st.good, st.total, st.sli, st.objective) == (950, 1000, 0.95, 0.99)
    assert st.budget_remaining == pytest.approx(1 - 0.05 / 0.01)  # -4: overspent
    assert st.burn_rates == {k: pytest.approx(5.0) for k in KEYS}
    assert st.burndown[-1][1] == pytest.approx(st.budget_remaining)
    assert st.burndown[0][1] == 1.0  # the whole budget before the first request
    assert [t for t, _ in st.burndown] == sorted({t for t, _ in st.burndown})
    assert all(t % 60 == 0 for t, _ in st.burndown)
    assert st.firing == []


def test_latency_status(store: Store) -> None:  # noqa: F811
    spec = parse_slo(
        {"name": "l", "service": "api", "sli": "latency", "threshold_ms": 1000, "objective": 90}
    )
    st = slo_status(store, P, 1, spec, NOW)
    # bad per minute: 5 errors (fast) + 10 slower than 1 s
    assert (st.good, st.total) == (850, 1000)
    assert st.burn_rates["1h"] == pytest.approx(0.15 / 0.10)
    assert st.budget_remaining == pytest.approx(-0.5)
    slow_endpoint = parse_slo(
        {
            "name": "l2",
            "service": "api",
            "endpoint": "GET /slow",
            "sli": "latency",
            "threshold_ms": 5000,
            "objective": 90,
        }  # fmt: skip
    )
    assert slo_status(store, P, 2, slow_endpoint, NOW).sli == 1.0


def test_empty_slo(store: Store) -> None:  # noqa: F811
    st = slo_status(store, P, 1, parse_slo({"name": "e", "service": "nobody"}), NOW)
    assert (st.total, st.sli, st.budget_remaining, st.burndown) == (0, None, 1.0, [])
    assert set(st.burn_rates.values()) == {None}


def _create_slo(st: Store, spec: SloSpec) -> int:
    row = st.state.create_alert_config(P, "slo", spec.name, spec.to_json(), "api", NOW)
    items = [(r.name, r.to_json()) for r in burn_rules(row.id, spec)]
    st.state.replace_alert_config_source(P, "rule", f"slo:{row.id}", items, NOW)
    return row.id


@pytest.mark.parametrize(
    ("data", "firing"),
    [
        # burn 5 everywhere: above 3.36 (page, 7 d) and 0.7 (ticket)
        ({"objective": 99, "window_days": 7}, ["avail — fast burn", "avail — slow burn"]),
        # burn 0.5: below every threshold of a 30-day SLO
        ({"objective": 90, "window_days": 30}, []),
        # burn 0.15 / 0.15 = 1 (latency): a ticket (0.7) but no page (3.36, 1.4)
        (
            {"objective": 85, "window_days": 7, "sli": "latency", "threshold_ms": 1000},
            ["avail — slow burn"],
        ),
    ],
)
def test_burn_rules_fire(fresh: Store, data: dict[str, object], firing: list[str]) -> None:  # noqa: F811
    spec = parse_slo({"name": "avail", "service": "api", **data})
    slo_id = _create_slo(fresh, spec)
    stats = Evaluator(fresh, lambda: NOW).run(NOW)
    assert (stats.evaluated, stats.broken) == (2, 0)
    assert slo_status(fresh, P, slo_id, spec, NOW).firing == firing
    for inst in fresh.state.alert_instances(P):
        assert '"slo": "avail"' in inst.labels


@pytest.fixture(autouse=True)
def _no_leftovers(store: Store) -> Iterator[None]:  # noqa: F811
    yield
    for kind in ("rule", "slo"):
        for row in store.state.list_alert_config(None, kind):  # type: ignore[arg-type]
            store.state.delete_alert_config(row.project_id, kind, row.id)  # type: ignore[arg-type]
