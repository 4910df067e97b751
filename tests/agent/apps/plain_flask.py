"""An unmodified Flask app: no heron import. ``heron run -- python plain_flask.py PORT``."""

import signal
import sys
import time

from flask import Flask
from werkzeug.serving import make_server

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name: str) -> str:
    time.sleep(0.02)
    return f"hello {name}"


@app.get("/health")
def health() -> str:
    return "ok"


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    make_server("127.0.0.1", int(sys.argv[1]), app).serve_forever()
