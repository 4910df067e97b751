"""Flask app exposing heron's metrics at /metrics (``heron.metrics_app()``), for gunicorn."""

import os

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


app = DispatcherMiddleware(flask_app, {"/metrics": heron.metrics_app()})
