"""The state store (store.state) through its callers: the default project's bootstrap
(keys, API tokens made once), and user changes the store refuses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from heron.server.projects import Projects
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.state import LastAdmin, UnknownUser


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
    yield s
    s.close()


def test_bootstrap_creates_once_then_finds(store: DuckDBStore) -> None:
    projects = Projects(store)
    first = projects.bootstrap(ingest_key="hk_given")
    assert (first.project_id, first.ingest_key, first.created) == (1, "hk_given", True)
    assert first.api_token is not None and projects.token_valid(first.api_token)
    again = Projects(store).bootstrap(ingest_key="hk_other")
    assert (again.ingest_key, again.api_token, again.created) == ("hk_given", None, False)
    assert projects.project_for_key("hk_given") == 1
    assert projects.project_for_key("hk_other") is None


def test_a_configured_api_token_is_stored_once(store: DuckDBStore) -> None:
    projects = Projects(store)
    assert projects.bootstrap(api_token="ht_configured").api_token == "ht_configured"
    assert projects.bootstrap(api_token="ht_configured").api_token is None
    assert projects.token_valid("ht_configured")
    assert len(store.state.api_token_digests()) == 1


def test_user_changes_the_store_refuses(store: DuckDBStore) -> None:
    state = store.state
    admin = state.add_first_user("root", "h1", True, 1)
    assert admin is not None
    assert state.add_first_user("other", "h2", True, 2) is None
    assert state.add_user("root", "h3", False, 3) is None
    with pytest.raises(LastAdmin):
        state.delete_user("root")
    with pytest.raises(UnknownUser):
        state.set_password("nobody", "h4")
    assert state.user_password_hash("root") == ((admin, "root", True), "h1")
