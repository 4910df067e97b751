"""Alerting's state (``store/alerting.py``) on every state backend: DuckDB and
PostgreSQL, same inputs, same assertions. Rules, channels, silences and SLOs as JSON
specs; instances with their acks and history; rule health; notification groups and the
outbox.

PostgreSQL is the machine's real server (``tests/server/postgres.py``): this module gets
a schema of its own, emptied before each test and dropped after the module."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from heron.server.store.alerting import (
    ConfigRow,
    GroupRow,
    HistoryRow,
    InstanceRow,
    NameTaken,
    NotificationRow,
    RuleStatusRow,
)
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.postgres.state import PostgresState
from heron.server.store.state import STATE_TABLES, StateStore, VersionConflict
from tests.server.postgres import POSTGRES_URL, drop_schema, fresh_schema

S = 10**9
P = 1
_TABLES = (*(t for t in STATE_TABLES if t.startswith(("alert_", "notification"))), "alert_lease")


@pytest.fixture(scope="module")
def postgres_state() -> Iterator[PostgresState]:
    schema = fresh_schema()
    state = PostgresState(POSTGRES_URL, schema=schema)
    yield state
    state.close()
    drop_schema(schema)


def _empty(schema: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
        con.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                sql.SQL(", ").join(sql.Identifier(schema, t) for t in _TABLES)
            )
        )


@pytest.fixture(params=["duckdb", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "duckdb":
        store = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
        yield store.state
        store.close()
    else:
        pg: PostgresState = request.getfixturevalue("postgres_state")
        _empty(pg.schema)
        yield pg


def instance(rule_id: int, fp: str, state: str = "firing", **kw: object) -> InstanceRow:
    fields: dict[str, object] = {
        "rule_id": rule_id,
        "fingerprint": fp,
        "project_id": P,
        "labels": f'{{"fp": "{fp}"}}',
        "annotations": '{"summary": "s"}',
        "state": state,
        "value": 2.5,
        "active_since_ns": 10 * S,
        "fired_ns": 20 * S if state != "pending" else 0,
        "resolved_ns": 0,
        "last_eval_ns": 30 * S,
        "last_true_ns": 30 * S,
    }
    fields.update(kw)
    return InstanceRow(**fields)  # type: ignore[arg-type]


def history(rule_id: int, fp: str, state: str, at_s: int, value: float | None = 1.0) -> HistoryRow:
    return HistoryRow(0, P, rule_id, fp, "{}", state, value, at_s * S)


def status(rule_id: int, error: str = "", instances: int = 1) -> RuleStatusRow:
    return RuleStatusRow(rule_id, P, 30 * S, 1.5, error, instances)


def notification(
    channel_id: int, key: str, kind: str = "firing", next_s: int = 0, created_s: int = 1
) -> NotificationRow:
    return NotificationRow(
        0, P, channel_id, key, kind, '{"x": 1}', "pending", 0, next_s * S, "", created_s * S, 0
    )


def rule(state: StateStore, name: str = "cpu", source: str = "api") -> ConfigRow:
    return state.create_alert_config(P, "rule", name, f'{{"name": "{name}"}}', source, 5 * S)


# ------------------------------------------------------------------ configuration


def test_create_get_list_and_names_unique_per_project_and_kind(state: StateStore) -> None:
    b = state.create_alert_config(P, "rule", "b", '{"b": 1}', "api", 5 * S)
    a = state.create_alert_config(P, "rule", "a", '{"a": 1}', "file", 6 * S)
    assert a == ConfigRow(a.id, P, "rule", "a", "file", '{"a": 1}', 1, 6 * S, 6 * S)
    assert a.id != b.id
    with pytest.raises(NameTaken) as taken:
        state.create_alert_config(P, "rule", "a", "{}", "api", 7 * S)
    assert (taken.value.kind, taken.value.name) == ("rule", "a")
    # The same name is free in another kind and another project.
    ch = state.create_alert_config(P, "channel", "a", '{"type": "log"}', "api", 7 * S)
    other = state.create_alert_config(2, "rule", "a", "{}", "api", 7 * S)
    assert [r.name for r in state.list_alert_config(P, "rule")] == ["a", "b"]
    assert [r.id for r in state.list_alert_config(None, "rule")] == [a.id, other.id, b.id]
    assert state.list_alert_config(P, "channel") == [ch]
    assert state.list_alert_config(P, "slo") == []
    assert state.get_alert_config(P, "rule", a.id) == a
    assert state.get_alert_config(P, "channel", a.id) is None  # kind must match
    assert state.get_alert_config(2, "rule", a.id) is None  # and the project


def test_update_versions_and_refuses_conflicts(state: StateStore) -> None:
    row = rule(state, "cpu")
    rule(state, "mem")
    upd = state.update_alert_config(P, "rule", row.id, "cpu2", '{"v": 2}', 9 * S)
    assert upd == replace(row, name="cpu2", spec='{"v": 2}', version=2, updated_ns=9 * S)
    again = state.update_alert_config(P, "rule", row.id, "cpu2", '{"v": 3}', 10 * S, 2)
    assert again is not None and again.version == 3
    with pytest.raises(VersionConflict) as conflict:
        state.update_alert_config(P, "rule", row.id, "cpu2", "{}", 11 * S, expected_version=2)
    assert conflict.value.current == 3
    with pytest.raises(NameTaken):
        state.update_alert_config(P, "rule", row.id, "mem", "{}", 11 * S)
    assert state.update_alert_config(P, "rule", 999, "x", "{}", 11 * S) is None
    assert state.update_alert_config(P, "silence", row.id, "x", "{}", 11 * S) is None
    assert state.get_alert_config(P, "rule", row.id) == again  # refusals changed nothing


def test_deleting_a_rule_deletes_its_instances_and_status_not_history(
    state: StateStore,
) -> None:
    keep, gone = rule(state, "keep"), rule(state, "gone")
    state.save_evaluation(
        [instance(keep.id, "k"), instance(gone.id, "g1"), instance(gone.id, "g2")],
        [],
        [history(gone.id, "g1", "firing", 20)],
        [status(keep.id), status(gone.id, instances=2)],
    )
    assert state.delete_alert_config(P, "channel", gone.id) is False  # wrong kind
    assert state.delete_alert_config(P, "rule", gone.id) is True
    assert state.delete_alert_config(P, "rule", gone.id) is False
    assert [(i.rule_id, i.fingerprint) for i in state.alert_instances(P)] == [(keep.id, "k")]
    assert [s.rule_id for s in state.rule_statuses(P)] == [keep.id]
    assert [h.fingerprint for h in state.alert_history(P)] == ["g1"]
    assert state.get_alert_config(P, "rule", gone.id) is None


def test_deleting_a_channel_deletes_its_groups(state: StateStore) -> None:
    ch = state.create_alert_config(P, "channel", "ops", "{}", "api", S)
    state.save_dispatch([group(ch.id, "a"), group(ch.id + 100, "b")], [], [])
    assert state.delete_alert_config(P, "channel", ch.id)
    assert [g.channel_id for g in state.notification_groups(P)] == [ch.id + 100]


def test_replace_source_keeps_ids_versions_and_cascades(state: StateStore) -> None:
    api = rule(state, "mine", source="api")
    first = state.replace_alert_config_source(
        P, "rule", "file", [("b", '{"b": 1}'), ("a", '{"a": 1}'), ("c", '{"c": 1}')], 5 * S
    )
    assert [(r.name, r.version, r.source) for r in first] == [
        ("a", 1, "file"),
        ("b", 1, "file"),
        ("c", 1, "file"),
    ]
    ids = {r.name: r.id for r in first}
    c_id = ids["c"]
    state.save_evaluation([instance(c_id, "x")], [], [], [status(c_id)])
    second = state.replace_alert_config_source(
        P, "rule", "file", [("a", '{"a": 1}'), ("b", '{"b": 2}'), ("d", '{"d": 1}')], 9 * S
    )
    got = {r.name: (r.id, r.version, r.updated_ns) for r in second}
    assert got["a"] == (ids["a"], 1, 5 * S)  # unchanged: untouched
    assert got["b"] == (ids["b"], 2, 9 * S)  # changed: same id, next version
    assert got["d"][1:] == (1, 9 * S) and got["d"][0] not in ids.values()
    assert "c" not in got
    assert state.alert_instances(P) == [] and state.rule_statuses(P) == []
    # Other sources are left alone; a name of another source is refused, nothing changes.
    assert state.get_alert_config(P, "rule", api.id) == api
    with pytest.raises(NameTaken) as taken:
        state.replace_alert_config_source(P, "rule", "file", [("a", "{}"), ("mine", "{}")], 10)
    assert taken.value.name == "mine"
    with pytest.raises(NameTaken):
        state.replace_alert_config_source(P, "rule", "file", [("z", "{}"), ("z", "{}")], 10)
    assert state.list_alert_config(P, "rule") == sorted(
        [*second, api], key=lambda r: (r.name, r.id)
    )
    # An empty set removes the source's objects; another source's name stays free.
    assert state.replace_alert_config_source(P, "rule", "slo:1", [("x", "{}")], 11)[0].name == "x"
    assert state.replace_alert_config_source(P, "rule", "file", [], 12) == []
    assert [r.name for r in state.list_alert_config(P, "rule")] == ["mine", "x"]


# --------------------------------------------------------------- evaluation state


def test_save_evaluation_upserts_deletes_and_keeps_acks(state: StateStore) -> None:
    r = rule(state)
    state.save_evaluation([instance(r.id, "a", "pending"), instance(r.id, "b")], [], [], [])
    assert state.ack_alert(P, r.id, "b", "ada", 40 * S) is True
    assert state.ack_alert(P, r.id, "nope", "ada", 40 * S) is False
    assert state.ack_alert(2, r.id, "b", "ada", 40 * S) is False  # another project's
    # The evaluator's rows carry no ack: the stored one survives the upsert.
    later = instance(r.id, "b", value=9.0, last_eval_ns=50 * S)
    state.save_evaluation([later, instance(r.id, "a")], [], [], [status(r.id, instances=2)])
    got = {i.fingerprint: i for i in state.alert_instances(P)}
    assert got["b"] == replace(later, acked_by="ada", acked_ns=40 * S)
    assert got["a"].state == "firing" and got["a"].acked_by == ""
    state.save_evaluation([], [(r.id, "a")], [], [], unack=[(r.id, "b")])
    assert [(i.fingerprint, i.acked_by, i.acked_ns) for i in state.alert_instances(P)] == [
        ("b", "", 0)
    ]
    assert state.alert_instances(2) == []
    assert [i.fingerprint for i in state.alert_instances()] == ["b"]


def test_save_evaluation_of_a_deleted_rule_is_dropped(state: StateStore) -> None:
    r = rule(state)
    state.delete_alert_config(P, "rule", r.id)
    state.save_evaluation(
        [instance(r.id, "a")], [], [history(r.id, "a", "firing", 3)], [status(r.id)]
    )
    assert state.alert_instances() == [] and state.rule_statuses() == []
    assert len(state.alert_history(P)) == 1  # what happened is still recorded


def test_history_newest_first_with_filters(state: StateStore) -> None:
    r1, r2 = rule(state, "one"), rule(state, "two")
    state.save_evaluation(
        [],
        [],
        [
            history(r1.id, "a", "pending", 10),
            history(r1.id, "a", "firing", 20, None),
            history(r1.id, "b", "pending", 20),
            history(r2.id, "a", "pending", 30),
            replace(history(r1.id, "a", "resolved", 40), project_id=2),
        ],
        [],
    )
    rows = state.alert_history(P)
    assert [(h.rule_id, h.fingerprint, h.state, h.at_ns // S) for h in rows] == [
        (r2.id, "a", "pending", 30),
        (r1.id, "b", "pending", 20),  # same time: the later stored first
        (r1.id, "a", "firing", 20),
        (r1.id, "a", "pending", 10),
    ]
    assert rows[2].value is None and rows[3].value == 1.0 and rows[0].id > rows[1].id
    assert [h.state for h in state.alert_history(P, rule_id=r1.id, fingerprint="a")] == [
        "firing",
        "pending",
    ]
    assert [h.at_ns // S for h in state.alert_history(P, since_ns=20 * S, limit=2)] == [30, 20]
    assert [h.state for h in state.alert_history(2)] == ["resolved"]


def test_rule_statuses_replace(state: StateStore) -> None:
    a, b = rule(state, "a"), rule(state, "b")
    state.save_evaluation([], [], [], [status(a.id), status(b.id)])
    state.save_evaluation([], [], [], [status(b.id, error="no metric 'x'", instances=0)])
    assert state.rule_statuses(P) == [status(a.id), status(b.id, "no metric 'x'", 0)]
    assert state.rule_statuses(2) == [] and len(state.rule_statuses()) == 2


# ------------------------------------------------------------------ notifications


def group(channel_id: int, key: str, sent_s: int = 0, **kw: object) -> GroupRow:
    return GroupRow(P, channel_id, key, '{"service": "api"}', S, sent_s * S, "d", **kw)  # type: ignore[arg-type]


def test_save_dispatch_groups_and_outbox(state: StateStore) -> None:
    ids = state.save_dispatch(
        [group(1, "g"), group(2, "g")],
        [],
        [notification(1, "g"), notification(2, "g", "resolved")],
    )
    assert len(ids) == 2 and ids[0] < ids[1]
    sent = group(1, "g", 7, escalated_ns=8 * S)
    assert state.save_dispatch([sent], [(2, "g"), (3, "none")], []) == []
    assert state.notification_groups(P) == [sent]
    assert state.notification_groups(2) == []
    log = state.list_notifications(P)
    assert [(n.id, n.channel_id, n.kind, n.status) for n in log] == [
        (ids[1], 2, "resolved", "pending"),
        (ids[0], 1, "firing", "pending"),
    ]
    assert log[1] == replace(notification(1, "g"), id=ids[0])


def test_due_notifications_oldest_first_and_attempts(state: StateStore) -> None:
    ids = state.save_dispatch(
        [],
        [],
        [
            notification(1, "a", next_s=5),
            notification(1, "b", next_s=1),
            notification(2, "c", next_s=9),
        ],
    )
    assert [n.id for n in state.due_notifications(5 * S)] == ids[:2]
    assert [n.id for n in state.due_notifications(10 * S, limit=2)] == ids[:2]
    state.finish_attempt(
        ids[0], status="pending", attempts=1, next_attempt_ns=20 * S, last_error="503", sent_ns=0
    )
    state.finish_attempt(
        ids[1], status="sent", attempts=1, next_attempt_ns=0, last_error="", sent_ns=6 * S
    )
    assert [n.id for n in state.due_notifications(10 * S)] == [ids[2]]
    retried = state.due_notifications(20 * S)
    assert [(n.id, n.attempts, n.last_error) for n in retried] == [
        (ids[0], 1, "503"),
        (ids[2], 0, ""),
    ]
    state.finish_attempt(
        ids[2], status="failed", attempts=9, next_attempt_ns=0, last_error="gone", sent_ns=0
    )
    assert [n.id for n in state.due_notifications(99 * S)] == [ids[0]]
    assert [n.id for n in state.list_notifications(P, status="failed")] == [ids[2]]
    assert [n.id for n in state.list_notifications(P, channel_id=1)] == [ids[1], ids[0]]
    assert [n.id for n in state.list_notifications(P, before_id=ids[2], limit=1)] == [ids[1]]
    assert state.list_notifications(2) == []
    sent = state.list_notifications(P, status="sent")[0]
    assert (sent.status, sent.sent_ns, sent.attempts) == ("sent", 6 * S, 1)


def test_prune_drops_old_history_and_finished_notifications(state: StateStore) -> None:
    r = rule(state)
    state.save_evaluation(
        [], [], [history(r.id, "a", "firing", 10), history(r.id, "a", "resolved", 30)], []
    )
    ids = state.save_dispatch(
        [],
        [],
        [notification(1, "a", created_s=s) for s in (10, 11, 12, 40)],
    )
    for nid, st in zip(ids[:2], ("sent", "failed"), strict=True):
        state.finish_attempt(
            nid, status=st, attempts=1, next_attempt_ns=0, last_error="", sent_ns=0
        )  # type: ignore[arg-type]
    # Old history (1), old sent and failed (2) go; the old pending one is still to send.
    assert state.prune_alerting(20 * S) == 3
    assert [h.at_ns for h in state.alert_history(P)] == [30 * S]
    assert sorted(n.id for n in state.list_notifications(P)) == [ids[2], ids[3]]
    assert state.prune_alerting(20 * S) == 0


# --------------------------------------------------------------------- races


def _dispatch_many(schema: str, worker: int, rounds: int) -> None:
    pg = PostgresState(POSTGRES_URL, schema=schema, pool_size=2)
    try:
        for i in range(rounds):
            pg.save_dispatch(
                [GroupRow(P, 1, f"g{i % 5}", "{}", i, worker, f"w{worker}")],
                [],
                [notification(1, f"g{i % 5}")],
            )
    finally:
        pg.close()


def test_racing_dispatchers_share_groups_on_postgres(postgres_state: PostgresState) -> None:
    """Two processes saving the same groups at once: one row per (channel, group)."""
    _empty(postgres_state.schema)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_dispatch_many, args=(postgres_state.schema, w, 40)) for w in (1, 2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    groups = postgres_state.notification_groups(P)
    assert sorted(g.group_key for g in groups) == ["g0", "g1", "g2", "g3", "g4"]
    assert len(postgres_state.list_notifications(P, limit=1000)) == 80


def test_racing_replacers_and_creators_on_postgres(postgres_state: PostgresState) -> None:
    """Processes loading the same rule file at once end with one object per name, ids
    kept; API creates racing for one name: exactly one wins."""
    _empty(postgres_state.schema)
    items = [(f"r{i}", f'{{"i": {i}}}') for i in range(20)]
    with ThreadPoolExecutor(4) as pool:
        runs = list(
            pool.map(
                lambda _: postgres_state.replace_alert_config_source(P, "rule", "file", items, S),
                range(8),
            )
        )
    assert all(run == runs[0] for run in runs)
    assert [r.name for r in postgres_state.list_alert_config(P, "rule")] == sorted(
        n for n, _ in items
    )

    def create(i: int) -> str:
        try:
            postgres_state.create_alert_config(P, "slo", "one", f'{{"i": {i}}}', "api", S)
        except NameTaken:
            return "taken"
        return "created"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(create, range(8)))
    assert outcomes == ["created"] + ["taken"] * 7
    assert len(postgres_state.list_alert_config(P, "slo")) == 1


def test_alerting_lease_one_holder_at_a_time(state: StateStore) -> None:
    assert state.claim_alerting("a", 10 * S, 30 * S) is True
    assert state.claim_alerting("b", 20 * S, 30 * S) is False  # a's runs to 40 s
    assert state.claim_alerting("a", 35 * S, 30 * S) is True  # renewed to 65 s
    assert state.claim_alerting("b", 64 * S, 30 * S) is False
    assert state.claim_alerting("b", 65 * S, 30 * S) is True  # a stopped renewing
    assert state.claim_alerting("a", 70 * S, 30 * S) is False


def test_racing_lease_claims_on_postgres(postgres_state: PostgresState) -> None:
    _empty(postgres_state.schema)
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda h: postgres_state.claim_alerting(f"h{h}", S, 30 * S), range(16)))
    assert won.count(True) == 1
