"""An app whose Heron is unreachable or misconfigured; prints what it observed as JSON.

Usage: python resilient.py [--no-shutdown]. Configured by HERON_* / OTEL_* variables;
RESILIENT_INIT_KWARGS (JSON) adds keyword arguments to heron.init().
"""

import dataclasses
import json
import os
import sys
import time

import heron

heron.init(**json.loads(os.environ.get("RESILIENT_INIT_KWARGS", "{}")))

from flask import Flask  # noqa: E402

app = Flask(__name__)


@heron.traced
def total(n: int) -> int:
    return sum(range(n))


@app.get("/sum/<int:n>")
def sum_route(n: int) -> dict[str, int]:
    with heron.span("summing", n=n):
        return {"total": total(n)}


client = app.test_client()
statuses = [client.get(f"/sum/{i}").status_code for i in range(50)]


def timed(func, timeout):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    ok = func(timeout)
    return ok, time.monotonic() - started


result = {"statuses": sorted(set(statuses))}
result["flush_ok"], result["flush_s"] = timed(heron.flush, 1.0)
if "--no-shutdown" not in sys.argv:
    result["shutdown_ok"], result["shutdown_s"] = timed(heron.shutdown, 1.0)
    deadline = time.monotonic() + 5  # the aborted export reports its drop just after
    while heron.stats().failed_exports == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
result["stats"] = dataclasses.asdict(heron.stats())
print(json.dumps(result), flush=True)
