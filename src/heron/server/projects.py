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


def new_browser_key() -> str:
    """A browser key (RUM beacons): public, embedded in pages, distinct from ingest keys."""
    return "hb_" + secrets.token_urlsafe(24)


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
    browser_key: str = ""  # the project's browser key (RUM beacons)


class Projects:
    """Key lookups are served from memory; changes go through the store's writer."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._keys: dict[str, int] = {}
        self._tokens: set[str] = set()
        self._browser_keys: dict[str, int] = {}
        self._browser_of: dict[int, str] = {}

    def bootstrap(
        self, ingest_key: str = "", api_token: str = "", browser_key: str = ""
    ) -> Bootstrap:
        """Create the default project, its keys (ingest and browser) and an API token
        if none exist."""
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
        browser = state.ensure_browser_key(project_id, browser_key or new_browser_key(), now)
        self.reload()
        return Bootstrap(project_id, key, token, created, browser)

    def reload(self) -> None:
        keys = self.store.state.ingest_keys()
        tokens = self.store.state.api_token_digests()
        browser = self.store.state.browser_keys()
        with self._lock:
            self._keys = dict(keys)
            self._tokens = set(tokens)
            self._browser_keys = dict(browser)
            self._browser_of = {p: k for k, p in browser}

    def project_for_key(self, key: str) -> int | None:
        return self._keys.get(key)

    def project_for_browser_key(self, key: str) -> int | None:
        """The project a browser key (RUM beacons) belongs to; None if unknown."""
        return self._browser_keys.get(key)

    def browser_key(self, project_id: int) -> str:
        """The project's browser key (``""`` before bootstrap)."""
        return self._browser_of.get(project_id, "")

    def token_valid(self, token: str) -> bool:
        return _digest(token) in self._tokens
