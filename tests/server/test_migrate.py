"""``heron migrate``: a DuckDB data dir copied into ClickHouse (chdb) and PostgreSQL state.

The source is filled through the real write path: spans through the ingest pipeline
(``test_query``'s and ``test_db_api``'s, then the analysis job), error events, issues
with statuses and logs (``errors_seed``), a user with a session. ``heron migrate`` runs
twice through the CLI entry point; the public query functions then answer the same on
the migrated ClickHouse store as on the DuckDB source.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from heron.cli import main
from heron.server import query
from heron.server.auth._accounts import Accounts, digest
from heron.server.auth._passwords import Passwords
from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import analyze_recent
from heron.server.query import LogQuery, TimeRange
from heron.server.store.alerting import (
    GroupRow,
    HistoryRow,
    InstanceRow,
    NotificationRow,
    RuleStatusRow,
)
from heron.server.store.clickhouse.store import ClickHouseStore
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.migrate import TELEMETRY
from tests.server import errors_seed, test_api, test_db_api, test_query, test_rum_store
from tests.server.backends import LONG_RETENTION
from tests.server.postgres import fresh_database

NS = 1_000_000_000
PROJECT = 1
INGEST_KEY = "hk_migrate_test_key_0123456789"
API_TOKEN = "ht_migrate_test_token_0123456789"
PASSWORD = "correct horse battery staple"
OLD = TimeRange(test_query.NOW_NS - 3600 * NS, test_query.NOW_NS)
DB_RANGE = TimeRange(test_api.NOW_NS - 600 * NS, test_api.NOW_NS)


@dataclass
class Source:
    data_dir: Path
    now_ns: int
    session: str
    issue_ids: dict[str, int]
    trace_with_logs: str

    @property
    def recent(self) -> TimeRange:
        return TimeRange(self.now_ns - 86_400 * NS, self.now_ns + 60 * NS)


@dataclass
class Run:
    code: int
    stderr: str


def migrate(*args: str, env: dict[str, str] | None = None) -> Run:
    """``heron migrate ARGS`` in this process (chdb: one data directory per process)."""
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        code = main(["migrate", *args])
    return Run(code, err.getvalue())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    data_dir = tmp_path_factory.mktemp("duckdb-data")
    store = DuckDBStore(data_dir / "heron.duckdb").start()
    try:
        now = time.time_ns()
        store.state.ensure_project("default", INGEST_KEY, now)
        store.state.add_api_token(digest(API_TOKEN), "api", now)
        Pipeline(store).submit_spans(PROJECT, test_query.all_spans()).result(30)
        Pipeline(store).submit_spans(PROJECT, test_db_api.seed()).result(30)
        analyze_recent(store, test_api.NOW_NS, window_s=600)
        seed = errors_seed.build(now)
        issue_ids = errors_seed.insert(store, seed)
        accounts = Accounts(store.state)
        ada = accounts.create_user("ada", Passwords().hash(PASSWORD), is_admin=True)
        session = accounts.start_session(ada.id, 3600)
        for title in ("Checkout", "Runtime"):
            store.state.create_dashboard(PROJECT, title, f'{{"title": "{title}"}}', now)
        alert_state(store, now)
        rum = test_rum_store.write(PROJECT, test_rum_store.ALL)
        assert store.submit_rum(rum).result(30) == len(test_rum_store.ALL)
    finally:
        store.close()
    return Source(data_dir, now, session, issue_ids, seed.trace_with_logs)


def alert_state(store: DuckDBStore, now: int) -> None:
    """A rule firing with its history and status, a channel with a group and a sent
    notification."""
    state = store.state
    rule = state.create_alert_config(PROJECT, "rule", "slow", '{"name": "slow"}', "api", now)
    channel = state.create_alert_config(PROJECT, "channel", "ops", '{"type": "log"}', "api", now)
    firing = InstanceRow(rule.id, "fp", PROJECT, "{}", "{}", "firing", 3.0, now, now, 0, now, now)
    state.save_evaluation(
        [firing],
        [],
        [HistoryRow(0, PROJECT, rule.id, "fp", "{}", "firing", 3.0, now)],
        [RuleStatusRow(rule.id, PROJECT, now, 1.0, "", 1)],
    )
    state.ack_alert(PROJECT, rule.id, "fp", "ada", now)
    state.save_dispatch(
        [GroupRow(PROJECT, channel.id, "g", "{}", now, now, "fp")],
        [],
        [NotificationRow(0, PROJECT, channel.id, "g", "firing", "{}", "sent", 1, 0, "", now, now)],
    )


@pytest.fixture(scope="module")
def target(source: Source, chdb_dir: Path) -> Iterator[tuple[list[Run], str, str]]:
    """Two runs of ``heron migrate`` into a fresh chdb database and PostgreSQL."""
    database = f"heron_test_{uuid.uuid4().hex[:12]}"
    with fresh_database() as state_url:
        args = ("--data-dir", str(source.data_dir), "--to-clickhouse-url", f"chdb://{chdb_dir}")
        env = {
            "HERON_CLICKHOUSE_DATABASE": database,
            "HERON_STATE_URL": state_url,
            # the test data is dated 2023: keep it (a ClickHouse TTL counts from now)
            "HERON_RETENTION_DAYS": str(LONG_RETENTION),
            "HERON_ROLLUP_RETENTION_DAYS": str(LONG_RETENTION),
        }
        runs = [migrate(*args, env=env), migrate(*args, env=env)]
        yield runs, database, state_url


@pytest.fixture(scope="module")
def stores(
    target: tuple[list[Run], str, str], source: Source, chdb_dir: Path
) -> Iterator[tuple[DuckDBStore, ClickHouseStore]]:
    _, database, state_url = target
    duck = DuckDBStore(source.data_dir / "heron.duckdb").start()
    ch = ClickHouseStore(
        f"chdb://{chdb_dir}",
        database=database,
        retention_days=LONG_RETENTION,
        rollup_retention_days=LONG_RETENTION,
        state_url=state_url,
    )
    yield duck, ch
    ch.close()
    duck.close()


def plain(value: Any) -> Any:
    from tests.server.test_backend_conformance import plain as as_dicts

    return as_dicts(value)


def test_state_into_the_data_dirs_state_file(
    source: Source, chdb_dir: Path, tmp_path: Path
) -> None:
    """Without a state URL the state goes to ``data_dir/state.duckdb`` (one process).
    Runs before the tests that hold the source open (``stores``)."""
    database = f"heron_test_{uuid.uuid4().hex[:12]}"
    config = tmp_path / "heron.toml"  # the target as `heron serve` would read it
    config.write_text(
        f'data_dir = "{source.data_dir}"\n'
        f"retention_days = {LONG_RETENTION}\n"
        f"rollup_retention_days = {LONG_RETENTION}\n"
        "[storage]\n"
        'backend = "clickhouse"\n'
        f'clickhouse_url = "chdb://{chdb_dir}"\n'
        f'clickhouse_database = "{database}"\n'
    )
    for run in (migrate("--config", str(config)), migrate("--config", str(config))):
        assert run.code == 0, run.stderr
    assert "issues: 0 rows (5 already there)" in run.stderr
    ch = ClickHouseStore(
        f"chdb://{chdb_dir}",
        database=database,
        retention_days=LONG_RETENTION,
        rollup_retention_days=LONG_RETENTION,
        state_path=source.data_dir / "state.duckdb",
    )
    try:
        accounts = Accounts(ch.state)
        found = accounts.password_hash("ada")
        assert found is not None and Passwords().verify(found[1], PASSWORD)
        assert accounts.create_user("bob", Passwords().hash(PASSWORD), is_admin=False).id == 2
        assert sorted(ch.state.issue_states(PROJECT, list(source.issue_ids.values()))) == sorted(
            source.issue_ids.values()
        )
    finally:
        ch.close()


def test_runs_exit_zero_and_report_rows(target: tuple[list[Run], str, str]) -> None:
    first, second = target[0]
    assert first.code == 0, first.stderr
    assert "heron migrate: spans: " in first.stderr
    assert "heron migrate: users: 1 rows" in first.stderr
    assert "heron migrate: done:" in first.stderr
    assert "not copied" not in first.stderr  # the target has every telemetry table
    spans = next(
        line for line in first.stderr.splitlines() if line.startswith("heron migrate: spans:")
    )
    assert int(spans.split()[3]) == len(test_query.all_spans()) + len(test_db_api.seed()) + len(
        errors_seed.build(0).spans
    )
    # The second run finds everything there: no rows, every day skipped.
    assert second.code == 0, second.stderr
    assert "heron migrate: spans: 0 rows in 0 days, 2 already there" in second.stderr
    assert "heron migrate: users: 0 rows (1 already there)" in second.stderr
    assert "heron migrate: issues: 0 rows (5 already there)" in second.stderr


def test_second_run_adds_no_rows(stores: tuple[DuckDBStore, ClickHouseStore]) -> None:
    duck, ch = stores
    for table in [t.table for t in TELEMETRY]:
        source = duck.read(f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 - fixed names
        copied = ch._reads.rows(f"SELECT count() FROM {{db}}.{table}")[0][0]  # noqa: S608
        assert source > 0 and (table, copied) == (table, source)


def test_services_endpoints_and_traces_answer_alike(
    stores: tuple[DuckDBStore, ClickHouseStore],
) -> None:
    duck, ch = stores
    for store in (duck, ch):
        assert {c.value for c in query.list_services(store, PROJECT, OLD)} >= {"api", "shop"}
    assert plain(query.list_services(ch, PROJECT, OLD)) == plain(
        query.list_services(duck, PROJECT, OLD)
    )
    assert plain(query.service_table(ch, PROJECT, OLD, apdex_t_ms=50)) == plain(
        query.service_table(duck, PROJECT, OLD, apdex_t_ms=50)
    )
    assert plain(query.endpoint_table(ch, PROJECT, OLD, "api")) == plain(
        query.endpoint_table(duck, PROJECT, OLD, "api")
    )
    trace_id = test_query.ORDER_TRACE.to_bytes(16, "big")
    detail = query.get_trace(ch, PROJECT, trace_id)
    assert detail is not None and len(detail.spans) > 1
    assert plain(detail) == plain(query.get_trace(duck, PROJECT, trace_id))


def test_database_analysis_answers_alike(stores: tuple[DuckDBStore, ClickHouseStore]) -> None:
    duck, ch = stores
    top = query.top_queries(ch, PROJECT, DB_RANGE)
    assert len(top) >= 3
    assert plain(top) == plain(query.top_queries(duck, PROJECT, DB_RANGE))
    findings = query.n_plus_one_findings(ch, PROJECT, DB_RANGE)
    assert findings
    assert plain(findings) == plain(query.n_plus_one_findings(duck, PROJECT, DB_RANGE))
    # The analysis job on the new backend replaces the copied window (its runs version
    # above the copy's) instead of adding to it.
    analyze_recent(ch, test_api.NOW_NS, window_s=600)
    assert plain(query.top_queries(ch, PROJECT, DB_RANGE)) == plain(top)
    assert plain(query.n_plus_one_findings(ch, PROJECT, DB_RANGE)) == plain(findings)


def test_issues_and_events_answer_alike(
    stores: tuple[DuckDBStore, ClickHouseStore], source: Source
) -> None:
    duck, ch = stores
    issues = query.list_issues(ch, PROJECT, source.recent)
    assert {i.id for i in issues} == set(source.issue_ids.values())  # ids kept
    assert plain(issues) == plain(query.list_issues(duck, PROJECT, source.recent))
    resolved = query.list_issues(ch, PROJECT, source.recent, status="resolved")
    assert [i.id for i in resolved] == [source.issue_ids["value"]]
    for issue_id in source.issue_ids.values():
        detail = query.issue_detail(ch, PROJECT, issue_id, source.recent)
        assert detail is not None
        assert plain(detail) == plain(query.issue_detail(duck, PROJECT, issue_id, source.recent))
        assert plain(query.issue_events(ch, PROJECT, issue_id)) == plain(
            query.issue_events(duck, PROJECT, issue_id)
        )


def test_logs_answer_alike(stores: tuple[DuckDBStore, ClickHouseStore], source: Source) -> None:
    duck, ch = stores
    page = query.search_logs(ch, PROJECT, source.recent, LogQuery(limit=5))
    assert len(page.logs) == 5
    assert plain(page) == plain(query.search_logs(duck, PROJECT, source.recent, LogQuery(limit=5)))
    assert page.next_cursor is not None  # the same cursor pages on both
    later = LogQuery(limit=100, cursor=page.next_cursor)
    assert plain(query.search_logs(ch, PROJECT, source.recent, later)) == plain(
        query.search_logs(duck, PROJECT, source.recent, later)
    )
    trace = bytes.fromhex(source.trace_with_logs)
    lines = query.trace_logs(ch, PROJECT, trace)
    assert lines
    assert plain(lines) == plain(query.trace_logs(duck, PROJECT, trace))


def test_rum_answers_alike(stores: tuple[DuckDBStore, ClickHouseStore]) -> None:
    from heron.server.store.rum import RumFilters

    duck, ch = stores
    t0_s, t0 = test_rum_store.T0_S, test_rum_store.T0
    days = 3 * 86_400
    answers = []
    for store in (duck, ch):
        rum = store.rum
        answers.append(
            (
                sorted(rum.rollup(PROJECT, t0_s - 3600, t0_s + days, filters=RumFilters())),
                rum.events(
                    PROJECT, t0, t0 + days * NS, kinds=["view", "resource"],
                    filters=RumFilters(), limit=50,
                ),
                rum.sessions(PROJECT, t0, t0 + days * NS, filters=RumFilters(), limit=10),
            )
        )  # fmt: skip
    assert answers[0] == answers[1]
    assert len(answers[1][1]) == 7 and len(answers[1][2]) == 2


def test_state_moves_with_ids_and_secrets(
    stores: tuple[DuckDBStore, ClickHouseStore], source: Source
) -> None:
    duck, ch = stores
    assert ch.state.ingest_keys() == [(INGEST_KEY, PROJECT)]
    assert ch.state.api_token_digests() == [digest(API_TOKEN)]
    accounts = Accounts(ch.state)
    found = accounts.password_hash("ada")
    assert found is not None and Passwords().verify(found[1], PASSWORD)  # signs in
    session_user = accounts.session_user(source.session)
    assert session_user is not None and session_user.username == "ada"
    # A new user gets an id after the imported ones.
    assert accounts.create_user("bob", Passwords().hash(PASSWORD), is_admin=False).id == 2
    # Dashboards move with their ids and versions; a new one numbers after them.
    boards = ch.state.list_dashboards(PROJECT)
    assert boards == duck.state.list_dashboards(PROJECT)
    assert [(d.id, d.title, d.version) for d in boards] == [(1, "Checkout", 1), (2, "Runtime", 1)]
    assert ch.state.create_dashboard(PROJECT, "New", "{}", source.now_ns).id == 3


def test_alerting_state_moves(stores: tuple[DuckDBStore, ClickHouseStore], source: Source) -> None:
    duck, ch = stores
    for kind in ("rule", "channel"):
        assert ch.state.list_alert_config(PROJECT, kind) == duck.state.list_alert_config(
            PROJECT, kind
        )
    moved = ch.state.alert_instances(PROJECT)
    assert moved == duck.state.alert_instances(PROJECT) and moved[0].acked_by == "ada"
    assert ch.state.alert_history(PROJECT) == duck.state.alert_history(PROJECT)
    assert ch.state.rule_statuses(PROJECT) == duck.state.rule_statuses(PROJECT)
    assert ch.state.notification_groups(PROJECT) == duck.state.notification_groups(PROJECT)
    assert ch.state.list_notifications(PROJECT) == duck.state.list_notifications(PROJECT)
    # New objects number after the imported ones.
    made = ch.state.create_alert_config(PROJECT, "silence", "s1", "{}", "api", source.now_ns)
    assert made.id == 3


@pytest.mark.parametrize("held", ["heron.duckdb", "state.duckdb"])
def test_refuses_while_a_server_holds_the_files(tmp_path: Path, chdb_dir: Path, held: str) -> None:
    """The source, or the state file of a ClickHouse-backed server on the data dir."""
    DuckDBStore(tmp_path / "heron.duckdb").start().close()
    holder = subprocess.Popen(  # another process with the file open, as `heron serve`
        [sys.executable, "-c", HOLD, str(tmp_path / held)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        run = migrate("--data-dir", str(tmp_path), "--to-clickhouse-url", f"chdb://{chdb_dir}")
    finally:
        holder.communicate("", timeout=30)
    assert run.code == 1
    assert f"{tmp_path / held} is in use by another process (a running `heron serve`?)" in (
        run.stderr
    )


HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
sys.stdin.read()
"""


def test_missing_source_and_unreachable_target_fail(tmp_path: Path, chdb_dir: Path) -> None:
    run = migrate("--data-dir", str(tmp_path), "--to-clickhouse-url", f"chdb://{chdb_dir}")
    assert run.code == 1
    assert f"{tmp_path / 'heron.duckdb'} does not exist" in run.stderr
    DuckDBStore(tmp_path / "heron.duckdb").start().close()
    run = migrate(
        "--data-dir",
        str(tmp_path),
        "--to-clickhouse-url",
        "http://127.0.0.1:9/",
        "--to-state-url",
        "postgresql://postgres@127.0.0.1:9/none",
    )
    assert run.code == 1
    assert "heron migrate:" in run.stderr and "Traceback" not in run.stderr


def test_target_url_is_required(tmp_path: Path) -> None:
    run = migrate("--data-dir", str(tmp_path))
    assert run.code == 2
    assert "clickhouse_url" in run.stderr
