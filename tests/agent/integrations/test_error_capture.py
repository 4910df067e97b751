"""Unhandled exceptions in real Flask, Django and FastAPI apps, each served by a real server
in a subprocess with ``heron.init()``, reach a real OTLP receiver as events.

Each event must carry the view's frame with its source context, the request (scrubbed),
the trace id of the request's server span, and the id the response announced in
``X-Heron-Event-Id``. A 404 is not an event. Secret canaries planted in headers, cookies,
the query string, form data, locals and log messages never appear in what the agent sent.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from heron._scrub import FILTERED
from tests.agent.helpers import Procs, agent_env, free_port, python
from tests.agent.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.e2e

CANARIES = {
    "header": "CANARYhdr7f3a",
    "auth": "CANARYauth91bd",
    "cookie": "CANARYcookie55e",
    "query": "CANARYqs0c2d",
    "form": "CANARYform8e1f",
    "local": "CANARYlocal3b9a",
    "log": "CANARYlog4d4d",
}

VIEW = """
    api_secret = "{local}"
    logging.getLogger("shop").info("charging card with password={log}")
    raise RuntimeError("checkout failed")
""".format(**CANARIES)

FLASK_APP = """
import logging, os
import heron
heron.init(service="flask-errors", endpoint=os.environ["RECEIVER"], key="hk_test")
logging.basicConfig(level=logging.INFO)
from flask import Flask
from werkzeug.serving import make_server

app = Flask("shop")

@app.route("/ok")
def ok():
    return "ok"

@app.route("/checkout", methods=["POST"])
def checkout():
{view}

@app.errorhandler(500)
def error_page(e):
    return {{"errorId": heron.last_event_id()}}, 500

make_server("127.0.0.1", int(os.environ["PORT"]), app, threaded=True).serve_forever()
"""

DJANGO_APP = """
import logging, os
import heron
heron.init(service="django-errors", endpoint=os.environ["RECEIVER"], key="hk_test")
logging.basicConfig(level=logging.INFO)
import django
from django.conf import settings
from django.http import Http404, HttpResponse
from django.urls import path

def ok(request):
    return HttpResponse("ok")

def missing(request):
    raise Http404("no such order")

def checkout(request):
{view}

urlpatterns = [path("ok", ok), path("missing", missing), path("checkout", checkout)]
settings.configure(DEBUG=False, SECRET_KEY="x", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                   MIDDLEWARE=[], INSTALLED_APPS=[])
django.setup()
from django.core.wsgi import get_wsgi_application
from wsgiref.simple_server import make_server
make_server("127.0.0.1", int(os.environ["PORT"]), get_wsgi_application()).serve_forever()
"""

FASTAPI_APP = """
import logging, os
import heron
heron.init(service="fastapi-errors", endpoint=os.environ["RECEIVER"], key="hk_test")
logging.basicConfig(level=logging.INFO)
import uvicorn
from fastapi import FastAPI, HTTPException, Request

app = FastAPI()

@app.get("/ok")
async def ok():
    return "ok"

@app.get("/missing")
async def missing():
    raise HTTPException(status_code=404)

@app.post("/checkout")
async def checkout(request: Request):
    await request.body()
{view}

uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="info")
"""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


def serve(procs: Procs, tmp_path: Path, receiver: OtlpReceiver, source: str) -> str:
    port = free_port()
    app = tmp_path / "app.py"
    app.write_text(source.format(view=textwrap.indent(textwrap.dedent(VIEW), "    ")))
    env = agent_env(tmp_path, RECEIVER=receiver.url, PORT=str(port))
    proc = procs.start(python(str(app)), env, "app")
    base = f"http://127.0.0.1:{port}"
    procs.wait_http(proc, f"{base}/ok")
    return base


def post_checkout(base: str) -> httpx.Response:
    return httpx.post(
        f"{base}/checkout?token={CANARIES['query']}&page=2",
        headers={
            "X-Api-Key": CANARIES["header"],
            "Authorization": f"Bearer {CANARIES['auth']}",
            "Cookie": f"sessionid={CANARIES['cookie']}",
        },
        data={"password": CANARIES["form"], "item": "book"},
        timeout=10,
    )


def check_event(receiver: OtlpReceiver, response: httpx.Response, route: str) -> dict[str, Any]:
    event_id = response.headers["X-Heron-Event-Id"]
    assert len(event_id) == 32
    receiver.wait(lambda r: any(e["event_id"] == event_id for e in r.events()))
    (event,) = [e for e in receiver.events() if e["event_id"] == event_id]
    assert event["level"] == "error"
    (exc,) = event["exception"]["values"]
    assert (exc["type"], exc["value"]) == ("RuntimeError", "checkout failed")
    assert exc["mechanism"]["handled"] is False
    top = exc["stacktrace"]["frames"][-1]
    assert (top["function"], top["in_app"]) == ("checkout", True)
    assert top["context_line"].strip() == 'raise RuntimeError("checkout failed")'
    assert top["pre_context"][-1].strip().startswith('logging.getLogger("shop")')
    assert top["vars"]["api_secret"] == FILTERED

    request = event["request"]
    assert request["method"] == "POST"
    assert request["url"].endswith("/checkout") and "?" not in request["url"]
    assert request["query_string"] == f"token={FILTERED}&page=2"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == headers["x-api-key"] == headers["cookie"] == FILTERED
    assert request["data"] == {"password": FILTERED, "item": "book"}

    crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
    assert f"charging card with password={FILTERED}" in crumbs

    receiver.wait(lambda r: any(s["name"] == route and s["kind"] == 2 for s in r.spans))
    (server,) = [s for s in receiver.spans if s["name"] == route and s["kind"] == 2]
    assert event["contexts"]["trace"]["trace_id"] == server["trace_id"]
    assert event["transaction"] == route
    (record,) = [
        r for r in receiver.logs_with("heron.event") if event_id in r["attributes"]["heron.event"]
    ]
    assert record["trace_id"] == server["trace_id"] and record["severity_number"] == 17
    assert record["attributes"]["exception.type"] == "RuntimeError"
    assert record["resource"]["service.name"].endswith("-errors")
    assert set(receiver.keys) == {"hk_test"}
    return event


def assert_no_canary(receiver: OtlpReceiver) -> None:
    sent = receiver.raw("/v1/logs") + receiver.raw("/v1/traces")
    assert b"charging card" in sent  # the log line itself did arrive
    for where, canary in CANARIES.items():
        assert canary.encode() not in sent, f"the {where} canary left the process"


def test_flask_under_a_real_wsgi_server(
    procs: Procs, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    base = serve(procs, tmp_path, receiver, FLASK_APP)
    response = post_checkout(base)
    assert response.status_code == 500
    event = check_event(receiver, response, "POST /checkout")
    assert response.json() == {"errorId": event["event_id"]}  # heron.last_event_id()
    missing = httpx.get(f"{base}/missing", timeout=10)
    assert missing.status_code == 404 and "X-Heron-Event-Id" not in missing.headers
    # Flask logs the exception too: that record points at the event instead of repeating it.
    receiver.wait(lambda r: bool(r.logs_with("heron.event_ref")))
    (ref,) = receiver.logs_with("heron.event_ref")
    assert ref["attributes"]["heron.event_ref"] == event["event_id"]
    assert ref["scope"] == "shop" and ref["body"].startswith("Exception on /checkout")
    assert len(receiver.events()) == 1
    assert_no_canary(receiver)


def test_django_under_a_real_wsgi_server(
    procs: Procs, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    base = serve(procs, tmp_path, receiver, DJANGO_APP)
    response = post_checkout(base)
    assert response.status_code == 500
    check_event(receiver, response, "POST checkout")
    missing = httpx.get(f"{base}/missing", timeout=10)
    assert missing.status_code == 404 and "X-Heron-Event-Id" not in missing.headers
    receiver.wait(lambda r: bool(r.logs_with("heron.event_ref")))
    assert len(receiver.events()) == 1
    assert_no_canary(receiver)


def test_fastapi_under_uvicorn(procs: Procs, tmp_path: Path, receiver: OtlpReceiver) -> None:
    base = serve(procs, tmp_path, receiver, FASTAPI_APP)
    response = post_checkout(base)
    assert response.status_code == 500
    check_event(receiver, response, "POST /checkout")
    missing = httpx.get(f"{base}/missing", timeout=10)
    assert missing.status_code == 404 and "X-Heron-Event-Id" not in missing.headers
    receiver.wait(lambda r: bool(r.logs_with("heron.event_ref")))
    assert len(receiver.events()) == 1
    assert_no_canary(receiver)
