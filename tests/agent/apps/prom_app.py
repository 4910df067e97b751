"""Flask app exposing heron's metrics at /metrics (``heron.metrics_app()``), for gunicorn."""

import os
import sys
import threading
import traceback

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import heron

heron.init(prometheus=True)  # HERON_* variables; HERON_PROMETHEUS_DIR for several workers

orders = heron.counter("orders.placed", unit="{order}", description="Orders placed")

flask_app = Flask(__name__)


@flask_app.get("/work")
def work() -> dict[str, int]:
    orders.add(1, {"country": "FR"})
    heron.record_metric("payment.amount", 12.5, unit="EUR")
    return {"pid": os.getpid()}


@flask_app.get("/threads")
def threads() -> dict[str, object]:
    """Every thread's stack and the agent's export counts: what a test prints when a
    worker stays silent, so a rare failure says where that worker's exporter is."""
    frames = sys._current_frames()
    stacks = {
        f"{t.name} ({t.ident})": "".join(traceback.format_stack(frames[t.ident]))
        for t in threading.enumerate()
        if t.ident in frames
    }
    return {"pid": os.getpid(), "stats": repr(heron.stats()), "threads": stacks}


app = DispatcherMiddleware(flask_app, {"/metrics": heron.metrics_app()})
