"""An app using the unmodified sentry-sdk, pointed at Heron by its DSN.

    python sentry_app.py DSN MODE

MODE ``errors``: the same bug captured twice (different order ids), a warning message,
then an uncaught exception (sentry's excepthook sends it; atexit flushes).
MODE ``canaries``: one event carrying secret canaries everywhere (see test_sentry_sdk.py),
injected in ``before_send`` so that only Heron's server-side scrubbing stands between
them and the database. Prints each captured event id on its own line.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import sentry_sdk


def charge(order_id: int) -> None:
    amount = order_id * 3  # noqa: F841 - a local variable for the event's frame vars
    raise ValueError(f"card declined for order {order_id}")


def handle(order_id: int) -> str | None:
    try:
        charge(order_id)
    except ValueError as e:
        return sentry_sdk.capture_exception(e)
    return None


def explode() -> None:
    settings: dict[str, str] = {}
    print(settings["missing_key"])


def plant_canaries(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    c = json.loads(os.environ["CANARIES"])
    event["request"] = {
        "method": "POST",
        "url": f"https://shop.example/checkout?token={c['query']}&page=2",
        "query_string": f"token={c['query']}&page=2",
        "headers": {
            "Authorization": f"Bearer {c['header']}",
            "Cookie": f"sessionid={c['cookie']}",
            "X-Request-Id": "req-visible-1",
        },
        "cookies": {"sessionid": c["cookie"]},
        "data": {"password": c["form"], "card": "4111 1111 1111 1111", "qty": "2"},
    }
    if "exception" in event:
        frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
        frames[-1]["vars"] = {"password": c["local"], "note": f"api_key={c['local2']}", "n": "3"}
    event["breadcrumbs"] = {
        "values": [
            {
                "timestamp": 1_700_000_000.5,
                "category": "auth",
                "message": f"login with password={c['crumb']}",
                "data": {"Authorization": f"Basic {c['crumb2']}"},
            }
        ]
    }
    event["extra"] = {"visible": "CONTROL_visible_marker", "secret": c["extra"]}
    return event


def main() -> None:
    dsn, mode = sys.argv[1], sys.argv[2]
    sentry_sdk.init(
        dsn=dsn,
        release="shop@1.2.3",
        environment="staging",
        before_send=plant_canaries if mode == "canaries" else None,
    )
    if mode == "canaries":
        print(handle(5), flush=True)
        message = json.loads(os.environ["CANARIES"])["message"]
        print(sentry_sdk.capture_message(f"login failed for bob password={message}"), flush=True)
        sentry_sdk.flush(10)
        return
    print(handle(17), flush=True)
    print(handle(4242), flush=True)
    print(sentry_sdk.capture_message("cache warmed in 35 ms", level="warning"), flush=True)
    sentry_sdk.flush(10)
    explode()


if __name__ == "__main__":
    main()
