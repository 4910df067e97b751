"""The state store (store.state) on every backend: DuckDB (the embedded default) and
PostgreSQL (shared by the processes of a scale-out deployment), same inputs, same
assertions. Through its callers (the default project's bootstrap) and directly: users,
sessions, one-time sign-in tokens, issue grouping and status, dashboards.

PostgreSQL is the machine's real server (``tests/server/postgres.py``): this module gets
a schema of its own, emptied before each test and dropped after the module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg import sql

from heron.server.analyze.grouping import assign
from heron.server.auth import User
from heron.server.auth._accounts import Accounts
from heron.server.auth._passwords import UserError
from heron.server.model import ErrorEvent
from heron.server.projects import Projects
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.postgres.state import PostgresState
from heron.server.store.state import (
    DashboardRow,
    LastAdmin,
    StateStore,
    UnknownUser,
    VersionConflict,
)
from tests.server.postgres import POSTGRES_URL, drop_schema, fresh_schema

S = 10**9
STATE_BACKENDS = ["duckdb", "postgres"]
_TABLES = (
    "projects",
    "ingest_keys",
    "browser_keys",
    "api_tokens",
    "users",
    "sessions",
    "login_tokens",
    "issues",
    "releases",
    "dashboards",
)


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


@pytest.fixture(params=STATE_BACKENDS)
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "duckdb":
        store = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
        yield store.state
        store.close()
    else:
        pg: PostgresState = request.getfixturevalue("postgres_state")
        _empty(pg.schema)
        yield pg


def holder(state: StateStore) -> Any:
    """What ``Projects`` needs of a store: its state."""
    return SimpleNamespace(state=state)


# ---------------------------------------------------------------- projects


def test_bootstrap_creates_once_then_finds(state: StateStore) -> None:
    projects = Projects(holder(state))
    first = projects.bootstrap(ingest_key="hk_given")
    assert (first.project_id, first.ingest_key, first.created) == (1, "hk_given", True)
    assert first.api_token is not None and projects.token_valid(first.api_token)
    again = Projects(holder(state)).bootstrap(ingest_key="hk_other")
    assert (again.ingest_key, again.api_token, again.created) == ("hk_given", None, False)
    assert projects.project_for_key("hk_given") == 1
    assert projects.project_for_key("hk_other") is None
    assert state.ingest_keys() == [("hk_given", 1)]


def test_browser_key_is_created_once_per_project(state: StateStore) -> None:
    projects = Projects(holder(state))
    first = projects.bootstrap(ingest_key="hk_given", browser_key="hb_given_browser_key_0123")
    assert first.browser_key == "hb_given_browser_key_0123"
    again = Projects(holder(state)).bootstrap(browser_key="hb_other_browser_key_0123")
    assert again.browser_key == "hb_given_browser_key_0123"  # the stored one wins
    assert projects.project_for_browser_key("hb_given_browser_key_0123") == 1
    assert projects.project_for_browser_key("hb_other_browser_key_0123") is None
    assert projects.project_for_browser_key("hk_given") is None  # not an ingest key
    assert projects.project_for_key("hb_given_browser_key_0123") is None  # nor the reverse
    assert projects.browser_key(1) == "hb_given_browser_key_0123"
    assert state.browser_keys() == [("hb_given_browser_key_0123", 1)]


def test_a_generated_browser_key() -> None:
    from heron.server.projects import new_browser_key, new_ingest_key

    key = new_browser_key()
    assert key.startswith("hb_") and len(key) >= 32 and key != new_browser_key()
    assert not new_ingest_key().startswith("hb_")


def test_a_configured_api_token_is_stored_once(state: StateStore) -> None:
    projects = Projects(holder(state))
    assert projects.bootstrap(api_token="ht_configured").api_token == "ht_configured"
    assert projects.bootstrap(api_token="ht_configured").api_token is None
    assert projects.token_valid("ht_configured")
    assert len(state.api_token_digests()) == 1


def test_first_api_token_only_when_there_is_none(state: StateStore) -> None:
    assert state.add_first_api_token("d1", "first", 1) is True
    assert state.add_first_api_token("d2", "second", 2) is False
    assert state.add_api_token("d1", "again", 3) is False
    assert state.add_api_token("d3", "third", 4) is True
    assert sorted(state.api_token_digests()) == ["d1", "d3"]


# ------------------------------------------------------------------- users


def test_user_changes_the_store_refuses(state: StateStore) -> None:
    admin = state.add_first_user("root", "h1", True, 1)
    assert admin is not None
    assert state.add_first_user("other", "h2", True, 2) is None
    assert state.add_user("root", "h3", False, 3) is None
    with pytest.raises(LastAdmin):
        state.delete_user("root")
    with pytest.raises(UnknownUser):
        state.set_password("nobody", "h4")
    with pytest.raises(UnknownUser):
        state.delete_user("nobody")
    with pytest.raises(UnknownUser):
        state.add_login_token("nobody", "t", 1, 2)
    assert state.user_password_hash("root") == ((admin, "root", True), "h1")
    assert state.user_password_hash("nobody") is None
    assert state.count_users() == 1


def test_rehash_only_replaces_the_hash_it_read(state: StateStore) -> None:
    uid = state.add_user("ann", "old", False, 1)
    assert uid is not None
    state.rehash(uid, "stale", "new")
    assert state.user_password_hash("ann") == ((uid, "ann", False), "old")
    state.rehash(uid, "old", "new")
    assert state.user_password_hash("ann") == ((uid, "ann", False), "new")


def test_password_change_and_deletion_end_sessions(state: StateStore) -> None:
    root = state.add_first_user("root", "h", True, 1)
    ann = state.add_user("ann", "h", False, 2)
    assert root is not None and ann is not None
    state.add_session("s1", ann, 10, 1000, None)
    state.add_session("s2", ann, 10, 1000, None)
    state.add_session("s3", root, 10, 1000, None)
    state.add_login_token("ann", "tok", 10, 1000)
    assert state.list_users(20) == [("ann", False, 2, 2), ("root", True, 1, 1)]
    assert state.set_password("ann", "h2") == 2
    assert state.session_user("s1", 20) is None
    assert state.redeem_login_token("tok", 20, "s4", 1000, None) is None
    state.add_session("s5", ann, 30, 1000, None)
    assert state.delete_user("ann") == 1
    assert state.session_user("s5", 40) is None
    assert state.list_users(50) == [("root", True, 1, 1)]


# ---------------------------------------------------------------- sessions


def test_sessions_expire_rotate_and_end(state: StateStore) -> None:
    uid = state.add_user("ann", "h", False, 1)
    assert uid is not None
    state.add_session("a", uid, 100, 200, None)
    assert state.session_user("a", 150) == (uid, "ann", False)
    assert state.session_user("a", 200) is None  # expired
    state.add_session("b", uid, 150, 400, replaces_sha256="a")
    state.add_session("c", uid, 160, 400, replaces_sha256="b")
    assert state.session_user("b", 170) is None
    assert state.session_user("c", 170) == (uid, "ann", False)
    state.add_session("d", uid, 500, 900, None)  # drops expired sessions
    assert state.list_users(0) == [("ann", False, 1, 1)]
    state.end_session("d")
    assert state.session_user("d", 600) is None


def test_a_sign_in_token_is_redeemed_once(state: StateStore) -> None:
    uid = state.add_user("ann", "h", True, 1)
    assert uid is not None
    state.add_login_token("ann", "tok", 100, 200)
    assert state.redeem_login_token("tok", 150, "s1", 900, None) == (uid, "ann", True)
    assert state.redeem_login_token("tok", 151, "s2", 900, None) is None
    assert state.session_user("s1", 160) == (uid, "ann", True)
    assert state.session_user("s2", 160) is None
    state.add_login_token("ann", "late", 300, 400)
    assert state.redeem_login_token("late", 400, "s3", 900, None) is None  # expired
    state.add_login_token("ann", "late", 500, 600)  # consumed even when expired
    assert state.redeem_login_token("unknown", 500, "s4", 900, None) is None


def test_sign_in_flow_through_accounts(state: StateStore) -> None:
    """What the auth layer does with the state (tests/server/test_auth.py runs it through
    the app on DuckDB)."""
    now = [1_000 * S]
    accounts = Accounts(state, clock=lambda: now[0])
    admin = accounts.create_first_admin("Root", "hash-1")
    assert admin is not None and admin == User(admin.id, "root", True)
    assert accounts.create_first_admin("other", "hash-2") is None
    with pytest.raises(UserError):
        accounts.create_user("ROOT", "hash-3", is_admin=False)
    assert accounts.password_hash("rOOt") == (admin, "hash-1")
    sid = accounts.start_session(admin.id, ttl_s=60)
    assert accounts.session_user(sid) == admin
    rotated = accounts.start_session(admin.id, ttl_s=60, replaces=sid)
    assert accounts.session_user(sid) is None and accounts.session_user(rotated) == admin
    token = accounts.create_login_token("root", ttl_s=30)
    redeemed = accounts.redeem_login_token(token, ttl_s=60)
    assert redeemed is not None and redeemed[0] == admin
    assert accounts.redeem_login_token(token, ttl_s=60) is None
    assert [u.sessions for u in accounts.list_users()] == [2]
    now[0] += 61 * S
    assert accounts.session_user(rotated) is None  # expired
    assert accounts.set_password("root", "hash-4") == 2  # counts the expired one too
    with pytest.raises(UserError):
        accounts.delete_user("root")  # the last admin
    with pytest.raises(UserError):
        accounts.set_password("nobody", "h")


# ---------------------------------------------------------- issue grouping

_n = 0


def ev(t: int, release: str = "1.0", message: str = "boom", **kw: Any) -> ErrorEvent:
    global _n
    _n += 1
    e = ErrorEvent(
        event_id=f"{_n:032x}",
        time_ns=t * S,
        received_ns=t * S,
        service="shop",
        environment="prod",
        release=release,
        level=kw.pop("level", "error"),
        platform="python",
        source="sentry",
        exc_type=kw.pop("exc_type", "ValueError"),
        message=message,
        culprit="",
        **kw,
    )
    return assign(e)


def send(state: StateStore, *events: ErrorEvent) -> int:
    """Group the events into issues; the issue id of the last one."""
    state.assign_issues([(1, e) for e in events])
    assert all(e.issue_id > 0 for e in events)
    return events[-1].issue_id


def issue(state: StateStore, issue_id: int) -> dict[str, Any]:
    found = state.issue_states(1, [issue_id])
    assert list(found) == [issue_id]
    return asdict(found[issue_id])


def test_same_bug_one_issue_with_counters(state: StateStore) -> None:
    a, b = ev(100, "1.0", "order 17 failed"), ev(90, "1.1", "order 4242 failed")
    first_id = send(state, a, b)
    assert a.issue_id == b.issue_id == first_id
    assert send(state, ev(120, "1.2", "order 5 failed", level="fatal")) == first_id
    other_id = send(state, ev(110, "1.3", "other bug"))
    assert other_id != first_id
    first = issue(state, first_id)
    assert first["event_count"] == 3 and first["project_id"] == 1
    assert (first["first_seen_ns"], first["last_seen_ns"]) == (90 * S, 120 * S)
    assert first["first_release"] == "1.1"  # of its first event in time
    assert first["last_release"] == "1.2" and first["level"] == "fatal"
    assert first["title"] == "ValueError: order 4242 failed"  # its first event's
    assert first["status"] == "open" and first["resolved_release"] is None
    assert first["fingerprint"] == a.issue_fingerprint
    assert issue(state, other_id)["event_count"] == 1
    assert state.issue_states(1, [first_id, 10_000]).keys() == {first_id}
    assert state.issue_states(2, [first_id]) == {}
    assert state.issue_states(1, []) == {}


def test_a_fingerprint_above_2_63_round_trips(state: StateStore) -> None:
    big = ev(100)
    big.issue_fingerprint = 2**64 - 5
    iid = send(state, big)
    again = ev(110)
    again.issue_fingerprint = 2**64 - 5
    assert send(state, again) == iid
    assert issue(state, iid)["fingerprint"] == 2**64 - 5
    assert issue(state, iid)["event_count"] == 2


def test_resolved_without_release_reopens_on_a_newer_event(state: StateStore) -> None:
    iid = send(state, ev(100, release=""))
    assert state.set_issue_status(1, iid, "resolved", None, 200 * S)
    assert issue(state, iid)["resolved_release"] == ""  # no release known
    send(state, ev(150, release=""))  # older than the resolution: stays resolved
    assert issue(state, iid)["status"] == "resolved"
    send(state, ev(250, release=""))
    row = issue(state, iid)
    assert row["status"] == "open" and row["regressed_ns"] == 250 * S
    assert row["resolved_release"] is None and row["event_count"] == 3


def test_resolved_in_a_release_reopens_only_in_a_later_release(state: StateStore) -> None:
    iid = send(state, ev(100, "1.0"))
    send(state, ev(200, "2.0", message="unrelated", exc_type="KeyError"))  # 2.0 first seen
    assert state.set_issue_status(1, iid, "resolved", "2.0", 300 * S)
    send(state, ev(400, "1.0"))  # an old release still running: not a regression
    send(state, ev(410, "2.0"))  # the fixed release itself: not a regression
    send(state, ev(420, ""))  # unknown release: not a regression
    row = issue(state, iid)
    assert row["status"] == "resolved" and row["event_count"] == 4 and row["regressed_ns"] is None
    send(state, ev(500, "2.1"))
    row = issue(state, iid)
    assert row["status"] == "open" and row["regressed_ns"] == 500 * S
    assert row["last_release"] == "2.1"


def test_resolved_in_an_unknown_release_falls_back_to_time(state: StateStore) -> None:
    iid = send(state, ev(100, "1.0"))
    assert state.set_issue_status(1, iid, "resolved", "9.9-never-seen", 200 * S)
    send(state, ev(150, "1.0"))
    assert issue(state, iid)["status"] == "resolved"
    send(state, ev(250, "1.0"))
    assert issue(state, iid)["status"] == "open"


def test_ignored_stays_ignored_but_counts(state: StateStore) -> None:
    iid = send(state, ev(100, "1.0"))
    assert state.set_issue_status(1, iid, "ignored", None, 200 * S)
    send(state, ev(300, "3.0"), ev(301, "3.0"))
    row = issue(state, iid)
    assert row["status"] == "ignored" and row["event_count"] == 3
    assert row["last_seen_ns"] == 301 * S and row["last_release"] == "3.0"


def test_regression_within_one_batch_counts_every_event(state: StateStore) -> None:
    iid = send(state, ev(100, ""))
    assert state.set_issue_status(1, iid, "resolved", "", 200 * S)
    send(state, ev(260, ""), ev(250, ""), ev(150, ""))
    row = issue(state, iid)
    assert row["status"] == "open" and row["regressed_ns"] == 250 * S and row["event_count"] == 4


def test_many_issues_in_one_call(state: StateStore) -> None:
    bugs = [f"Error{i}" for i in range(7)]
    send(state, *(ev(100, exc_type=b) for b in bugs))
    later = [ev(200 + i, "2.0", exc_type=b) for i, b in enumerate(bugs)]
    send(state, *later, ev(300, exc_type="Error0"))
    rows = state.issue_states(1, [e.issue_id for e in later])
    by_type = {r.exc_type: r for r in rows.values()}
    assert len(rows) == 7 and by_type["Error0"].event_count == 3
    assert by_type["Error0"].last_seen_ns == 300 * S and by_type["Error0"].last_release == "1.0"
    assert by_type["Error6"].event_count == 2 and by_type["Error6"].last_release == "2.0"


def test_status_changes(state: StateStore) -> None:
    iid = send(state, ev(100, "1.4"))
    assert not state.set_issue_status(1, iid + 1000, "ignored", None, 1)
    assert not state.set_issue_status(2, iid, "ignored", None, 1)  # another project's
    assert state.set_issue_status(1, iid, "resolved", None, 200 * S)
    row = issue(state, iid)  # resolved in the issue's last release
    assert (row["status"], row["resolved_release"], row["status_changed_ns"]) == (
        "resolved",
        "1.4",
        200 * S,
    )
    assert state.set_issue_status(1, iid, "open", None, 300 * S)
    row = issue(state, iid)
    assert (row["status"], row["resolved_release"], row["regressed_ns"]) == ("open", None, None)


# -------------------------------------------------------------- dashboards


def test_dashboard_crud(state: StateStore) -> None:
    assert state.list_dashboards(1) == []
    b = state.create_dashboard(1, "b board", '{"title": "b board"}', 10)
    a = state.create_dashboard(1, "a board", '{"title": "a board"}', 11)
    other = state.create_dashboard(2, "elsewhere", "{}", 12)
    assert b == DashboardRow(b.id, 1, "b board", '{"title": "b board"}', 1, 10, 10)
    assert len({a.id, b.id, other.id}) == 3
    assert [d.title for d in state.list_dashboards(1)] == ["a board", "b board"]
    assert state.get_dashboard(1, a.id) == a
    assert state.get_dashboard(1, other.id) is None  # another project's

    changed = state.update_dashboard(1, b.id, "b2", '{"title": "b2"}', 20)
    assert changed == DashboardRow(b.id, 1, "b2", '{"title": "b2"}', 2, 10, 20)
    assert state.update_dashboard(1, b.id, "b3", "{}", 21, expected_version=2) is not None
    with pytest.raises(VersionConflict) as stale:
        state.update_dashboard(1, b.id, "lost", "{}", 22, expected_version=2)
    assert stale.value.current == 3
    assert state.get_dashboard(1, b.id).title == "b3"  # type: ignore[union-attr]
    assert state.update_dashboard(1, 9999, "x", "{}", 23) is None
    assert state.update_dashboard(2, a.id, "x", "{}", 23) is None

    assert state.delete_dashboard(1, a.id) is True
    assert state.delete_dashboard(1, a.id) is False
    assert state.delete_dashboard(1, other.id) is False
    assert [d.id for d in state.list_dashboards(1)] == [b.id]
    assert [d.id for d in state.list_dashboards(2)] == [other.id]
