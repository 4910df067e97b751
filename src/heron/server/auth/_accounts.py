"""Users, sign-in sessions and one-time sign-in tokens in the store.

Session ids and sign-in tokens are random 256-bit strings handed to the browser; the
store keeps only their SHA-256 digests. Every change runs on the store's writer thread
(one transaction each), so a one-time token is consumed exactly once even when two
requests race for it. Reads use the store's time-limited readers.

This module never sees a password: callers hash first (see ``_passwords``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heron.server.auth._passwords import UserError, normalize_username
from heron.server.store.duckdb_store import DuckDBStore

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
    def __init__(self, store: DuckDBStore, clock: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.clock = clock

    # ------------------------------------------------------------------- users

    def count_users(self) -> int:
        return int(self.store.read("SELECT count(*) FROM users")[0][0])

    def password_hash(self, username: str) -> tuple[User, str] | None:
        """The user and its stored hash, or None if there is no such user."""
        try:
            name = normalize_username(username)
        except UserError:
            return None
        rows = self.store.read(
            "SELECT id, username, is_admin, password_hash FROM users WHERE username = ?", [name]
        )
        if not rows:
            return None
        uid, uname, admin, stored = rows[0]
        return User(uid, uname, admin), stored

    def create_user(self, username: str, password_hash: str, *, is_admin: bool) -> User:
        name = normalize_username(username)

        def run(con: Any) -> User:
            if con.execute("SELECT 1 FROM users WHERE username = ?", [name]).fetchone():
                raise UserError(f"user {name!r} already exists")
            return self._insert_user(con, name, password_hash, is_admin)

        result: User = self.store.write(run)
        return result

    def create_first_admin(self, username: str, password_hash: str) -> User | None:
        """Create an admin only if no user exists yet (checked inside the transaction)."""
        name = normalize_username(username)

        def run(con: Any) -> User | None:
            if con.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return None
            return self._insert_user(con, name, password_hash, True)

        result: User | None = self.store.write(run)
        return result

    def _insert_user(self, con: Any, name: str, password_hash: str, is_admin: bool) -> User:
        row = con.execute(
            "INSERT INTO users (username, password_hash, is_admin, created_ns) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            [name, password_hash, is_admin, self.clock()],
        ).fetchone()
        return User(int(row[0]), name, is_admin)

    def set_password(self, username: str, password_hash: str) -> int:
        """Replace a user's password and end all its sessions; returns how many ended."""
        name = normalize_username(username)

        def run(con: Any) -> int:
            uid = self._user_id(con, name)
            con.execute("UPDATE users SET password_hash = ? WHERE id = ?", [password_hash, uid])
            return self._end_sessions_of(con, uid)

        result: int = self.store.write(run)
        return result

    def rehash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        """Upgrade a hash after sign-in, unless the password changed meanwhile."""
        self.store.write(
            lambda con: con.execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                [new_hash, user_id, old_hash],
            )
        )

    def delete_user(self, username: str) -> int:
        """Delete a user with its sessions; refuses the last admin. Returns sessions ended."""
        name = normalize_username(username)

        def run(con: Any) -> int:
            uid = self._user_id(con, name)
            admins = con.execute("SELECT id FROM users WHERE is_admin").fetchall()
            if admins == [(uid,)]:
                raise UserError(f"{name!r} is the last admin; add another admin first")
            ended = self._end_sessions_of(con, uid)
            con.execute("DELETE FROM users WHERE id = ?", [uid])
            return ended

        result: int = self.store.write(run)
        return result

    def list_users(self) -> list[UserInfo]:
        rows = self.store.read(
            "SELECT u.username, u.is_admin, u.created_ns, "
            "  (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_ns > ?) "
            "FROM users u ORDER BY u.username",
            [self.clock()],
        )
        return [UserInfo(n, a, c, int(s)) for n, a, c, s in rows]

    @staticmethod
    def _user_id(con: Any, name: str) -> int:
        row = con.execute("SELECT id FROM users WHERE username = ?", [name]).fetchone()
        if row is None:
            raise UserError(f"no user {name!r}")
        return int(row[0])

    @staticmethod
    def _end_sessions_of(con: Any, uid: int) -> int:
        ended = con.execute("SELECT count(*) FROM sessions WHERE user_id = ?", [uid]).fetchone()
        con.execute("DELETE FROM sessions WHERE user_id = ?", [uid])
        con.execute("DELETE FROM login_tokens WHERE user_id = ?", [uid])
        return int(ended[0])

    # ---------------------------------------------------------------- sessions

    def start_session(self, user_id: int, ttl_s: int, replaces: str | None = None) -> str:
        """A new session id for ``user_id``; the session ``replaces`` (if any) ends."""
        sid = new_secret()
        self.store.write(lambda con: self._insert_session(con, sid, user_id, ttl_s, replaces))
        return sid

    def _insert_session(
        self, con: Any, sid: str, user_id: int, ttl_s: int, replaces: str | None
    ) -> None:
        now = self.clock()
        con.execute("DELETE FROM sessions WHERE expires_ns <= ?", [now])
        if replaces and well_formed(replaces):
            con.execute("DELETE FROM sessions WHERE id_sha256 = ?", [digest(replaces)])
        con.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?)",
            [digest(sid), user_id, now, now + ttl_s * NS_PER_S],
        )

    def session_user(self, sid: str | None) -> User | None:
        if not well_formed(sid):
            return None
        assert sid is not None
        rows = self.store.read(
            "SELECT u.id, u.username, u.is_admin FROM sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.id_sha256 = ? AND s.expires_ns > ?",
            [digest(sid), self.clock()],
        )
        return User(*rows[0]) if rows else None

    def end_session(self, sid: str | None) -> None:
        if well_formed(sid):
            assert sid is not None
            self.store.write(
                lambda con: con.execute("DELETE FROM sessions WHERE id_sha256 = ?", [digest(sid)])
            )

    # ------------------------------------------------------- one-time sign-in

    def create_login_token(self, username: str, ttl_s: int) -> str:
        """A single-use sign-in token for ``username``, valid for ``ttl_s`` seconds."""
        name = normalize_username(username)
        token = new_secret()

        def run(con: Any) -> None:
            uid = self._user_id(con, name)
            now = self.clock()
            con.execute("DELETE FROM login_tokens WHERE expires_ns <= ?", [now])
            con.execute(
                "INSERT INTO login_tokens VALUES (?, ?, ?, ?)",
                [digest(token), uid, now, now + ttl_s * NS_PER_S],
            )

        self.store.write(run)
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

        def run(con: Any) -> tuple[User, str] | None:
            row = con.execute(
                "SELECT u.id, u.username, u.is_admin, t.expires_ns FROM login_tokens t "
                "JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ?",
                [digest(token)],
            ).fetchone()
            con.execute("DELETE FROM login_tokens WHERE token_sha256 = ?", [digest(token)])
            if row is None or row[3] <= self.clock():
                return None
            user = User(row[0], row[1], row[2])
            self._insert_session(con, sid, user.id, ttl_s, replaces)
            return user, sid

        result: tuple[User, str] | None = self.store.write(run)
        return result
