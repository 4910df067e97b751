"""Server-side scrubbing of events and logs: every place a secret can hide."""

from __future__ import annotations

import orjson

from heron._scrub import FILTERED
from heron.server.analyze.event_scrub import EventScrubber
from heron.server.model import ErrorEvent, LogRecord

SECRET = "s3cr3t-CANARY-value"


def event() -> ErrorEvent:
    return ErrorEvent(
        event_id="a" * 32,
        time_ns=1,
        received_ns=1,
        service="shop",
        environment="prod",
        release="1.0",
        level="error",
        platform="python",
        source="sentry",
        exc_type="ValueError",
        message=f"login failed with password={SECRET}",
        culprit="",
        exceptions=[
            {
                "type": "ValueError",
                "value": f"bad token={SECRET}",
                "frames": [
                    {
                        "function": "login",
                        "lineno": 3,
                        "context_line": f'    connect("postgres://app:{SECRET}@db/shop")',
                        "pre_context": [f"api_key = '{SECRET}'"],
                        "vars": {"password": SECRET, "user": "bob", "cfg": {"secret": SECRET}},
                    }
                ],
            }
        ],
        breadcrumbs=[
            {"message": f"GET /x?token={SECRET}", "data": {"Authorization": f"Bearer {SECRET}"}}
        ],
        request={
            "method": "POST",
            "url": f"https://u:{SECRET}@shop.example/pay?session={SECRET}&page=2",
            "query_string": f"session={SECRET}&page=2",
            "headers": {
                "Authorization": f"Bearer {SECRET}",
                "Cookie": f"sid={SECRET}",
                "Accept": "*/*",
            },
            "cookies": {"sid": SECRET, "theme": "dark"},
            "data": {"password": SECRET, "card": "4111 1111 1111 1111", "qty": "2"},
        },
        user={"id": "42", "email": "bob@example.com", "ip_address": "10.0.0.1", "token": SECRET},
        tags={"api_key": SECRET, "region": "eu"},
        contexts={"app": {"secret_key": SECRET, "name": "shop"}},
        extra={"note": f"Authorization: Bearer {SECRET}", "dsn": SECRET, "count": 3},
    )


def test_no_secret_survives_anywhere_in_an_event() -> None:
    ev = EventScrubber().event(event())
    dumped = orjson.dumps(
        [
            ev.message,
            ev.exceptions,
            ev.breadcrumbs,
            ev.request,
            ev.user,
            ev.tags,
            ev.contexts,
            ev.extra,
        ]
    ).decode()
    assert SECRET not in dumped
    assert "4111 1111 1111 1111" not in dumped


def test_what_is_not_a_secret_is_kept() -> None:
    ev = EventScrubber().event(event())
    assert ev.user["id"] == "42" and ev.user["email"] == "bob@example.com"
    assert ev.user["token"] == FILTERED
    assert ev.request["method"] == "POST"
    assert ev.request["headers"]["Accept"] == "*/*"
    assert ev.request["headers"]["Authorization"] == FILTERED
    assert ev.request["cookies"] == {"sid": FILTERED, "theme": FILTERED}
    assert ev.request["data"]["qty"] == "2" and ev.request["data"]["password"] == FILTERED
    assert "page=2" in ev.request["query_string"] and "page=2" in ev.request["url"]
    assert ev.request["url"].startswith("https://shop.example/pay?")
    frame = ev.exceptions[0]["frames"][0]
    assert frame["vars"]["user"] == "bob" and frame["vars"]["password"] == FILTERED
    assert frame["vars"]["cfg"] == {"secret": FILTERED}
    assert frame["function"] == "login" and frame["lineno"] == 3
    assert ev.tags == {"api_key": FILTERED, "region": "eu"}
    assert ev.contexts["app"]["name"] == "shop"
    assert ev.extra["count"] == 3 and ev.extra["dsn"] == FILTERED
    assert ev.message == f"login failed with password={FILTERED}"


def test_configured_keys_extend_the_deny_list() -> None:
    ev = event()
    ev.extra = {"customer_pin": "1234", "note": "pin ok"}
    ev.request = {"headers": {"X-Customer-Pin": "1234"}}
    out = EventScrubber(["customer_pin"]).event(ev)
    assert out.extra == {"customer_pin": FILTERED, "note": "pin ok"}
    assert out.request["headers"]["X-Customer-Pin"] == FILTERED
    # not by default
    ev2 = event()
    ev2.extra = {"customer_pin": "1234"}
    assert EventScrubber().event(ev2).extra == {"customer_pin": "1234"}


def test_log_body_and_attributes() -> None:
    rec = LogRecord(
        time_ns=1,
        observed_ns=1,
        trace_id=None,
        span_id=0,
        severity_number=17,
        severity_text="ERROR",
        body=f"calling https://api.example/v1?api_key={SECRET} with Bearer {SECRET}",
        service="shop",
        environment="prod",
        release="1.0",
        attributes={
            "http.request.header.authorization": SECRET,
            "order": 7,
            "x": f"token={SECRET}",
        },
    )
    out = EventScrubber().log(rec)
    assert SECRET not in out.body and "https://api.example/v1?api_key=" in out.body
    assert out.attributes["http.request.header.authorization"] == FILTERED
    assert out.attributes["order"] == 7
    assert SECRET not in out.attributes["x"]


def test_a_secret_value_is_removed_where_it_flowed_under_another_name() -> None:
    """sentry-sdk sends the form and the locals as they are: the form's password, passed
    on as an argument named ``card``, is still the password."""
    ev = event()
    ev.request = {"method": "POST", "data": {"password": "hunter2-flows", "q": "lamp"}}
    ev.exceptions = [
        {
            "type": "ValueError",
            "value": "bad card hunter2-flows",
            "frames": [{"function": "charge", "vars": {"card": "hunter2-flows", "n": 3}}],
        }
    ]
    ev.breadcrumbs = [{"message": "charging hunter2-flows", "data": {}}]
    out = EventScrubber().event(ev)
    text = orjson.dumps([out.exceptions, out.breadcrumbs, out.request, out.message]).decode()
    assert "hunter2-flows" not in text
    assert out.exceptions[0]["frames"][0]["vars"] == {"card": FILTERED, "n": 3}
    assert out.request["data"]["q"] == "lamp"
