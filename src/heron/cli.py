"""``heron`` command line: serve | demo | run | users | migrate | analyze | loadtest.

Imports are lazy so ``heron run`` (agent side) never loads the server's dependencies.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _serve(args: argparse.Namespace) -> int:
    from heron.server.serve import serve

    return serve(
        config_path=args.config,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        role=args.role,
    )


def _demo(args: argparse.Namespace) -> int:
    from heron.demo.runner import run_demo

    return run_demo(port=args.port, data_dir=args.data_dir, duration_s=args.duration)


def _run(args: argparse.Namespace) -> int:
    from heron.agent.run import run_command

    return run_command(args.command)


def _users(args: argparse.Namespace) -> int:
    from heron.server.auth._cli import run_users

    return run_users(args)


def _migrate(args: argparse.Namespace) -> int:
    """Copy the DuckDB data dir into ClickHouse; progress and summary on stderr."""
    from heron.server.config import ConfigError, load_config, mask_url
    from heron.server.store.base import DatabaseInUse, StorageUnavailable
    from heron.server.store.migrate import MigrationError, migrate_data_dir

    def say(line: str) -> None:
        print(f"heron migrate: {line}", file=sys.stderr, flush=True)

    try:
        config = load_config(
            args.config,
            data_dir=args.data_dir,
            storage_backend="clickhouse",  # the target; the source is always DuckDB
            clickhouse_url=args.to_clickhouse_url,
            clickhouse_database=args.to_clickhouse_database,
            state_url=args.to_state_url,
        )
    except ConfigError as e:
        print(f"heron: {e}", file=sys.stderr)
        return 2
    state = mask_url(config.state_url) if config.state_url else f"{config.data_dir}/state.duckdb"
    say(
        f"copying {config.db_path} to ClickHouse {mask_url(config.clickhouse_url)} "
        f"database {config.clickhouse_database}, state to {state}"
    )
    try:
        summary = migrate_data_dir(config, progress=say)
    except (MigrationError, DatabaseInUse, StorageUnavailable) as e:
        print(f"heron migrate: {e}", file=sys.stderr)
        return 1
    rows = sum(summary.state.values())
    telemetry = ", ".join(f"{c.table} {c.rows}" for c in summary.telemetry if not c.note)
    say(f"done: {rows} state rows; telemetry rows: {telemetry}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    """Fetch the report from a running server's JSON API and write it as json/md/html."""
    import json
    import os
    import urllib.error
    import urllib.parse
    import urllib.request

    url = (args.url or os.environ.get("HERON_URL") or "http://127.0.0.1:4318").rstrip("/")
    token = args.token or os.environ.get("HERON_API_TOKEN") or ""
    params = {
        k: v
        for k, v in (
            ("from", args.from_),
            ("to", args.to),
            ("service", args.service),
            ("environment", args.environment),
            ("baseline_from", args.baseline_from),
            ("baseline_to", args.baseline_to),
        )
        if v
    }
    req = urllib.request.Request(
        f"{url}/api/v1/analysis?{urllib.parse.urlencode(params)}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:
            report = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:500]
        print(f"heron analyze: {url} answered {e.code}: {detail}", file=sys.stderr)
        return 2 if e.code in (400, 401, 403) else 1
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"heron analyze: cannot reach {url}: {e}", file=sys.stderr)
        return 1
    if args.format == "json":
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    else:
        from heron.server.ui.analysis_export import to_html, to_markdown

        text = (to_markdown if args.format == "md" else to_html)(report, url)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _add_analyze_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser(
        "analyze",
        help="graded performance report with findings (from a running server's API)",
        description="Ask a running Heron server (GET /api/v1/analysis) for the performance "
        "report of a time range and write it as JSON, Markdown or HTML (docs/analyze.md).",
    )
    a.add_argument("--service", help="only this service")
    a.add_argument(
        "--from", dest="from_", help="start: ISO 8601, Unix seconds or -1h (default: 1 h ago)"
    )
    a.add_argument("--to", help="end: ISO 8601, Unix seconds or -5m (default: now)")
    a.add_argument("--environment", help="only this deployment environment")
    a.add_argument(
        "--baseline-from", metavar="T", help="compare with a baseline window starting here"
    )
    a.add_argument("--baseline-to", metavar="T", help="end of the baseline window")
    a.add_argument("--format", choices=("md", "json", "html"), default="md", help="default md")
    a.add_argument("--out", help="write to this file instead of stdout")
    a.add_argument("--url", help="Heron server URL (HERON_URL, default http://127.0.0.1:4318)")
    a.add_argument("--token", help="read-API token (HERON_API_TOKEN)")
    a.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    a.set_defaults(func=_analyze)


def _add_loadtest_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from heron.loadtest.cli import add_parser  # stdlib only: the CLI stays fast to start

    add_parser(sub)


def installed_version() -> str:
    """The installed distribution's version (its metadata), else the source tree's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("heron")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from heron._version import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="heron", description="Heron: self-hosted APM for Python teams")
    p.add_argument("--version", action="version", version=f"heron {installed_version()}")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the Heron server (OTLP ingest, API)")
    s.add_argument("--config", help="TOML config file (also HERON_CONFIG)")
    s.add_argument("--host", help="bind address (HERON_HOST, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (HERON_PORT, default 4318)")
    s.add_argument("--data-dir", help="data directory (HERON_DATA_DIR, default ./heron-data)")
    s.add_argument(
        "--role",
        choices=("all", "ingest", "query", "jobs"),
        help="what this process serves: ingest routes, the UI and API (query), the "
        "background jobs, or all of them (HERON_ROLE, default all; see docs/scale-out.md)",
    )
    s.set_defaults(func=_serve)

    d = sub.add_parser("demo", help="run the server, a two-service demo shop and traffic")
    d.add_argument("--port", type=int, default=4318, help="Heron server port (default 4318)")
    d.add_argument("--data-dir", default="heron-demo-data", help="data directory for the demo")
    d.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    d.set_defaults(func=_demo)

    r = sub.add_parser("run", help="run a command with the Heron agent auto-instrumenting it")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- program [args...]")
    r.set_defaults(func=_run)
    _add_users_parser(sub)
    _add_migrate_parser(sub)
    _add_analyze_parser(sub)
    _add_loadtest_parser(sub)
    return p


def _add_migrate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser(
        "migrate",
        help="copy a DuckDB data dir (history and state) into ClickHouse",
        description="Copy data_dir/heron.duckdb into the ClickHouse store and the state "
        "store the config names (as `heron serve` with storage backend clickhouse would "
        "use them). Stop `heron serve` on the data dir first. Running it again copies "
        "only what is missing (see docs/scale-out.md).",
    )
    m.add_argument("--config", help="TOML config file (also HERON_CONFIG)")
    m.add_argument(
        "--data-dir", help="data directory to copy (HERON_DATA_DIR, default ./heron-data)"
    )
    m.add_argument(
        "--to-clickhouse-url",
        help="target ClickHouse, http(s)://host:8123 or chdb:///path (HERON_CLICKHOUSE_URL)",
    )
    m.add_argument(
        "--to-clickhouse-database",
        help="target ClickHouse database (HERON_CLICKHOUSE_DATABASE, default heron)",
    )
    m.add_argument(
        "--to-state-url",
        help="target PostgreSQL for the state, postgresql://… (HERON_STATE_URL; default: "
        "data_dir/state.duckdb)",
    )
    m.set_defaults(func=_migrate)


def _add_users_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``heron users ACTION``; ``--config``/``--data-dir`` go before or after ACTION."""

    def where(p: argparse.ArgumentParser, default: object) -> None:
        p.add_argument("--config", default=default, help="TOML config file (also HERON_CONFIG)")
        p.add_argument(
            "--data-dir",
            default=default,
            help="data directory (HERON_DATA_DIR, default ./heron-data)",
        )

    u = sub.add_parser(
        "users",
        help="manage the users who sign in (list, add, set-password, delete)",
        description="Manage users in the data dir. Stop `heron serve` first: DuckDB lets "
        "one process open the database.",
    )
    where(u, None)
    common = argparse.ArgumentParser(add_help=False)
    where(common, argparse.SUPPRESS)  # after ACTION; SUPPRESS keeps a value given before
    actions = u.add_subparsers(dest="users_cmd", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[common], help="list users")
    stdin_help = "read the password from the first line of stdin instead of a prompt"
    add = actions.add_parser("add", parents=[common], help="add a user (prompts for a password)")
    add.add_argument("username")
    add.add_argument("--admin", action="store_true", help="make the user an admin")
    add.add_argument("--password-stdin", action="store_true", help=stdin_help)
    pw = actions.add_parser(
        "set-password", parents=[common], help="set a user's password (signs them out)"
    )
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true", help=stdin_help)
    rm = actions.add_parser("delete", parents=[common], help="delete a user (signs them out)")
    rm.add_argument("username")
    u.set_defaults(func=_users)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) and args.command[:1] == ["--"]:
        args.command = args.command[1:]
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
