"""Users and sign-in links on a data dir the server is not running on (CLI, demo).

One process may open a data dir's database: :func:`open_accounts` raises
:class:`DatabaseInUse` (from the store) with a message that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from heron.server.auth._accounts import Accounts
from heron.server.auth._passwords import Passwords, UserError, normalize_username
from heron.server.config import Config
from heron.server.store.base import DatabaseInUse
from heron.server.store.open import open_state

__all__ = ["DatabaseInUse", "open_accounts", "prepare_one_time_sign_in"]


@contextmanager
def open_accounts(config: Config) -> Iterator[Accounts]:
    """The accounts in ``config``'s state store (a local file is created if missing)."""
    with open_state(config) as state:
        yield Accounts(state)


def prepare_one_time_sign_in(db_path: Path, username: str, password: str, ttl_s: int) -> str:
    """Make sure admin ``username`` exists with ``password``; return a one-time sign-in
    token for it, valid ``ttl_s`` seconds (for ``/login/once?token=...``)."""
    name = normalize_username(username)
    password_hash = Passwords().hash(password)
    with open_accounts(Config(data_dir=str(db_path.parent))) as accounts:
        try:
            accounts.create_user(name, password_hash, is_admin=True)
        except UserError:  # it exists: give it this run's password
            accounts.set_password(name, password_hash)
        return accounts.create_login_token(name, ttl_s)
