"""The built-in Locust driver, run as ``python -m heron.loadtest.locust_driver`` (a child).

Locust runs as a library (``Environment`` + ``create_local_runner``, headless), in its
own process because importing it monkey-patches the standard library with gevent, which
the ``heron`` process must not suffer. Protocol with the parent, on stdout (progress goes
to stderr, which the parent shares with the user):

1. ``ready`` once the users are built (imports and the locustfile can take a second or
   two; the parent starts the run's window only now, so it holds only load);
2. the parent answers a line on stdin: go;
3. ``result {json}`` once the load has stopped: the totals, sent as the run's ``load``.

Without ``--locustfile``, an ``HttpUser`` GETs the ``--path`` values round-robin (one
sequence over all users, so each path gets the same count, ±1) with ``--wait`` seconds
between requests (default 0: as fast as the app answers).
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
import time
from typing import Any

import gevent  # locust monkey-patches on import; gevent is its dependency
from gevent.event import Event
from locust import HttpUser, User, constant, task
from locust.env import Environment
from locust.util.load_locustfile import load_locustfile


def path_user(paths: list[str], wait: float) -> type[User]:
    """An HttpUser that GETs ``paths`` round-robin, named by path in Locust's stats."""
    cycle = itertools.cycle(paths)

    class PathUser(HttpUser):
        wait_time = constant(wait)

        @task
        def get_next(self) -> None:
            path = next(cycle)
            self.client.get(path, name=path)

    return PathUser


def _user_classes(args: argparse.Namespace) -> list[type[User]]:
    if args.locustfile:
        users, _shapes = load_locustfile(args.locustfile)
        if not users:
            raise SystemExit(f"{args.locustfile}: no User class")
        return list(users.values())
    return [path_user(args.path or ["/"], args.wait)]


def _figures(env: Environment) -> dict[str, Any]:
    total = env.stats.total
    return {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": round(total.total_rps, 2),
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m heron.loadtest.locust_driver")
    p.add_argument("--target", required=True, help="the app's base URL")
    p.add_argument("--path", action="append", help="GET these paths round-robin")
    p.add_argument("--locustfile")
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--spawn-rate", type=float, default=5.0)
    p.add_argument("--duration", type=float, default=30.0, help="seconds")
    p.add_argument("--wait", type=float, default=0.0)
    p.add_argument("--progress", type=float, default=2.0, help="seconds between progress lines")
    args = p.parse_args(argv)

    env = Environment(user_classes=_user_classes(args), host=args.target)
    runner = env.create_local_runner()
    print("ready", flush=True)
    if not sys.stdin.readline():  # the parent went away
        return 1

    stop = Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, stop.set)

    def progress() -> None:
        while True:
            gevent.sleep(args.progress)
            f = _figures(env)
            print(
                f"locust: {runner.user_count} users, {f['requests']} requests, "
                f"{f['rps']:.1f} req/s, {f['failures']} failures, p95 {f['p95_ms']:.0f} ms",
                file=sys.stderr,
                flush=True,
            )

    started = time.monotonic()
    runner.start(args.users, spawn_rate=args.spawn_rate)
    reporter = gevent.spawn(progress)
    stop.wait(timeout=args.duration)
    runner.quit()
    reporter.kill()
    elapsed = time.monotonic() - started

    result = {
        "tool": "locust",
        "host": args.target,
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "duration_s": round(elapsed, 3),
        **_figures(env),
        "endpoints": {
            f"{method} {name}": {"requests": s.num_requests, "failures": s.num_failures}
            for (name, method), s in sorted(env.stats.entries.items())
        },
    }
    if args.locustfile:
        result["locustfile"] = args.locustfile
    if args.path and not args.locustfile:
        result["paths"] = args.path
    print("result " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
