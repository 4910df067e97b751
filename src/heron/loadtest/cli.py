"""``heron loadtest run|start|stop|compare|list`` (docs/loadtest.md).

Exit codes, the CI contract: 0 pass (or insufficient data, or no baseline), 1 regression
(with ``--fail-on regression``, the default), 2 usage or API error (bad token, unknown
run or baseline, server unreachable), 3 the load command failed (the run is stored as
``failed`` and not compared), 130 interrupted (stored as ``aborted``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from heron.loadtest import report
from heron.loadtest.client import ApiError, Client
from heron.loadtest.runner import parse_duration, run_command, run_driver, settle

EXIT_PASS = 0
EXIT_REGRESSION = 1
EXIT_ERROR = 2
EXIT_COMMAND_FAILED = 3
EXIT_INTERRUPTED = 130

CI_LABELS = {"commit": "GITHUB_SHA", "branch": "GITHUB_REF_NAME", "ci_run": "GITHUB_RUN_ID"}
"""Labels filled from GitHub Actions' environment unless given with ``--label``."""

Json = dict[str, Any]


class UsageError(Exception):
    """Bad arguments the parser cannot see (exit 2)."""


def say(text: str) -> None:
    print(f"heron loadtest: {text}", file=sys.stderr, flush=True)


def _client(args: argparse.Namespace) -> Client:
    return Client(args.url, args.token, timeout=args.timeout)


def _labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--label {pair!r}: expected key=value")
        labels[key.strip()] = value
    for key, var in CI_LABELS.items():
        if key not in labels and os.environ.get(var):
            labels[key] = os.environ[var]
    return labels


def _new_run(args: argparse.Namespace, tool: str, command: str) -> Json:
    body: Json = {"name": args.name, "labels": _labels(args.label), "tool": tool}
    body["command"] = command
    for key in ("baseline", "service", "environment"):
        if getattr(args, key, None):
            body[key] = getattr(args, key)
    return body


# ------------------------------------------------------------------ outputs and gate
def _write(path: str | None, text: str) -> None:
    if path:
        Path(path).write_text(text, encoding="utf-8")


def _step_summary(markdown: str) -> None:
    """Append to GitHub Actions' job summary when running there."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(markdown + "\n")


def _gate(client: Client, args: argparse.Namespace, run_id: int, name: str) -> int:
    """Compare with the baseline, print and write every output; the exit code."""
    c = client.compare(run_id, args.baseline, args.threshold, args.alpha)
    print(report.comparison_text(c), flush=True)
    markdown = report.to_markdown(c, client.url)
    print(f"comparison: {report.compare_link(client.url, c)}", flush=True)
    _write(args.json, report.to_json(c))
    _write(args.markdown, markdown)
    _write(args.junit, report.to_junit(c, name))
    _step_summary(markdown)
    if c.get("verdict") == "regression" and args.fail_on == "regression":
        return EXIT_REGRESSION
    return EXIT_PASS


def _no_gate(client: Client, args: argparse.Namespace, run: Json) -> None:
    """No baseline: the run's own figures as the outputs."""
    markdown = report.summary_markdown(run, client.url)
    _write(args.json, report.to_json(run))
    _write(args.markdown, markdown)
    _write(args.junit, report.to_junit(None, run["name"]))
    _step_summary(markdown)


# ------------------------------------------------------------------ commands
def _driver_argv(args: argparse.Namespace, duration_s: float) -> list[str]:
    argv = [sys.executable, "-m", "heron.loadtest.locust_driver", "--target", args.target]
    argv += ["--users", str(args.users), "--spawn-rate", str(args.spawn_rate)]
    argv += ["--duration", str(duration_s), "--wait", str(args.wait)]
    for path in args.path or []:
        argv += ["--path", path]
    if args.locustfile:
        argv += ["--locustfile", args.locustfile]
    return argv


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command or [])
    if command and command[0] == "--":
        command = command[1:]
    if bool(command) == bool(args.target):
        raise UsageError("give either a command after -- or --target (the built-in Locust)")
    if (args.path or args.locustfile) and not args.target:
        raise UsageError("--path and --locustfile drive the built-in Locust: add --target")
    client = _client(args)
    run: Json = {}
    if command:
        run = client.start(_new_run(args, "command", shlex.join(command)))
        say(f"run {run['id']} started: {shlex.join(command)}")
        result = run_command(command)
        load: Json | None = None
    else:
        try:
            duration_s = parse_duration(args.duration)
        except ValueError as e:
            raise UsageError(str(e)) from None
        argv = _driver_argv(args, duration_s)

        def on_ready() -> None:
            # The driver's own options, not its interpreter and module path.
            shown = "built-in Locust " + shlex.join(argv[3:])
            run.update(client.start(_new_run(args, "locust", shown)))
            say(
                f"run {run['id']} started: Locust, {args.users} users on {args.target} "
                f"for {duration_s:g} s"
            )

        result, load = run_driver(argv, on_ready)
        if not run:
            say(f"the Locust driver exited ({result.exit_code}) before it was ready")
            return EXIT_COMMAND_FAILED
    finish: Json = {"status": result.status, "exit_code": result.exit_code}
    if load is not None:
        finish["load"] = load
    client.finish(run["id"], finish)
    say(f"run {run['id']} {result.status} (exit code {result.exit_code}); waiting for telemetry")
    stored = settle(client, run["id"], args.settle, say=say)
    print(report.summary_text(stored), flush=True)
    print(f"run: {client.url}/loadtests/{run['id']}", flush=True)
    if result.status != "finished":
        _no_gate(client, args, stored)
        say(f"not compared: the run {result.status}")
        return EXIT_INTERRUPTED if result.status == "aborted" else EXIT_COMMAND_FAILED
    if not args.baseline:
        _no_gate(client, args, stored)
        return EXIT_PASS
    return _gate(client, args, run["id"], args.name)


def cmd_start(args: argparse.Namespace) -> int:
    client = _client(args)
    run = client.start(_new_run(args, "manual", args.command_text or ""))
    print(run["id"], flush=True)
    if args.id_file:
        Path(args.id_file).write_text(f"{run['id']}\n", encoding="utf-8")
    return EXIT_PASS


def cmd_stop(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.run:
        run_id = client.resolve(args.run)
    elif args.id_file and Path(args.id_file).exists():
        text = Path(args.id_file).read_text(encoding="utf-8").strip()
        if not text.isdigit():
            raise UsageError(f"{args.id_file}: no run id in it")
        run_id = int(text)
    elif args.name:
        running = [r for r in client.runs(name=args.name) if r["status"] == "running"]
        if not running:
            raise UsageError(f"no running run named {args.name!r}")
        run_id = int(running[0]["id"])
    else:
        raise UsageError("which run? give RUN, --id-file or --name")
    body: Json = {"status": args.status}
    if args.exit_code is not None:
        body["exit_code"] = args.exit_code
    run = client.finish(run_id, body)
    say(f"run {run['id']} {run['status']}")
    if args.settle:
        print(report.summary_text(settle(client, run_id, args.settle, say=say)), flush=True)
    return EXIT_PASS


def cmd_compare(args: argparse.Namespace) -> int:
    client = _client(args)
    run_id = client.resolve(args.run)
    return _gate(client, args, run_id, client.get(run_id)["name"])


def cmd_list(args: argparse.Namespace) -> int:
    runs = _client(args).runs(name=args.name, limit=args.limit)
    rows = [["id", "name", "status", "verdict", "start", "duration", "baseline"]]
    for r in runs:
        rows.append(
            [
                str(r["id"]),
                r["name"],
                r["status"],
                r.get("verdict") or "–",
                r.get("start") or "",
                "–" if r.get("duration_s") is None else f"{r['duration_s']:.1f} s",
                str(r.get("baseline") or "–"),
            ]
        )
    print(report._table(rows) if runs else "no runs", flush=True)
    return EXIT_PASS


def main(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``heron loadtest`` command; errors become exit 2 with a message."""
    try:
        code: int = args.loadtest_func(args)
        return code
    except UsageError as e:
        say(str(e))
        return EXIT_ERROR
    except ApiError as e:
        say(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED


# ------------------------------------------------------------------ parser
def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="Heron server URL (HERON_URL, default http://127.0.0.1:4318)")
    p.add_argument("--token", help="API token (HERON_API_TOKEN)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per API call")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="the run's name (a scenario: checkout-50u)")
    p.add_argument("--baseline", help="compare with this run: an id, or a name (its newest run)")
    p.add_argument("--label", action="append", default=[], metavar="K=V", help="repeatable")
    p.add_argument("--service", help="compare only this service's endpoints")
    p.add_argument("--environment", help="deployment environment of the app under load")


def _gate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=float, default=0.2, help="p95 slowdown that counts (0.2)")
    p.add_argument("--alpha", type=float, default=0.01, help="significance level (0.01)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown report here")
    p.add_argument("--json", metavar="FILE", help="write the comparison JSON here")
    p.add_argument(
        "--fail-on",
        choices=("regression", "never"),
        default="regression",
        help="exit 1 on a regression (default), or never",
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``heron loadtest ...``, hooked into ``heron.cli.build_parser``."""
    lt = sub.add_parser(
        "loadtest",
        help="mark load-test runs and gate CI on latency regressions (docs/loadtest.md)",
        description="Load-test runs on a running Heron server: mark the window of a load "
        "test, compare it with a baseline run, exit 1 on a regression (docs/loadtest.md).",
    )
    lt.set_defaults(func=main)
    cmds = lt.add_subparsers(dest="loadtest_cmd", required=True, metavar="COMMAND")

    run = cmds.add_parser(
        "run",
        help="run a load test (a command, or the built-in Locust) as a run, then gate",
        description="heron loadtest run --name N [--baseline B] -- COMMAND..., or with "
        "--target URL the built-in Locust driver.",
    )
    _run_args(run)
    _gate_args(run)
    run.add_argument(
        "--settle", type=float, default=30.0, help="seconds to wait for telemetry (30)"
    )
    loc = run.add_argument_group("built-in Locust (instead of a command)")
    loc.add_argument("--target", metavar="URL", help="base URL of the app to load")
    loc.add_argument("--path", action="append", help="GET this path (repeatable, round-robin)")
    loc.add_argument("--locustfile", help="your Locust file (its User classes)")
    loc.add_argument("--users", type=int, default=10, help="concurrent users (10)")
    loc.add_argument("--spawn-rate", type=float, default=5.0, help="users started per second")
    loc.add_argument("--duration", default="30s", help="how long: 30s, 2m, 1m30s (30s)")
    loc.add_argument("--wait", type=float, default=0.0, help="seconds between a user's requests")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- the load command")
    _server_args(run)
    run.set_defaults(loadtest_func=cmd_run)

    start = cmds.add_parser("start", help="open a run's window now; prints its id")
    _run_args(start)
    start.add_argument("--command", dest="command_text", help="what runs the load (shown)")
    start.add_argument("--id-file", help="also write the id to this file")
    _server_args(start)
    start.set_defaults(loadtest_func=cmd_start)

    stop = cmds.add_parser("stop", help="close a run's window now")
    stop.add_argument("run", nargs="?", help="id or name (default: --id-file, or --name)")
    stop.add_argument("--name", help="the newest running run of this name")
    stop.add_argument("--id-file", help="read the run id from this file")
    stop.add_argument("--status", choices=("finished", "failed", "aborted"), default="finished")
    stop.add_argument("--exit-code", type=int, help="the load tool's exit code")
    stop.add_argument(
        "--settle", type=float, default=0.0, help="wait this long for telemetry, print figures"
    )
    _server_args(stop)
    stop.set_defaults(loadtest_func=cmd_stop)

    cmp = cmds.add_parser("compare", help="compare a run with a baseline and gate")
    cmp.add_argument("run", help="id, or name (its newest run)")
    cmp.add_argument("--baseline", help="id or name (default: the run's own baseline)")
    _gate_args(cmp)
    _server_args(cmp)
    cmp.set_defaults(loadtest_func=cmd_compare)

    ls = cmds.add_parser("list", help="runs, newest first")
    ls.add_argument("--name", help="only runs of this name")
    ls.add_argument("--limit", type=int, default=20)
    _server_args(ls)
    ls.set_defaults(loadtest_func=cmd_list)
