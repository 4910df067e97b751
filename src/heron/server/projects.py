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
from typing import Any

from heron.server.store.duckdb_store import DuckDBStore

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

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._keys: dict[str, int] = {}
        self._tokens: set[str] = set()

    def bootstrap(self, ingest_key: str = "", api_token: str = "") -> Bootstrap:
        """Create the default project, its key and an API token if none exist."""

        def run(con: Any) -> Bootstrap:
            row = con.execute(
                "SELECT id FROM projects WHERE name = ?", [DEFAULT_PROJECT]
            ).fetchone()
            now = time.time_ns()
            created = row is None
            if created:
                con.execute("INSERT INTO projects VALUES (1, ?, ?)", [DEFAULT_PROJECT, now])
                key = ingest_key or new_ingest_key()
                con.execute("INSERT INTO ingest_keys VALUES (?, 1, ?, false)", [key, now])
            else:
                key = con.execute(
                    "SELECT key FROM ingest_keys WHERE project_id = 1 AND NOT revoked "
                    "ORDER BY created_ns LIMIT 1"
                ).fetchone()[0]
            token = None
            if (
                api_token
                and not con.execute(
                    "SELECT 1 FROM api_tokens WHERE token_sha256 = ?", [_digest(api_token)]
                ).fetchone()
            ):
                token = api_token
            elif not con.execute("SELECT 1 FROM api_tokens LIMIT 1").fetchone():
                token = new_api_token()
            if token:
                con.execute(
                    "INSERT INTO api_tokens VALUES (?, 'initial', ?)", [_digest(token), now]
                )
            return Bootstrap(1, key, token, created)

        result: Bootstrap = self.store.write(run)
        self.reload()
        return result

    def reload(self) -> None:
        keys = self.store.read("SELECT key, project_id FROM ingest_keys WHERE NOT revoked")
        tokens = self.store.read("SELECT token_sha256 FROM api_tokens")
        with self._lock:
            self._keys = {k: p for k, p in keys}
            self._tokens = {t for (t,) in tokens}

    def project_for_key(self, key: str) -> int | None:
        return self._keys.get(key)

    def token_valid(self, token: str) -> bool:
        return _digest(token) in self._tokens
