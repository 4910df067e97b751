"""Projects, ingest keys and read-API tokens.

Ingest keys identify a project to senders (they live in app configs, like a Sentry DSN's
public key) and are stored as given. API tokens grant read access and are stored only as
SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from heron.server.store.base import Store

DEFAULT_PROJECT = "default"


def new_ingest_key() -> str:
    return "hk_" + secrets.token_urlsafe(24)


def new_api_token() -> str:
    return "ht_" + secrets.token_urlsafe(32)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Bootstrap:
    """What the first start created (printed once) or found."""

    project_id: int
    ingest_key: str
    api_token: str | None  # only known when created now (stored hashed)
    created: bool


class Projects:
    """Key lookups are served from memory; changes go through the store's writer."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._keys: dict[str, int] = {}
        self._tokens: set[str] = set()

    def bootstrap(self, ingest_key: str = "", api_token: str = "") -> Bootstrap:
        """Create the default project, its key and an API token if none exist."""
        state = self.store.state
        now = time.time_ns()
        project_id, key, created = state.ensure_project(
            DEFAULT_PROJECT, ingest_key or new_ingest_key(), now
        )
        if api_token:  # the given token is stored (once); no other token is made up
            token = api_token if state.add_api_token(_digest(api_token), "initial", now) else None
        else:
            fresh = new_api_token()
            token = fresh if state.add_first_api_token(_digest(fresh), "initial", now) else None
        self.reload()
        return Bootstrap(project_id, key, token, created)

    def reload(self) -> None:
        keys = self.store.state.ingest_keys()
        tokens = self.store.state.api_token_digests()
        with self._lock:
            self._keys = dict(keys)
            self._tokens = set(tokens)

    def project_for_key(self, key: str) -> int | None:
        return self._keys.get(key)

    def token_valid(self, token: str) -> bool:
        return _digest(token) in self._tokens
