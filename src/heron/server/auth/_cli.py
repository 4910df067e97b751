"""``heron users``: list, add, set-password and delete users, on the data dir itself.

DuckDB lets one process open the database file, so this works while the server is
stopped, and otherwise fails with a message saying so (no network path: nothing to
expose, nothing to authenticate). Passwords come from a prompt or the first line of
stdin (``--password-stdin``), never from the command line, where ``ps`` would show them;
they are hashed before the database is opened, so the file is held only briefly.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime, timezone

from heron.server.auth._accounts import Accounts
from heron.server.auth._offline import DatabaseInUse, open_accounts
from heron.server.auth._passwords import Passwords, UserError, check_password, normalize_username
from heron.server.config import Config, ConfigError, load_config
from heron.server.store.open import state_file


def run_users(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, data_dir=args.data_dir)
    except ConfigError as e:
        return _fail(str(e), 2)
    try:
        return _run(args, config)
    except (UserError, DatabaseInUse) as e:
        return _fail(str(e))


def _run(args: argparse.Namespace, config: Config) -> int:
    cmd = args.users_cmd
    path = state_file(config)
    if cmd != "add" and path is not None and not path.exists():
        return _fail(f"no Heron database at {path} (check --data-dir)")
    password_hash = None
    if cmd in ("add", "set-password"):
        normalize_username(args.username)  # a bad name fails before the prompt
        password_hash = Passwords().hash(_read_password(args.password_stdin))
    with open_accounts(config) as accounts:
        if cmd == "list":
            _print_users(accounts)
        elif cmd == "add":
            assert password_hash is not None
            user = accounts.create_user(args.username, password_hash, is_admin=args.admin)
            print(f"added user {user.username}{' (admin)' if user.is_admin else ''}")
        elif cmd == "set-password":
            assert password_hash is not None
            ended = accounts.set_password(args.username, password_hash)
            print(f"password changed; {ended} session(s) signed out")
        else:
            ended = accounts.delete_user(args.username)
            print(f"deleted user {normalize_username(args.username)}; {ended} session(s) ended")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise UserError("no terminal to prompt for a password: use --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise UserError("the passwords do not match")
    check_password(password)
    return password


def _print_users(accounts: Accounts) -> None:
    users = accounts.list_users()
    if not users:
        print("no users")
        return
    width = max(8, *(len(u.username) for u in users))
    print(f"{'username':<{width}}  admin  created               sessions")
    for u in users:
        created = datetime.fromtimestamp(u.created_ns / 1e9, timezone.utc)
        admin = "yes" if u.is_admin else "no"
        print(f"{u.username:<{width}}  {admin:<5}  {created:%Y-%m-%d %H:%M} UTC  {u.sessions}")


def _fail(message: str, code: int = 1) -> int:
    print(f"heron users: {message}", file=sys.stderr)
    return code
