"""Users, sign-in sessions and one-time sign-in tokens in the store.

Session ids and sign-in tokens are random 256-bit strings handed to the browser; the
store keeps only their SHA-256 digests. Every change is one transaction of the store's
state (``store.state``), so a one-time token is consumed exactly once even when two
requests race for it.

This module never sees a password: callers hash first (see ``_passwords``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from heron.server.auth._passwords import UserError, normalize_username
from heron.server.store.state import LastAdmin, StateStore, UnknownUser

NS_PER_S = 1_000_000_000
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,128}")


@dataclass(frozen=True)
class User:
    """A signed-in user, as routes see it."""

    id: int
    username: str
    is_admin: bool


@dataclass(frozen=True)
class UserInfo:
    """A user as ``heron users list`` shows it."""

    username: str
    is_admin: bool
    created_ns: int
    sessions: int


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def well_formed(secret: str | None) -> bool:
    """Only something shaped like our own secrets is looked up at all."""
    return bool(secret) and _TOKEN_SHAPE.fullmatch(secret or "") is not None


class Accounts:
    def __init__(self, state: StateStore, clock: Callable[[], int] = time.time_ns) -> None:
        self.state = state
        self.clock = clock

    # ------------------------------------------------------------------- users

    def count_users(self) -> int:
        return self.state.count_users()

    def password_hash(self, username: str) -> tuple[User, str] | None:
        """The user and its stored hash, or None if there is no such user."""
        try:
            name = normalize_username(username)
        except UserError:
            return None
        found = self.state.user_password_hash(name)
        if found is None:
            return None
        row, stored = found
        return User(*row), stored

    def create_user(self, username: str, password_hash: str, *, is_admin: bool) -> User:
        name = normalize_username(username)
        uid = self.state.add_user(name, password_hash, is_admin, self.clock())
        if uid is None:
            raise UserError(f"user {name!r} already exists")
        return User(uid, name, is_admin)

    def create_first_admin(self, username: str, password_hash: str) -> User | None:
        """Create an admin only if no user exists yet (checked inside the transaction)."""
        name = normalize_username(username)
        uid = self.state.add_first_user(name, password_hash, True, self.clock())
        return None if uid is None else User(uid, name, True)

    def set_password(self, username: str, password_hash: str) -> int:
        """Replace a user's password and end all its sessions; returns how many ended."""
        name = normalize_username(username)
        with _known(name):
            return self.state.set_password(name, password_hash)

    def rehash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        """Upgrade a hash after sign-in, unless the password changed meanwhile."""
        self.state.rehash(user_id, old_hash, new_hash)

    def delete_user(self, username: str) -> int:
        """Delete a user with its sessions; refuses the last admin. Returns sessions ended."""
        name = normalize_username(username)
        with _known(name):
            try:
                return self.state.delete_user(name)
            except LastAdmin:
                raise UserError(f"{name!r} is the last admin; add another admin first") from None

    def list_users(self) -> list[UserInfo]:
        return [UserInfo(*row) for row in self.state.list_users(self.clock())]

    # ---------------------------------------------------------------- sessions

    def start_session(self, user_id: int, ttl_s: int, replaces: str | None = None) -> str:
        """A new session id for ``user_id``; the session ``replaces`` (if any) ends."""
        sid = new_secret()
        now = self.clock()
        self.state.add_session(
            digest(sid), user_id, now, now + ttl_s * NS_PER_S, _replaced(replaces)
        )
        return sid

    def session_user(self, sid: str | None) -> User | None:
        if not well_formed(sid):
            return None
        assert sid is not None
        row = self.state.session_user(digest(sid), self.clock())
        return User(*row) if row else None

    def end_session(self, sid: str | None) -> None:
        if well_formed(sid):
            assert sid is not None
            self.state.end_session(digest(sid))

    # ------------------------------------------------------- one-time sign-in

    def create_login_token(self, username: str, ttl_s: int) -> str:
        """A single-use sign-in token for ``username``, valid for ``ttl_s`` seconds."""
        name = normalize_username(username)
        token = new_secret()
        now = self.clock()
        with _known(name):
            self.state.add_login_token(name, digest(token), now, now + ttl_s * NS_PER_S)
        return token

    def redeem_login_token(
        self, token: str | None, ttl_s: int, replaces: str | None = None
    ) -> tuple[User, str] | None:
        """Consume a sign-in token and start a session: (user, session id), or None if the
        token is unknown, expired or already used. Consumed even when expired."""
        if not well_formed(token):
            return None
        assert token is not None
        sid = new_secret()
        now = self.clock()
        row = self.state.redeem_login_token(
            digest(token), now, digest(sid), now + ttl_s * NS_PER_S, _replaced(replaces)
        )
        return (User(*row), sid) if row else None


def _replaced(sid: str | None) -> str | None:
    """The digest of a session to end, if it looks like one of ours."""
    return digest(sid) if sid and well_formed(sid) else None


@contextmanager
def _known(name: str) -> Iterator[None]:
    try:
        yield
    except UnknownUser:
        raise UserError(f"no user {name!r}") from None
