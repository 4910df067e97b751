"""Users and sign-in links on a data dir the server is not running on (CLI, demo).

DuckDB lets one process open a database file; :func:`open_accounts` turns the lock error
into :class:`DatabaseInUse` with a message that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from heron.server.auth._accounts import Accounts
from heron.server.auth._passwords import Passwords, UserError, normalize_username
from heron.server.store.duckdb_store import DuckDBStore


class DatabaseInUse(RuntimeError):
    """Another process (a running ``heron serve``) holds the database file."""


@contextmanager
def open_accounts(db_path: Path) -> Iterator[Accounts]:
    """The accounts of the database at ``db_path`` (created if missing)."""
    try:
        store = DuckDBStore(db_path).start()
    except duckdb.IOException as e:
        if "lock" not in str(e).lower():
            raise
        raise DatabaseInUse(
            f"{db_path} is in use by another process (a running `heron serve`?). DuckDB "
            "lets one process open it: stop the server first."
        ) from None
    try:
        yield Accounts(store)
    finally:
        store.close()


def prepare_one_time_sign_in(db_path: Path, username: str, password: str, ttl_s: int) -> str:
    """Make sure admin ``username`` exists with ``password``; return a one-time sign-in
    token for it, valid ``ttl_s`` seconds (for ``/login/once?token=...``)."""
    name = normalize_username(username)
    password_hash = Passwords().hash(password)
    with open_accounts(db_path) as accounts:
        try:
            accounts.create_user(name, password_hash, is_admin=True)
        except UserError:  # it exists: give it this run's password
            accounts.set_password(name, password_hash)
        return accounts.create_login_token(name, ttl_s)
