"""The shared state in PostgreSQL under races between processes (scale-out mode): two
ingest processes receiving the same new bug at the same moment create one issue; a
one-time sign-in token signs in once; migrations run once; PostgreSQL down is
``StorageUnavailable`` without the password.

Real OS processes (``multiprocessing``, spawned) against the machine's real PostgreSQL
(``tests/server/postgres.py``), released together by a barrier. PostgreSQL unreachable
fails these tests."""

from __future__ import annotations

import multiprocessing
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from heron.server.model import ErrorEvent
from heron.server.store.base import StorageUnavailable
from heron.server.store.postgres._pool import mask
from heron.server.store.postgres.schema import MIGRATIONS
from heron.server.store.postgres.state import PostgresState
from heron.server.store.state import VersionConflict
from tests.server.postgres import POSTGRES_URL, drop_schema, fresh_schema

S = 10**9
PROCESSES = 4
_SPAWN = multiprocessing.get_context("spawn")  # no forked copies of pytest's threads


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    name = fresh_schema()
    PostgresState(POSTGRES_URL, schema=name).close()
    yield name
    drop_schema(name)


@pytest.fixture
def state(schema: str) -> Iterator[PostgresState]:
    s = PostgresState(POSTGRES_URL, schema=schema)
    yield s
    s.close()


def count(schema: str, table: str, where: str = "true", params: tuple[Any, ...] = ()) -> int:
    with psycopg.connect(POSTGRES_URL) as con:
        row = con.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE ").format(sql.Identifier(schema, table))
            + sql.SQL(where),
            params,
        ).fetchone()
    assert row is not None
    return int(row[0])


def event(n: int, fingerprint: int, t: int) -> ErrorEvent:
    return ErrorEvent(
        event_id=f"{n:032x}",
        time_ns=t * S,
        received_ns=t * S,
        service="shop",
        environment="prod",
        release="1.0",
        level="error",
        platform="python",
        source="sentry",
        exc_type="ValueError",
        message=f"bug {fingerprint}",
        culprit="",
        issue_fingerprint=fingerprint,
    )


# ------------------------------------------------- work done in each process


def _assign_worker(
    schema: str, barrier: Any, worker: int, rounds: list[list[int]], per_fp: int, out: Any
) -> None:
    """Each round: wait for the others, then group ``per_fp`` events of each fingerprint
    (in an order of this worker's own) in one call. Reports (fingerprint, issue id)."""
    try:
        state = PostgresState(POSTGRES_URL, schema=schema)
        rng = random.Random(worker)
        seen: list[tuple[int, int]] = []
        for r, fingerprints in enumerate(rounds):
            events = [
                event(worker * 1_000_000 + r * 1_000 + i, fp, 100 + r + i % 7)
                for i, fp in enumerate(fp for fp in fingerprints for _ in range(per_fp))
            ]
            rng.shuffle(events)
            barrier.wait(60)
            state.assign_issues([(1, e) for e in events])
            seen += [(e.issue_fingerprint, e.issue_id) for e in events]
        state.close()
        out.put(("ok", seen))
    except BaseException as err:  # reported to the test, which fails
        out.put(("error", repr(err)))


def _redeem_worker(schema: str, barrier: Any, worker: int, tokens: list[str], out: Any) -> None:
    """Each round: wait for the others, then try to sign in with the round's token."""
    try:
        state = PostgresState(POSTGRES_URL, schema=schema)
        won = []
        for token in tokens:
            barrier.wait(60)
            session = f"{token}-session-{worker}"
            won.append(state.redeem_login_token(token, 150, session, 10_000, None))
        state.close()
        out.put(("ok", won))
    except BaseException as err:
        out.put(("error", repr(err)))


def _edit_worker(
    schema: str, barrier: Any, worker: int, dashboard_ids: list[int], out: Any
) -> None:
    """Each round: wait for the others, then save the round's dashboard as based on its
    version 1. Reports per round whether this save won."""
    try:
        state = PostgresState(POSTGRES_URL, schema=schema)
        won = []
        for did in dashboard_ids:
            barrier.wait(60)
            try:
                title = f"edit by {worker}"
                state.update_dashboard(1, did, title, "{}", 200 + worker, expected_version=1)
                won.append(True)
            except VersionConflict as conflict:
                assert conflict.current == 2
                won.append(False)
        state.close()
        out.put(("ok", won))
    except BaseException as err:
        out.put(("error", repr(err)))


def _migrate_worker(schema: str, barrier: Any, worker: int, out: Any) -> None:
    try:
        barrier.wait(60)
        state = PostgresState(POSTGRES_URL, schema=schema)
        state.close()
        out.put(("ok", state.version))
    except BaseException as err:
        out.put(("error", repr(err)))


def run_together(target: Callable[..., None], n: int, *args: Any) -> list[Any]:
    """Start ``n`` processes of ``target(*args, barrier, i, ..., out)`` released at once
    by a barrier; their results (failing on any error)."""
    barrier = _SPAWN.Barrier(n)
    out = _SPAWN.Queue()
    procs = [
        _SPAWN.Process(target=target, args=(args[0], barrier, i, *args[1:], out)) for i in range(n)
    ]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    errors = [r for kind, r in results if kind == "error"]
    assert errors == []
    return [r for _, r in results]


# ------------------------------------------------------------------- tests


def test_racing_processes_create_one_issue_per_new_bug(schema: str, state: PostgresState) -> None:
    # Five rounds, one new bug each; the first fingerprint is above 2**63 (stored as a
    # negative BIGINT).
    bugs = [0xFEED_0000_0000_0002, *range(1, 5)]
    results = run_together(_assign_worker, PROCESSES, schema, [[fp] for fp in bugs], 5)
    by_fp: dict[int, set[int]] = {}
    for seen in results:
        for fp, iid in seen:
            by_fp.setdefault(fp, set()).add(iid)
    assert sorted(by_fp) == sorted(bugs)
    assert all(len(ids) == 1 for ids in by_fp.values()), by_fp
    assert count(schema, "issues", "fingerprint < 1000") == len(bugs)
    for r, fp in enumerate(bugs):
        (iid,) = by_fp[fp]
        row = state.issue_states(1, [iid])[iid]
        assert (row.fingerprint, row.event_count) == (fp, PROCESSES * 5)
        assert (row.first_seen_ns, row.last_seen_ns) == ((100 + r) * S, (104 + r) * S)


def test_racing_batches_of_many_bugs_neither_duplicate_nor_deadlock(
    schema: str, state: PostgresState
) -> None:
    # Round r: six new bugs and the six of the round before, each worker in its own order.
    fresh = [[1_000 + r * 10 + i for i in range(6)] for r in range(8)]
    rounds = [fresh[r] + (fresh[r - 1] if r else []) for r in range(8)]
    results = run_together(_assign_worker, PROCESSES, schema, rounds, 2)
    by_fp: dict[int, set[int]] = {}
    for seen in results:
        for fp, iid in seen:
            by_fp.setdefault(fp, set()).add(iid)
    assert sorted(by_fp) == sorted(fp for r in fresh for fp in r)
    assert all(len(ids) == 1 for ids in by_fp.values()), by_fp
    assert count(schema, "issues", "fingerprint BETWEEN 1000 AND 1100") == 48
    states = state.issue_states(1, [next(iter(ids)) for ids in by_fp.values()])
    expected = {fp: PROCESSES * 2 * (1 if fp >= 1_070 else 2) for fp in by_fp}
    assert {s.fingerprint: s.event_count for s in states.values()} == expected


def test_a_dashboard_edited_by_racing_processes_keeps_one_edit_per_version(
    schema: str, state: PostgresState
) -> None:
    ids = [state.create_dashboard(1, f"board {i}", "{}", 100).id for i in range(5)]
    results = run_together(_edit_worker, PROCESSES, schema, ids)
    for r, did in enumerate(ids):
        winners = [w for w, won in enumerate(results) if won[r]]
        assert len(winners) == 1, (did, results)
        row = state.get_dashboard(1, did)
        assert row is not None and row.version == 2
        assert row.updated_ns - 200 in range(PROCESSES)
        assert row.title == f"edit by {row.updated_ns - 200}"  # the winner's whole edit


def test_a_sign_in_token_raced_by_processes_signs_in_once(
    schema: str, state: PostgresState
) -> None:
    uid = state.add_user("racer", "h", False, 1)
    assert uid is not None
    tokens = [f"race-token-{i}" for i in range(5)]
    for token in tokens:
        state.add_login_token("racer", token, 100, 200)
    results = run_together(_redeem_worker, PROCESSES, schema, tokens)
    for i in range(len(tokens)):
        winners = [won[i] for won in results if won[i] is not None]
        assert winners == [(uid, "racer", False)]
    assert count(schema, "sessions", "user_id = %s", (uid,)) == len(tokens)
    assert count(schema, "login_tokens", "user_id = %s", (uid,)) == 0


def test_migrations_are_idempotent_and_run_once_when_raced() -> None:
    name = fresh_schema()
    try:
        versions = run_together(_migrate_worker, 3, name)
        assert versions == [MIGRATIONS[-1][0]] * 3
        again = PostgresState(POSTGRES_URL, schema=name)
        assert again.version == MIGRATIONS[-1][0]
        again.close()
        assert count(name, "schema_version") == len(MIGRATIONS)
    finally:
        drop_schema(name)


def test_a_dropped_connection_is_unavailable_then_recovers(state: PostgresState) -> None:
    assert state.count_users() >= 0  # a pooled connection now exists
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        pids = [c.info.backend_pid for c in state._pool._idle]
        assert pids
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", [pids])
    with pytest.raises(StorageUnavailable):
        state.count_users()
    assert state.count_users() >= 0


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://heron:pg-s3cret-pw@127.0.0.1:1/test",
        "host=127.0.0.1 port=1 dbname=test user=heron password=pg-s3cret-pw",
    ],
)
def test_postgres_down_is_unavailable_without_the_password(url: str) -> None:
    with pytest.raises(StorageUnavailable) as caught:
        PostgresState(url, schema=fresh_schema())
    message = str(caught.value)
    assert "pg-s3cret-pw" not in message and "***" in message
    assert "127.0.0.1" in message and caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db?password=pw&sslmode=require", "postgresql://u@h/db?password=***"),
        ("host=h password='p w' user=u", "host=h password=*** user=u"),
        ("host=h PASSWORD = pw user=u", "host=h PASSWORD = *** user=u"),
        ("postgresql://h/db", "postgresql://h/db"),
    ],
)
def test_mask_hides_the_password(url: str, shown: str) -> None:
    assert mask(url) == shown


def test_a_bad_schema_name_is_refused() -> None:
    with pytest.raises(ValueError):
        PostgresState(POSTGRES_URL, schema="heron; DROP TABLE users")


def test_clickhouse_store_keeps_its_state_in_postgres(
    schema: str, chdb_dir: Path, tmp_path: Path
) -> None:
    from heron.server.store.clickhouse.store import ClickHouseStore

    store = ClickHouseStore(
        f"chdb://{chdb_dir}",
        database=f"heron_test_{uuid.uuid4().hex[:12]}",
        state_path=tmp_path / "unused.duckdb",  # state_url wins
        state_url=POSTGRES_URL,
        state_schema=schema,
    )
    try:
        assert isinstance(store.state, PostgresState) and store.state.schema == schema
        assert store.state.ensure_project("ch-test", "hk_ch", 1)[1:] == ("hk_ch", True)
    finally:
        store.close()
    assert not (tmp_path / "unused.duckdb").exists()
    # What one process stored, another one (here: a fresh connection) finds.
    other = PostgresState(POSTGRES_URL, schema=schema)
    assert other.ensure_project("ch-test", "hk_other", 2) == (1, "hk_ch", False)
    other.close()


def test_a_role_owning_only_its_schema_can_start() -> None:
    """After the first start (or a DBA's ``CREATE SCHEMA … AUTHORIZATION``), the role
    needs no CREATE on the database."""
    role, name = f"heron_test_role_{uuid.uuid4().hex[:8]}", fresh_schema()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    try:
        url = make_conninfo(POSTGRES_URL, user=role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            PostgresState(url, schema=fresh_schema())  # may not create a schema
        state = PostgresState(url, schema=name)
        assert state.add_user("ann", "h", True, 1) == 1
        state.close()
    finally:
        drop_schema(name)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
