"""Runs Django requests through heron's django integration; prints the spans as JSON.

A subprocess, because Django settings can be configured once per process. The
integration is scheduled before Django is imported, the way ``heron.init()`` does it.
"""

import json
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from heron.agent.config import resolve_config
from heron.agent.integrations import setup_integrations
from heron.agent.runtime import SEMCONV_OPT_IN

memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(provider)
os.environ.setdefault(*SEMCONV_OPT_IN)
assert setup_integrations(resolve_config(instrument=["django"], environ={})) == ("django",)

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.base import BaseHandler  # noqa: E402 - fires heron's hook
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import path  # noqa: E402

configured_by_heron = settings.configured  # the hook must not configure settings itself


def user(request: HttpRequest, uid: int) -> JsonResponse:
    return JsonResponse({"uid": uid})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


urlpatterns = [path("users/<int:uid>", user), path("boom", boom)]

settings.configure(
    DEBUG=False,
    SECRET_KEY="test",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
)
django.setup()
client = Client(raise_request_exception=False)
statuses = [client.get("/users/7").status_code, client.get("/boom").status_code]
print(
    json.dumps(
        {
            "configured_by_heron": configured_by_heron,
            "patched": BaseHandler.load_middleware.__module__,
            "statuses": statuses,
            "spans": [
                {
                    "name": s.name,
                    "kind": s.kind.name,
                    "status": s.status.status_code.name,
                    "attributes": dict(s.attributes or {}),
                    "events": [e.name for e in s.events],
                }
                for s in memory.get_finished_spans()
            ],
        }
    )
)
