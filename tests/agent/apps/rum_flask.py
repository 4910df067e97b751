"""A Flask shop page for the RUM trace-context test: ``python rum_flask.py PORT``.

``heron.init()`` comes from the environment (HERON_ENDPOINT, HERON_SERVICE, and
HERON_SERVER_TIMING when the test turns it off). The page's template puts
``heron.traceparent_meta()`` in its ``<head>``, unescaped without ``|safe``.
"""

import signal
import sys

from flask import Flask, render_template_string
from werkzeug.serving import make_server

import heron

heron.init()
app = Flask(__name__)

PAGE = """<!doctype html><html><head>{{ heron.traceparent_meta() }}<title>{{ name }}</title>
</head><body><h1>{{ name }}</h1></body></html>"""


@app.get("/products/<int:pid>")
def product(pid: int) -> str:
    return render_template_string(PAGE, heron=heron, name=f"<product {pid}>")


@app.get("/health")
def health() -> str:
    return "ok"


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    make_server("127.0.0.1", int(sys.argv[1]), app).serve_forever()
