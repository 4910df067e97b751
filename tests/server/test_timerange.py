"""The time parser the JSON API and the web UI share (``heron.server.query``)."""

from __future__ import annotations

import pytest

from heron.server.query import InvalidQuery, iso, parse_time

NOW_NS = 1_700_000_000 * 10**9


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("now", NOW_NS),
        (" -15m ", NOW_NS - 900 * 10**9),
        ("now-2h", NOW_NS - 7200 * 10**9),
        ("1700000000.5", 1_700_000_000_500_000_000),
        ("2023-11-14T22:13:20Z", NOW_NS),
        ("2023-11-14T22:13:20", NOW_NS),  # no offset: UTC
        ("2023-11-15T00:13:20+02:00", NOW_NS),
    ],
)
def test_parse_time_accepts_what_the_help_text_promises(text: str, expected_ns: int) -> None:
    assert parse_time("from", text, NOW_NS) == expected_ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "neither an ISO 8601"),
        ("1700000000000", "looks like ms"),
        ("-5", "non-negative"),
        ("inf", "finite"),
    ],
)
def test_parse_time_names_the_parameter_it_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message) as e:
        parse_time("to", text, NOW_NS)
    assert "'to'" in str(e.value)


def test_iso_round_trips_at_microsecond_precision() -> None:
    ns = NOW_NS + 123_456_789
    assert iso(ns) == "2023-11-14T22:13:20.123456Z"
    assert parse_time("from", iso(ns), NOW_NS) == ns - 789
