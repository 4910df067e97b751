"""``heron`` command line: serve | demo | run.

Imports are lazy so ``heron run`` (agent side) never loads the server's dependencies.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _serve(args: argparse.Namespace) -> int:
    from heron.server.serve import serve

    return serve(config_path=args.config, host=args.host, port=args.port, data_dir=args.data_dir)


def _demo(args: argparse.Namespace) -> int:
    from heron.demo.runner import run_demo

    return run_demo(port=args.port, data_dir=args.data_dir, duration_s=args.duration)


def _run(args: argparse.Namespace) -> int:
    from heron.agent.run import run_command

    return run_command(args.command)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="heron", description="Heron: self-hosted APM for Python teams")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the Heron server (OTLP ingest, API)")
    s.add_argument("--config", help="TOML config file (also HERON_CONFIG)")
    s.add_argument("--host", help="bind address (HERON_HOST, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (HERON_PORT, default 4318)")
    s.add_argument("--data-dir", help="data directory (HERON_DATA_DIR, default ./heron-data)")
    s.set_defaults(func=_serve)

    d = sub.add_parser("demo", help="run the server, a two-service demo shop and traffic")
    d.add_argument("--port", type=int, default=4318, help="Heron server port (default 4318)")
    d.add_argument("--data-dir", default="heron-demo-data", help="data directory for the demo")
    d.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: run until Ctrl-C)")
    d.set_defaults(func=_demo)

    r = sub.add_parser("run", help="run a command with the Heron agent auto-instrumenting it")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- program [args...]")
    r.set_defaults(func=_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) and args.command[:1] == ["--"]:
        args.command = args.command[1:]
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
