"""Service "frontend": Flask under werkzeug's WSGI server, heron.init() with keywords.

It calls the "backend" service over HTTP: ``/orders/<id>`` with requests,
``/stock/<id>`` with httpx. Usage: python frontend.py PORT (env: HERON_URL, HERON_TEST_KEY,
BACKEND_URL).
"""

import os
import signal
import sys
import time

import heron

heron.init(
    service="frontend",
    endpoint=os.environ["HERON_URL"],
    key=os.environ["HERON_TEST_KEY"],
    environment="test",
    release="1.2.3",
)

import httpx  # noqa: E402 - after init here; backend.py imports before it
import requests  # noqa: E402
from flask import Flask  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

app = Flask(__name__)
BACKEND = os.environ["BACKEND_URL"]


@app.get("/orders/<int:order_id>")
def order(order_id: int) -> dict[str, object]:
    time.sleep(0.03)
    item = requests.get(f"{BACKEND}/items/{order_id}", timeout=10).json()
    return {"order": order_id, "item": item}


@app.get("/stock/<int:item_id>")
def stock(item_id: int) -> dict[str, object]:
    with httpx.Client(timeout=10) as client:
        item = client.get(f"{BACKEND}/items/{item_id}").json()
    return {"stock": item}


@app.get("/fail")
def fail() -> str:
    raise RuntimeError("frontend failure")


@app.get("/health")
def health() -> str:
    return "ok"


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exit through atexit → flush
    make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True).serve_forever()
