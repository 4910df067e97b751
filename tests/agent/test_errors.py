"""Error events: what the client builds (chain, frames, context, locals, request, trace,
breadcrumbs), what it filters (ignore options, before_send, dedupe) and that it never raises.

The client is driven directly with a list as its ``send``; nothing here calls
``heron.init()`` (that runs in subprocess tests: test_error_hooks, test_logs,
integrations/test_error_capture).
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

import heron
from heron._scrub import FILTERED
from heron.agent import errors
from heron.agent.config import resolve_config
from heron.agent.errors import _scope
from heron.agent.errors._breadcrumbs import BreadcrumbProcessor, crumb
from heron.agent.errors._client import ErrorClient
from heron.agent.errors._frames import MAX_REPR, MAX_VARS

Sent = list[tuple[dict[str, Any], BaseException | None]]


def make_client(sent: Sent, **options: Any) -> ErrorClient:
    config = resolve_config(environ={}, release="1.2.3", environment="test", **options)
    return ErrorClient(config, lambda event, exc: sent.append((event, exc)))


@pytest.fixture
def sent() -> Sent:
    return []


def inner(password: str, count: int) -> None:
    api_token = "tok-123456"  # noqa: F841 - a local the event must scrub
    big = "x" * 1000  # noqa: F841
    nested = {"a": {"b": {"c": {"d": {"e": 1}}}}, "secret": "s3cr3t"}  # noqa: F841
    raise ValueError("card 4111 1111 1111 1111 declined")


RAISE_LINE = inspect.getsourcelines(inner)[1] + 4


def outer() -> None:
    try:
        inner("hunter2", 3)
    except ValueError as e:
        raise KeyError("lookup failed") from e


def raised(func: Any) -> BaseException:
    try:
        func()
    except Exception as e:
        return e
    raise AssertionError("did not raise")


def test_exception_chain_frames_and_context(sent: Sent) -> None:
    event_id = make_client(sent).capture_exception(raised(outer))
    ((event, _),) = sent
    assert event["event_id"] == event_id and len(event_id or "") == 32
    assert (event["level"], event["platform"], event["release"], event["environment"]) == (
        "error",
        "python",
        "1.2.3",
        "test",
    )
    first, last = event["exception"]["values"]  # oldest first: the cause, then what was raised
    assert (first["type"], last["type"]) == ("ValueError", "KeyError")
    assert first["mechanism"] == {"type": "chained", "handled": True}
    assert last["mechanism"] == {"type": "generic", "handled": True}
    assert first["value"] == f"card {FILTERED} declined"  # card numbers scrubbed
    frames = first["stacktrace"]["frames"]  # caller -> callee
    assert [f["function"] for f in frames] == ["outer", "inner"]
    top = frames[-1]
    assert top["lineno"] == RAISE_LINE
    # Source lines are scrubbed like any text: the card number in the literal goes.
    assert top["context_line"].strip() == f'raise ValueError("card {FILTERED} declined")'
    assert len(top["pre_context"]) == 5 and len(top["post_context"]) == 5
    assert top["pre_context"][-1].strip().startswith("nested = ")
    assert top["module"] == __name__ and top["abs_path"] == __file__
    assert top["filename"] == "tests/agent/test_errors.py" and top["in_app"] is True
    assert [f["function"] for f in last["stacktrace"]["frames"]] == ["raised", "outer"]
    assert event["message"] == "KeyError: 'lookup failed'"
    assert event["sdk"]["name"] == "heron"
    assert event["contexts"]["runtime"]["name"] == "CPython"


def test_locals_are_scrubbed_and_capped(sent: Sent) -> None:
    make_client(sent).capture_exception(raised(outer))
    variables = sent[0][0]["exception"]["values"][0]["stacktrace"]["frames"][-1]["vars"]
    assert variables["password"] == FILTERED and variables["api_token"] == FILTERED
    assert variables["count"] == 3
    assert len(variables["big"]) == MAX_REPR + 1 and variables["big"].endswith("…")
    assert variables["nested"]["secret"] == FILTERED
    assert variables["nested"]["a"]["b"]["c"] == "{'d': {'e': 1}}"  # depth cap: a repr
    frames = sent[0][0]["exception"]["values"][0]["stacktrace"]["frames"]
    all_vars = json.dumps([f.get("vars") for f in frames])
    assert "hunter2" not in all_vars and "tok-123456" not in all_vars


def test_many_locals_are_capped_and_locals_can_be_off(sent: Sent) -> None:
    def crowded() -> None:
        scope = {f"v{i}": i for i in range(80)}
        exec("def f():\n" + "".join(f"  v{i} = {i}\n" for i in range(80)) + "  1/0\n", scope)
        scope["f"]()

    make_client(sent).capture_exception(raised(crowded))
    make_client(sent, include_locals=False).capture_exception(raised(crowded))
    on, off = (e["exception"]["values"][0]["stacktrace"]["frames"] for e, _ in sent)
    assert len(on[-1]["vars"]) == MAX_VARS
    assert all("vars" not in f for f in off)


def test_library_frames_are_not_in_app_unless_included(sent: Sent) -> None:
    make_client(sent).capture_exception(raised(lambda: json.loads("{")))
    make_client(sent, in_app_include=["json"]).capture_exception(raised(lambda: json.loads("{")))
    make_client(sent, in_app_exclude=[__name__]).capture_exception(raised(lambda: json.loads("[")))
    default, included, excluded = (
        e["exception"]["values"][-1]["stacktrace"]["frames"] for e, _ in sent
    )
    assert [f["in_app"] for f in default if f["module"].startswith("json")] == [False] * 3
    assert all("vars" not in f for f in default if not f["in_app"])  # locals: app frames only
    assert [f["in_app"] for f in default if f["module"] == __name__] == [True, True]
    assert [f["in_app"] for f in included if f["module"].startswith("json")] == [True] * 3
    assert not any(f["in_app"] for f in excluded if f["module"] == __name__)


def test_before_send_can_change_or_drop(sent: Sent) -> None:
    def tag_it(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        assert hint["exc_info"][0] is KeyError
        event["tags"]["checked"] = "yes"
        return event

    assert make_client(sent, before_send=tag_it).capture_exception(raised(outer))
    assert sent[0][0]["tags"] == {"checked": "yes"}
    dropper = make_client(sent, before_send=lambda event, hint: None)
    assert dropper.capture_exception(raised(outer)) is None
    assert len(sent) == 1 and dropper.stats.dropped == 1 and dropper.stats.captured == 0


def test_before_send_that_raises_drops_and_counts(sent: Sent) -> None:
    def broken(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("bug in the app's hook")

    client = make_client(sent, before_send=broken)
    assert client.capture_exception(raised(outer)) is None
    assert sent == [] and client.stats.failed == 1


class AppError(Exception):
    pass


class SubAppError(AppError):
    pass


def test_ignore_exceptions_by_type_or_name_including_subclasses(sent: Sent) -> None:
    by_type = make_client(sent, ignore_exceptions=[AppError])
    by_name = make_client(sent, ignore_exceptions=[f"{__name__}.AppError"])
    for client in (by_type, by_name):
        assert client.capture_exception(SubAppError("x")) is None
        assert client.capture_exception(AppError("x")) is None
    assert by_name.capture_exception(ValueError("kept")) is not None
    assert len(sent) == 1


def test_ignore_status_codes(sent: Sent) -> None:
    from starlette.exceptions import HTTPException
    from werkzeug.exceptions import InternalServerError, NotFound, Unauthorized

    client = make_client(sent)
    assert client.capture_exception(NotFound()) is None
    assert client.capture_exception(Unauthorized()) is None
    assert client.capture_exception(HTTPException(status_code=404)) is None
    assert client.capture_exception(InternalServerError()) is not None
    assert client.capture_exception(HTTPException(status_code=503)) is not None
    assert make_client(sent, ignore_status_codes=[]).capture_exception(NotFound()) is not None
    assert len(sent) == 3


def test_the_same_exception_is_captured_once(sent: Sent) -> None:
    client = make_client(sent)
    exc = raised(outer)
    first = client.capture_exception(exc)
    assert client.capture_exception(exc) == first
    assert len(sent) == 1 and client.stats.captured == 1
    assert _scope.last_event_id() == first


def test_request_data_is_scrubbed(sent: Sent) -> None:
    request = {
        "method": "POST",
        "url": "https://shop.example/pay?token=abc&page=2",
        "query_string": "token=abc&page=2",
        "headers": {"Authorization": "Bearer abcdef123", "Cookie": "sid=1", "Accept": "*/*"},
        "data": {"password": "pw", "card": "4111111111111111", "item": "book"},
    }
    state = _scope.RequestState(describe=lambda: request)
    token = _scope.begin_request(state)
    try:
        event_id = make_client(sent).capture_exception(raised(outer))
    finally:
        _scope.end_request(token)
    assert state.event_id == event_id
    got = sent[0][0]["request"]
    assert got["url"] == "https://shop.example/pay"
    assert got["query_string"] == f"token={FILTERED}&page=2"
    assert got["headers"] == {"Authorization": FILTERED, "Cookie": FILTERED, "Accept": "*/*"}
    assert got["data"] == {"password": FILTERED, "card": FILTERED, "item": "book"}


def test_user_and_tags_stay_in_their_context(sent: Sent) -> None:
    client = make_client(sent)

    def request(user_id: str) -> None:
        heron.set_user({"id": user_id, "email": None})
        heron.set_tag("tenant", f"t-{user_id}")
        client.capture_message(f"from {user_id}", "warning", context={"password": "x", "n": 1})

    threads = [threading.Thread(target=request, args=(u,)) for u in ("1", "2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_message = {e["message"]: e for e, _ in sent}
    assert by_message["from 1"]["user"] == {"id": "1"}
    assert by_message["from 2"]["tags"] == {"tenant": "t-2"}
    assert by_message["from 2"]["level"] == "warning"
    assert by_message["from 1"]["extra"] == {"password": FILTERED, "n": 1}
    assert _scope.current_user() == {}  # this thread set nothing


@pytest.fixture
def tracer_and_client(sent: Sent) -> Iterator[tuple[trace.Tracer, ErrorClient]]:
    client = make_client(sent, max_breadcrumbs=3)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BreadcrumbProcessor(client.crumbs, client.scrubber))
    yield provider.get_tracer("test"), client
    provider.shutdown()


def test_trace_context_transaction_and_per_trace_breadcrumbs(
    sent: Sent, tracer_and_client: tuple[trace.Tracer, ErrorClient]
) -> None:
    tracer, client = tracer_and_client
    client.crumbs.add(crumb("default", "outside", "not in any trace"))
    with tracer.start_as_current_span("GET /other", kind=SpanKind.SERVER):
        client.crumbs.add(crumb("default", "app", "other request"), _current_trace())
    with tracer.start_as_current_span("GET /orders/{id}", kind=SpanKind.SERVER) as root:
        for i in range(3):
            attrs = {"db.system.name": "postgresql", "db.query.text": f"SELECT ? /* {i} */"}
            with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT, attributes=attrs):
                pass
        http = {
            "http.request.method": "GET",
            "url.full": "http://pay/api?token=zz",
            "http.response.status_code": 502,
        }
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes=http):
            pass
        with tracer.start_as_current_span("work"):
            client.capture_exception(raised(outer))
        ids = root.get_span_context()
    event = sent[0][0]
    assert event["transaction"] == "GET /orders/{id}"
    assert event["contexts"]["trace"]["trace_id"] == f"{ids.trace_id:032x}"
    crumbs = event["breadcrumbs"]["values"]
    assert len(crumbs) == 3  # max_breadcrumbs: the newest kept
    assert [c["type"] for c in crumbs] == ["query", "query", "http"]
    assert crumbs[0]["message"] == "SELECT ? /* 1 */" and crumbs[0]["category"] == "db.postgresql"
    assert crumbs[-1]["data"]["url"] == f"http://pay/api?token={FILTERED}"
    assert crumbs[-1]["data"]["status_code"] == 502
    assert client.crumbs.snapshot(ids.trace_id) == []  # the trace ended: its crumbs went
    client.capture_message("outside any trace")
    assert [c["message"] for c in sent[1][0]["breadcrumbs"]["values"]] == ["not in any trace"]


def _current_trace() -> int:
    return trace.get_current_span().get_span_context().trace_id


def test_public_api_without_init_captures_nothing() -> None:
    assert errors.client() is None
    assert heron.capture_exception(ValueError("x")) is None
    assert heron.capture_message("hello") is None
    assert heron.capture_exception() is None  # nothing being handled


@pytest.mark.swallows_internal_errors
def test_never_raises_when_internals_fail(sent: Sent, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_send(event: dict[str, Any], exc: BaseException | None) -> None:
        raise OSError("pipeline broken")

    config = resolve_config(environ={})
    client = ErrorClient(config, failing_send)
    assert client.capture_exception(raised(outer)) is None
    assert client.stats.failed == 1

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("heron bug")

    monkeypatch.setattr(client, "capture_exception", broken)
    monkeypatch.setattr(client, "capture_message", broken)
    monkeypatch.setattr(errors, "_current", client)
    before = heron.stats().internal_errors
    assert heron.capture_exception(ValueError("x")) is None
    assert heron.capture_message("x") is None
    assert heron.stats().internal_errors == before + 2

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    good = ErrorClient(config, lambda event, exc: sent.append((event, exc)))
    assert good.capture_exception(Unprintable()) is not None
    assert sent[0][0]["exception"]["values"][0]["value"] == "<unprintable>"


def test_error_options_from_the_environment_never_raise() -> None:
    environ = {
        "HERON_LOGS": "off",
        "HERON_LOG_LEVEL": "warning",
        "HERON_INCLUDE_LOCALS": "0",
        "HERON_SCRUB_KEYS": "ssn, iban",
        "HERON_IGNORE_EXCEPTIONS": "myapp.errors.Retry",
        "HERON_IGNORE_STATUS_CODES": "404,teapot",
        "HERON_MAX_BREADCRUMBS": "-5",
        "HERON_IN_APP_INCLUDE": "vendored_lib",
        "HERON_ENDPOINT": "http://heron:4318/prefix",
    }
    config = resolve_config(environ=environ, before_send="not callable")  # type: ignore[arg-type]
    assert (config.logs, config.log_level, config.include_locals) == (False, 30, False)
    assert config.scrub_keys == ("ssn", "iban") and config.in_app_include == ("vendored_lib",)
    assert config.ignore_exceptions == ("myapp.errors.Retry",)
    assert config.ignore_status_codes == frozenset({404}) and config.max_breadcrumbs == 100
    assert config.before_send is None
    assert config.logs_endpoint == "http://heron:4318/prefix/v1/logs"
    assert len(config.problems) == 3  # the status code, the breadcrumbs, before_send
    assert ErrorClient(config, lambda e, x: None).scrubber.sensitive_key("user_ssn")
