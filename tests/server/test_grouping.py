"""Grouping: the same bug groups together whatever varies per occurrence; different bugs
do not."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from heron.server.analyze.grouping import (
    MAX_TITLE_CHARS,
    assign,
    culprit,
    display_type,
    fingerprint,
    normalize_message,
    title,
)
from heron.server.model import ErrorEvent


def frame(function: str, lineno: int, module: str = "shop.orders", in_app: bool = True) -> dict:
    return {
        "filename": module.replace(".", "/") + ".py",
        "module": module,
        "function": function,
        "lineno": lineno,
        "context_line": f"    line {lineno}",
        "in_app": in_app,
    }


def event(
    exc_type: str | None = "ValueError",
    message: str = "card declined",
    frames: list[dict] | None = None,
    **kw: Any,
) -> ErrorEvent:
    exceptions = (
        [{"type": exc_type, "value": message, "frames": frames}] if frames is not None else []
    )
    return ErrorEvent(
        event_id=uuid.uuid4().hex,
        time_ns=1,
        received_ns=1,
        service="shop",
        environment="prod",
        release="1.0",
        level="error",
        platform="python",
        source="sentry",
        exc_type=exc_type,
        message=message,
        culprit="",
        exceptions=exceptions,
        **kw,
    )


def stack(lines: tuple[int, int, int], top: str = "charge") -> list[dict]:
    return [
        frame("dispatch", lines[0], "flask.app", in_app=False),
        frame("checkout", lines[1]),
        frame(top, lines[2], "shop.payments"),
    ]


lines = st.tuples(*[st.integers(1, 100_000)] * 3)


@given(lines, lines)
def test_line_numbers_do_not_split_a_group(
    a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    assert fingerprint(event(frames=stack(a))) == fingerprint(event(frames=stack(b)))


@given(lines, st.sampled_from(["refund", "capture", "charge_v2"]))
def test_a_different_function_is_a_different_issue(a: tuple[int, int, int], top: str) -> None:
    assert fingerprint(event(frames=stack(a))) != fingerprint(event(frames=stack(a, top=top)))


@given(lines, st.sampled_from(["KeyError", "TypeError", "shop.errors.CardDeclined"]))
def test_a_different_type_is_a_different_issue(a: tuple[int, int, int], other: str) -> None:
    assert fingerprint(event(frames=stack(a))) != fingerprint(event(other, frames=stack(a)))


def test_frames_outside_the_app_count_only_when_none_is_in_app() -> None:
    lib_only = [frame("connect", 10, "psycopg", in_app=False)]
    other_lib = [frame("execute", 10, "psycopg", in_app=False)]
    assert fingerprint(event(frames=lib_only)) != fingerprint(event(frames=other_lib))
    # Library frames around the same in-app frames do not matter.
    app = [frame("checkout", 5)]
    assert fingerprint(event(frames=lib_only + app)) == fingerprint(event(frames=other_lib + app))


def test_frames_group_regardless_of_message() -> None:
    a = event(message="card declined for order 17", frames=stack((1, 2, 3)))
    b = event(message="card 4242 expired", frames=stack((1, 2, 3)))
    assert fingerprint(a) == fingerprint(b)


ids = st.one_of(
    st.integers(0, 10**12).map(str),
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex),
    st.integers(0, 2**64 - 1).map(hex),
    st.text("abcdefghij ", min_size=0, max_size=12).map(repr),
    st.emails(),
)


@given(ids, ids, ids, ids)
def test_messages_differing_in_ids_group_together(a: str, b: str, c: str, d: str) -> None:
    m1 = f"order {a} not found for user {b}"
    m2 = f"order {c} not found for user {d}"
    assert normalize_message(m1) == normalize_message(m2)
    assert fingerprint(event(message=m1)) == fingerprint(event(message=m2))


@given(ids)
def test_different_messages_or_types_without_frames_do_not_group(a: str) -> None:
    base = fingerprint(event(message=f"order {a} not found"))
    assert base != fingerprint(event(message=f"user {a} not found"))
    assert base != fingerprint(event("KeyError", message=f"order {a} not found"))


def test_plain_messages_group_by_normalized_text() -> None:
    a = event(None, "cache warmed in 35 ms")
    b = event(None, "cache warmed in 1200 ms")
    c = event(None, "cache cleared in 35 ms")
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)
    assert normalize_message("user 'bob' at 0x7f3a9c at 10.0.0.1") == "user <*> at <*> at <*>"


def test_explicit_fingerprint_wins_and_expands_default() -> None:
    a = event(frames=stack((1, 2, 3)), explicit_fingerprint=["payments", "declined"])
    b = event(
        "KeyError", "other", frames=[frame("x", 1)], explicit_fingerprint=["payments", "declined"]
    )
    assert fingerprint(a) == fingerprint(b)
    c = event(frames=stack((1, 2, 3)), explicit_fingerprint=["{{ default }}", "eu"])
    d = event(frames=stack((7, 8, 9)), explicit_fingerprint=["{{default}}", "eu"])
    e = event(frames=stack((7, 8, 9)), explicit_fingerprint=["{{ default }}", "us"])
    assert fingerprint(c) == fingerprint(d) != fingerprint(e)
    # "{{ default }}" alone is the default group's input but not the same key.
    plain = event(frames=stack((1, 2, 3)))
    assert fingerprint(plain) != fingerprint(
        event(frames=stack((1, 2, 3)), explicit_fingerprint=["x"])
    )


def test_fingerprint_is_an_unsigned_64_bit_int() -> None:
    fp = fingerprint(event(frames=stack((1, 2, 3))))
    assert 0 <= fp < 2**64


def test_titles_show_types_without_main_or_builtins() -> None:
    assert display_type("__main__.PaymentDeclined") == "PaymentDeclined"
    assert display_type("builtins.KeyError") == "KeyError"
    assert display_type("shop.__main__.X") == "shop.__main__.X"
    main = event("__main__.PaymentDeclined", "card declined")
    assert title(main) == "PaymentDeclined: card declined"
    assert title(event("builtins.KeyError", "")) == "KeyError"
    script = [{"module": "__main__", "filename": "shop.py", "function": "_charge", "in_app": True}]
    assert culprit(event(frames=script)) == "shop.py in _charge"
    # Grouping keeps the type as reported, so existing issues keep their fingerprints.
    assert fingerprint(main) != fingerprint(event("PaymentDeclined", "card declined"))


def test_title_and_culprit() -> None:
    ev = event(message="card declined\nsecond line", frames=stack((1, 2, 3)))
    assert title(ev) == "ValueError: card declined"
    assert culprit(ev) == "shop.payments in charge"
    assert title(event(None, "")) == "(no message)"
    assert title(event("KeyError", "")) == "KeyError"
    long = title(event(message="x" * 500))
    assert len(long) == MAX_TITLE_CHARS and long.endswith("…")
    no_frames = event(message="boom", transaction="GET /orders")
    assert assign(no_frames).culprit == "GET /orders"
    assert no_frames.issue_fingerprint == fingerprint(no_frames)
