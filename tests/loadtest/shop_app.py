"""The app under load in tests/loadtest: Flask + ``heron.init()`` under werkzeug (threads).

``GET /a`` and ``GET /b`` sleep a log-normal time around 80 and 50 ms (sleep dominates
the latency, so the machine's load shifts it little between runs); the slowdown knob
``GET /admin/slow?path=/a&factor=1.4`` multiplies one path's delay (factor 1 resets).
Environment: HERON_URL, KEY (the server and its ingest key), PORT.
"""

import os
import random
import time

from flask import Flask, request
from werkzeug.serving import make_server

import heron

heron.init(service="lt-shop", endpoint=os.environ["HERON_URL"], key=os.environ["KEY"])
app = Flask("lt-shop")
BASE_MS = {"/a": 80.0, "/b": 50.0}
factor = {path: 1.0 for path in BASE_MS}


def work(path: str) -> str:
    time.sleep(BASE_MS[path] * factor[path] * random.lognormvariate(0.0, 0.15) / 1000)
    return "ok"


@app.get("/a")
def a() -> str:
    return work("/a")


@app.get("/b")
def b() -> str:
    return work("/b")


@app.get("/admin/slow")
def slow() -> str:
    factor[request.args["path"]] = float(request.args["factor"])
    return str(factor)


make_server("127.0.0.1", int(os.environ["PORT"]), app, threaded=True).serve_forever()
