"""Password hashing (argon2id via argon2-cffi) and the rules for usernames and passwords.

Never log or echo a password. Hashes use the library's default parameters (RFC 9106's
low-memory profile), and a hash made with older parameters is replaced on the next
successful sign-in, so raising them later needs no migration.
"""

from __future__ import annotations

import re
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 copes with more; this only bounds the work per request
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,63}")
# Verified against when the username is unknown, so that costs what a real check costs.
# Its password was random and thrown away; a hasher with other parameters makes its own.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$uBIV43g23LIR8CowCStLcQ$uGHkdc/ebp+IlC1kjkknnh4356PnHuLWWP+2LpP9Be4"


class UserError(ValueError):
    """A user operation cannot be done (bad name, weak password, unknown user, ...)."""


def normalize_username(name: str) -> str:
    """Usernames compare case-insensitively: 1-64 of a-z 0-9 . _ @ + - (not first)."""
    norm = name.strip().lower()
    if not _USERNAME.fullmatch(norm):
        raise UserError(
            f"invalid username {name!r}: use 1 to 64 letters, digits or . _ @ + - "
            "(starting with a letter or digit)"
        )
    return norm


def check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise UserError(
            f"a password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long"
        )


def generate_password() -> str:
    """24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)


class Passwords:
    """argon2id hashes. At most ``concurrency`` hashes run at once: each takes ~64 MiB and
    a CPU for a fraction of a second, so a burst of sign-ins must not exhaust the server."""

    def __init__(self, hasher: PasswordHasher | None = None, concurrency: int = 2) -> None:
        self.hasher = hasher or PasswordHasher()
        self.concurrency = concurrency
        self._slots = threading.BoundedSemaphore(concurrency)
        self._dummy: str | None = (
            None if self.hasher.check_needs_rehash(_DUMMY_HASH) else _DUMMY_HASH
        )

    def hash(self, password: str) -> str:
        check_password(password)
        with self._slots:
            return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """True if ``password`` matches ``stored``; with no stored hash (unknown user) the
        same work is done against a dummy hash, so timing does not reveal who exists."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        target = stored if stored is not None else self._dummy_hash()
        with self._slots:
            try:
                ok = self.hasher.verify(target, password)
            except (VerificationError, InvalidHashError):
                return False
        return ok and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def _dummy_hash(self) -> str:
        if self._dummy is None:  # custom parameters: made on first need (it costs a hash)
            with self._slots:
                self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy
