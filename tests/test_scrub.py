"""heron._scrub: the rules the agent and the server both apply before data leaves/lands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron._scrub import (
    _CARD,
    _DEFAULT_NEEDLES,
    DEFAULT_DENY_KEYS,
    FILTERED,
    Scrubber,
    _may_hold_card,
)

S = Scrubber()
CANARY = "CANARY-7f3a9c"


@pytest.mark.parametrize(
    "key",
    ["password", "PASSWORD", "user_password", "passwd", "api_key", "X-Api-Key", "apikey",
     "Authorization", "Cookie", "Set-Cookie", "sessionid", "csrftoken", "X-CSRF-Token",
     "access_token", "client_secret", "credit_card", "card_number", "cvv", "private_key",
     "aws_access_key_id", "x-heron-key", "X-Sentry-Auth", "sentry_key", "DSN"],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    assert S.sensitive_key(key)


@pytest.mark.parametrize("key", ["user", "email", "id", "order_id", "query", "q", "page", "host"])
def test_ordinary_keys(key: str) -> None:
    assert not S.sensitive_key(key)


def test_extra_deny_keys_and_replacing_the_defaults() -> None:
    s = Scrubber(["Ssn", "mothers-maiden"])
    assert s.sensitive_key("user_ssn") and s.sensitive_key("MOTHERS_MAIDEN_NAME")
    assert s.sensitive_key("password")
    only = Scrubber(["ssn"], use_defaults=False)
    assert only.sensitive_key("ssn") and not only.sensitive_key("password")


@pytest.mark.parametrize(
    "text",
    [
        f"login failed for bob password={CANARY}",
        f"config: {{'api_key': '{CANARY}', 'debug': True}}",
        f'{{"token": "{CANARY}", "n": 1}}',
        f"Authorization: Bearer {CANARY}abcdef",
        f"sent header 'Basic {CANARY}xyz'",
        f"connecting to postgres://app:{CANARY}@db.internal:5432/shop",
        f"GET https://api.example.com/v1/items?page=2&access_token={CANARY} failed",
        f"session => {CANARY}",
        f"secret: {CANARY}",
        f"login failed: password={CANARY}",
        f"error: token={CANARY}",
        f"msg: 'api-key: {CANARY}'",
        f"headers X-Api-Key={CANARY}, retrying",
    ],
)
def test_text_removes_secrets(text: str) -> None:
    out = S.text(text)
    assert CANARY not in out, out
    assert FILTERED in out


def test_text_keeps_what_is_not_secret() -> None:
    msg = "user=alice order_id=42 took 35 ms; url https://shop.test/orders?page=2"
    assert S.text(msg) == msg
    assert S.text("") == ""


@pytest.mark.parametrize(
    "card", ["4111 1111 1111 1111", "4111-1111-1111-1111", "4242424242424242", "378282246310005"]
)
def test_card_numbers_that_pass_luhn_are_filtered(card: str) -> None:
    assert S.text(f"charge card {card} now") == f"charge card {FILTERED} now"


def test_numbers_that_fail_luhn_stay() -> None:
    assert S.text("order 4111111111111112 shipped") == "order 4111111111111112 shipped"
    assert S.text("pi is 3.14159265358979") == "pi is 3.14159265358979"


def test_url_and_query_string() -> None:
    url = f"https://bob:{CANARY}@shop.test/cart?token={CANARY}&q=lamp#top"
    out = S.url(url)
    assert CANARY not in out and "bob" not in out
    assert out.startswith("https://shop.test/cart?") and "q=lamp" in out
    assert S.query_string(f"?q=lamp&password={CANARY}") == f"q=lamp&password={FILTERED}"


def test_headers() -> None:
    out = S.headers(
        {
            "Authorization": f"Bearer {CANARY}",
            "Cookie": f"sessionid={CANARY}",
            "X-Api-Key": CANARY,
            "User-Agent": "curl/8",
            "Referer": f"https://shop.test/?token={CANARY}",
        }
    )
    assert CANARY not in repr(out)
    assert out["User-Agent"] == "curl/8" and out["Authorization"] == FILTERED


def test_value_recurses_and_copies() -> None:
    data = {
        "user": {"id": 7, "password": CANARY, "tags": [f"token={CANARY}", "ok"]},
        "form": [("card", "4111 1111 1111 1111")],
        "n": 3,
        "none": None,
    }
    out = S.value(data)
    assert CANARY not in repr(out) and "4111" not in repr(out)
    assert out["user"]["id"] == 7 and out["n"] == 3 and out["none"] is None
    assert data["user"]["password"] == CANARY  # the input is not modified


def test_depth_cap() -> None:
    deep: object = CANARY
    for _ in range(50):
        deep = {"a": deep}
    assert CANARY not in repr(S.value(deep))


@given(st.text(max_size=200))
def test_text_never_raises_and_is_idempotent(s: str) -> None:
    once = S.text(s)
    assert S.text(once) == once


@given(
    st.lists(
        st.sampled_from(["password=x1", "token: 'x2'", "user=bob", "error:", "a=b", "[Filtered]"]),
        max_size=8,
    )
)
def test_idempotent_on_pairs(parts: list[str]) -> None:
    once = S.text(" ".join(parts))
    assert S.text(once) == once
    assert "x1" not in once and "x2" not in once


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=100))
def test_planted_password_never_survives(noise: str) -> None:
    out = S.text(f"{noise} password={CANARY} {noise}")
    assert CANARY not in out


def test_every_default_key_has_a_needle() -> None:
    """The text pre-check must not skip any default key, in any spelling."""
    for key in DEFAULT_DENY_KEYS:
        for spelling in (key, key.replace("_", "-"), key.replace("_", ""), key.upper()):
            norm = spelling.lower().replace("-", "_")
            assert any(n in norm for n in _DEFAULT_NEEDLES), spelling
            assert S.text(f"{spelling}={CANARY}") == f"{spelling}={FILTERED}", spelling


def test_secrets_by_value_are_redacted_wherever_they_flow() -> None:
    """A form password passed on as an argument named ``card`` is no key-named secret, but
    it is the same value: collected from the sensitive keys, removed everywhere."""
    request = {
        "headers": {
            "Authorization": f"Bearer {CANARY}-auth",
            "Cookie": f"sid=x; session={CANARY}-ck",
        },
        "data": {"password": f"{CANARY}-pw", "order": "8"},
        "query_string": "",
    }
    found = S.secrets(request) | S.query_secrets(f"q=lamp&token={CANARY}-qs")
    assert {f"{CANARY}-auth", f"{CANARY}-ck", f"{CANARY}-pw", f"{CANARY}-qs"} <= found
    assert "lamp" not in found and "8" not in found
    frame_vars = {"card": f"{CANARY}-pw", "order_id": 8, "note": f"sent {CANARY}-qs twice"}
    out = S.redact(frame_vars, found)
    assert out == {"card": FILTERED, "order_id": 8, "note": f"sent {FILTERED} twice"}
    assert S.redact("short", {"abc"}) == "short"  # too short to be told from ordinary text
    assert S.secrets([("password", f"{CANARY}-tuple")]) == {f"{CANARY}-tuple"}


def test_query_string_keeps_what_is_not_secret_byte_for_byte() -> None:
    qs = "q=a%20b+c&tag=x;y&empty=&flag&page=2"
    assert S.query_string(qs) == qs
    assert S.query_string(f"%74oken={CANARY}&q=1") == f"%74oken={FILTERED}&q=1"
    hidden = S.query_string(f"note=password%3D{CANARY}&q=1")  # percent-encoded pair
    assert CANARY not in hidden and hidden.endswith("&q=1")
    odd = S.query_string(f"note=password%3D{CANARY}\ud800")  # a lone surrogate: no error
    assert CANARY not in odd


@given(st.text(alphabet=st.sampled_from("0123456789 -.x\u00e9\ud800"), max_size=60))
def test_the_card_pre_check_never_misses_a_candidate(s: str) -> None:
    """The cheap test may say yes needlessly, never no where the card pattern matches."""
    if _CARD.search(s):
        assert _may_hold_card(s), s
