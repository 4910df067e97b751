"""``heron users`` against a real data dir, and its refusal while a server holds it."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from heron.cli import main
from heron.server.store.duckdb_store import DuckDBStore
from tests.conftest import HeronProcess


def users(
    data: Path, *args: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch | None = None
) -> int:
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["users", *args, "--data-dir", str(data)])


def rows(data: Path, sql: str) -> list[tuple[object, ...]]:
    store = DuckDBStore(data / "heron.duckdb").start()
    try:
        return store.read(sql)
    finally:
        store.close()


def test_add_list_set_password_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert (
        users(
            data,
            "add",
            "Alice",
            "--admin",
            "--password-stdin",
            stdin="alice password\n",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    assert (
        users(
            data, "add", "bob", "--password-stdin", stdin="bob password\n", monkeypatch=monkeypatch
        )
        == 0
    )
    assert capsys.readouterr().out == "added user alice (admin)\nadded user bob\n"

    assert users(data, "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["username", "admin", "created", "sessions"]
    assert [line.split()[:2] for line in out[1:]] == [["alice", "yes"], ["bob", "no"]]

    hashes = dict(rows(data, "SELECT username, password_hash FROM users"))
    ph = PasswordHasher()
    assert all(str(h).startswith("$argon2id$") for h in hashes.values())
    assert ph.verify(str(hashes["bob"]), "bob password")

    assert (
        users(
            data,
            "set-password",
            "BOB",
            "--password-stdin",
            stdin="a new password\r\n",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    assert "password changed" in capsys.readouterr().out
    (new_hash,) = rows(data, "SELECT password_hash FROM users WHERE username = 'bob'")[0]
    assert ph.verify(str(new_hash), "a new password")  # the line ending is not part of it

    assert users(data, "delete", "bob") == 0
    assert "deleted user bob" in capsys.readouterr().out
    assert rows(data, "SELECT username FROM users") == [("alice",)]


def test_add_prompts_twice_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter(["typed password", "typed password", "first try!", "second try"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    data = tmp_path / "data"
    assert main(["users", "--data-dir", str(data), "add", "carol"]) == 0
    assert main(["users", "--data-dir", str(data), "set-password", "carol"]) == 1
    assert "do not match" in capsys.readouterr().err
    (stored,) = rows(data, "SELECT password_hash FROM users")[0]
    assert PasswordHasher().verify(str(stored), "typed password")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "bad name!", "--password-stdin"], "long enough pw\n", "invalid username"),
        (["add", "dave", "--password-stdin"], "short\n", "8 to 1024 characters"),
        (["add", "alice", "--password-stdin"], "long enough pw\n", "already exists"),
        (["set-password", "nobody", "--password-stdin"], "long enough pw\n", "no user 'nobody'"),
        (["delete", "nobody"], "", "no user 'nobody'"),
        (["delete", "alice"], "", "last admin"),
        (["add", "erin"], "", "use --password-stdin"),  # no terminal to prompt on
    ],
)
def test_refusals(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    stdin: str,
    message: str,
) -> None:
    data = tmp_path / "data"
    assert (
        users(
            data,
            "add",
            "alice",
            "--admin",
            "--password-stdin",
            stdin="alice password\n",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    capsys.readouterr()
    assert users(data, *args, stdin=stdin, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err
    assert err.startswith("heron users: ") and message in err, err
    assert rows(data, "SELECT username FROM users") == [("alice",)]


def test_needs_an_existing_database_except_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert users(tmp_path / "nowhere", "list") == 1
    assert "no Heron database" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_data_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HERON_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("frank password\n"))
    assert main(["users", "add", "frank", "--password-stdin"]) == 0
    assert main(["users", "list"]) == 0
    assert "frank" in capsys.readouterr().out


@pytest.mark.e2e
def test_refuses_while_the_server_runs(heron_server: HeronProcess) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "heron", "users", "list", "--data-dir", str(heron_server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=heron_server.env,
    )
    assert r.returncode == 1
    assert "in use by another process" in r.stderr and "stop the server" in r.stderr
    assert "Traceback" not in r.stderr


def test_users_live_in_the_shared_state_store_on_clickhouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In scale-out mode (ClickHouse + ``state_url``) ``heron users`` changes the
    PostgreSQL every server process reads, and no local database is made."""
    from heron.server.store.postgres.state import PostgresState
    from tests.server.postgres import fresh_database

    with fresh_database() as url:
        monkeypatch.setenv("HERON_STORAGE_BACKEND", "clickhouse")
        monkeypatch.setenv("HERON_CLICKHOUSE_URL", f"chdb://{tmp_path / 'ch'}")
        monkeypatch.setenv("HERON_STATE_URL", url)
        data = tmp_path / "data"
        add = ("add", "Bob", "--admin", "--password-stdin")
        assert users(data, *add, stdin="bob password!\n", monkeypatch=monkeypatch) == 0
        assert users(data, "list") == 0
        assert "bob" in capsys.readouterr().out
        state = PostgresState(url)
        try:
            found = state.user_password_hash("bob")
            assert found is not None and found[0][1:] == ("bob", True)
            assert PasswordHasher().verify(found[1], "bob password!")
        finally:
            state.close()
        assert not (data / "heron.duckdb").exists() and not (data / "state.duckdb").exists()
