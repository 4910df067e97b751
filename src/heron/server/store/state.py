"""Transactional state: projects, ingest keys, API tokens, users, sessions, sign-in
tokens, issues (grouping and status), releases, dashboards, alerting
(``store/alerting.py``) and load-test runs (``store/loadtests.py``).

The protocol auth, projects and the query layer call; each backend implements it
(DuckDB: ``store/duckdb/state.py``). No SQL above ``store/``. Secrets arrive here as
SHA-256 digests only; every change is one transaction, so a one-time token is consumed
exactly once even when two requests race for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Protocol

from heron.server.analyze.issues import IssueState
from heron.server.model.event import ErrorEvent
from heron.server.store._loadtest_sql import LOADTEST_COLUMNS
from heron.server.store.alerting import (
    CONFIG_COLUMNS,
    GROUP_COLUMNS,
    HISTORY_COLUMNS,
    INSTANCE_COLUMNS,
    NOTIFICATION_COLUMNS,
    RULE_STATUS_COLUMNS,
    AlertStore,
)
from heron.server.store.loadtests import LoadTestStore

# (id, username, is_admin)
UserRow = tuple[int, str, bool]


class UnknownUser(LookupError):
    """No user has the given name."""


class LastAdmin(Exception):
    """The change would leave no admin."""


class VersionConflict(Exception):
    """The dashboard changed since the version the update was based on."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the dashboard is at version {current}")
        self.current = current


@dataclass(frozen=True, slots=True)
class DashboardRow:
    """A stored dashboard: ``spec`` is its JSON text (validated above the store, see
    ``model/dashboard.py``); ``version`` starts at 1 and grows by one per update."""

    id: int
    project_id: int
    title: str
    spec: str
    version: int
    created_ns: int
    updated_ns: int


DASHBOARD_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(DashboardRow))


class StateStore(AlertStore, LoadTestStore, Protocol):
    # ---------------------------------------------------------------- projects
    def ensure_project(self, name: str, ingest_key: str, now_ns: int) -> tuple[int, str, bool]:
        """The project named ``name`` (created with ``ingest_key`` if missing): its id,
        its oldest live ingest key, and whether it was created now."""
        ...

    def add_api_token(self, token_sha256: str, name: str, now_ns: int) -> bool:
        """Store a token digest unless it is stored already; True if stored now."""
        ...

    def add_first_api_token(self, token_sha256: str, name: str, now_ns: int) -> bool:
        """Store a token digest only when no token exists; True if stored now."""
        ...

    def ingest_keys(self) -> list[tuple[str, int]]:
        """(key, project id) of every key not revoked."""
        ...

    def api_token_digests(self) -> list[str]: ...

    def ensure_browser_key(self, project_id: int, key: str, now_ns: int) -> str:
        """The project's browser key (RUM beacons), stored as ``key`` if it has none."""
        ...

    def browser_keys(self) -> list[tuple[str, int]]:
        """(browser key, project id) of every project that has one."""
        ...

    # ------------------------------------------------------------------- users
    def count_users(self) -> int: ...

    def user_password_hash(self, username: str) -> tuple[UserRow, str] | None: ...

    def add_user(
        self, username: str, password_hash: str, is_admin: bool, now_ns: int
    ) -> int | None:
        """The new user's id, or None when the name is taken."""
        ...

    def add_first_user(
        self, username: str, password_hash: str, is_admin: bool, now_ns: int
    ) -> int | None:
        """The new user's id, or None when any user exists already."""
        ...

    def set_password(self, username: str, password_hash: str) -> int:
        """Replace the hash and end the user's sessions and sign-in tokens; returns how
        many sessions ended. Raises UnknownUser."""
        ...

    def rehash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        """Replace the hash only if it is still ``old_hash``."""
        ...

    def delete_user(self, username: str) -> int:
        """Delete the user with its sessions; returns how many ended. Raises UnknownUser,
        LastAdmin."""
        ...

    def list_users(self, now_ns: int) -> list[tuple[str, bool, int, int]]:
        """(username, is_admin, created_ns, live sessions) by username."""
        ...

    # ---------------------------------------------------------------- sessions
    def add_session(
        self,
        id_sha256: str,
        user_id: int,
        now_ns: int,
        expires_ns: int,
        replaces_sha256: str | None,
    ) -> None:
        """Store a session (dropping expired ones and the one it replaces, if any)."""
        ...

    def session_user(self, id_sha256: str, now_ns: int) -> UserRow | None: ...

    def end_session(self, id_sha256: str) -> None: ...

    def add_login_token(
        self, username: str, token_sha256: str, now_ns: int, expires_ns: int
    ) -> None:
        """Store a one-time sign-in token (dropping expired ones). Raises UnknownUser."""
        ...

    def redeem_login_token(
        self,
        token_sha256: str,
        now_ns: int,
        session_sha256: str,
        session_expires_ns: int,
        replaces_sha256: str | None,
    ) -> UserRow | None:
        """Consume the token (even when expired) and, if it was valid, start the session
        in the same transaction; the token's user, or None."""
        ...

    # ------------------------------------------------------------ issue status
    def set_issue_status(
        self, project_id: int, issue_id: int, status: str, release: str | None, now_ns: int
    ) -> bool:
        """Resolve (in ``release``, else the issue's last release, '' when none), ignore
        or reopen (clearing the regression mark) an issue; False if there is no such
        issue."""
        ...

    # ---------------------------------------------------------- issue grouping
    # Used by backends whose telemetry store is not transactional (ClickHouse): the
    # issues themselves are state, shared by every ingest process. (The DuckDB store
    # groups inside its own event transaction and does not call these.)
    def assign_issues(self, events: Sequence[tuple[int, ErrorEvent]]) -> None:
        """Group ``(project id, event)`` pairs into issues in one transaction: record
        releases not seen before, create the issues that are missing (one per project and
        ``issue_fingerprint``, even when other processes race to create it), apply
        ``analyze.issues.apply_event`` to each event oldest first, persist the issues and
        set every event's ``issue_id``."""
        ...

    def issue_states(self, project_id: int, issue_ids: Sequence[int]) -> dict[int, IssueState]:
        """The stored state of those of ``issue_ids`` that exist, by id."""
        ...

    # -------------------------------------------------------------- dashboards
    def list_dashboards(self, project_id: int) -> list[DashboardRow]:
        """The project's dashboards by title (then id)."""
        ...

    def get_dashboard(self, project_id: int, dashboard_id: int) -> DashboardRow | None: ...

    def create_dashboard(self, project_id: int, title: str, spec: str, now_ns: int) -> DashboardRow:
        """Store a new dashboard at version 1."""
        ...

    def update_dashboard(
        self,
        project_id: int,
        dashboard_id: int,
        title: str,
        spec: str,
        now_ns: int,
        expected_version: int | None = None,
    ) -> DashboardRow | None:
        """Replace title and spec, version + 1; None if there is no such dashboard.
        Raises VersionConflict when ``expected_version`` is given and is not the stored
        one (another change came first)."""
        ...

    def delete_dashboard(self, project_id: int, dashboard_id: int) -> bool:
        """False if there was no such dashboard."""
        ...


# ------------------------------------------------------------------ bulk import
# The state tables ``heron migrate`` copies from one backend to another, each with its
# columns in the order the rows of ``StateImport.import_state`` carry them. Ids are kept
# (error events point at issue ids; sessions and keys at user and project ids).
# An issue's stored columns: the fields of ``IssueState``, in order (every backend).
ISSUE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(IssueState))

STATE_TABLES: dict[str, tuple[str, ...]] = {
    "projects": ("id", "name", "created_ns"),
    "ingest_keys": ("key", "project_id", "created_ns", "revoked"),
    "browser_keys": ("key", "project_id", "created_ns"),
    "api_tokens": ("token_sha256", "name", "created_ns"),
    "users": ("id", "username", "password_hash", "is_admin", "created_ns"),
    "sessions": ("id_sha256", "user_id", "created_ns", "expires_ns"),
    "login_tokens": ("token_sha256", "user_id", "created_ns", "expires_ns"),
    "issues": ISSUE_COLUMNS,
    "releases": ("project_id", "release", "first_seen_ns"),
    "dashboards": DASHBOARD_COLUMNS,
    "alert_config": CONFIG_COLUMNS,
    "alert_instances": INSTANCE_COLUMNS,
    "alert_history": HISTORY_COLUMNS,
    "alert_rule_status": RULE_STATUS_COLUMNS,
    "notification_groups": GROUP_COLUMNS,
    "notifications": NOTIFICATION_COLUMNS,
    "loadtest_runs": LOADTEST_COLUMNS,
}


class StateImport(Protocol):
    """Bulk import into a state backend (``heron migrate``), beside ``StateStore``."""

    def import_state(self, rows: dict[str, Sequence[Sequence[object]]]) -> dict[str, int]:
        """Insert ``rows`` (table of ``STATE_TABLES`` → rows in its column order) in one
        transaction, each row only when no row with the same key (primary key or unique
        name/fingerprint) exists; id sequences move past the imported ids. Returns the
        rows inserted per table (0 for rows already there, so importing twice adds
        nothing)."""
        ...
