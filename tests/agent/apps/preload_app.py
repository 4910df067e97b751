"""Flask app for ``gunicorn --preload``: heron.init() runs once, in the master, at import."""

import os
import time

import heron

heron.init()  # HERON_* variables

# Export from the master before the fork, so its connection pool holds an open socket
# to Heron that every worker inherits: each must use its own connection.
with heron.span("preload"):
    pass
assert heron.flush(10)

from flask import Flask  # noqa: E402

app = Flask(__name__)
MASTER_PID = os.getpid()  # the process that imported the app (--preload: the master)


@app.get("/work")
def work() -> dict[str, int]:
    time.sleep(0.15)  # keeps a worker busy, so concurrent requests spread over workers
    return {"pid": os.getpid(), "master": MASTER_PID}
