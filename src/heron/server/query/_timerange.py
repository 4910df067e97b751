"""Time parameters as people write them (ISO 8601, Unix seconds, ``now``, ``-1h``) and
back: the one parser the JSON API and the web UI share."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from heron.server.query._common import InvalidQuery

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Unix seconds beyond year ~5138 are almost surely milliseconds or nanoseconds.
_MAX_UNIX_S = 10**11

TIME_HELP = (
    "ISO 8601 (e.g. 2024-05-01T12:00:00Z; no offset means UTC), Unix seconds, "
    "'now', or relative to now: -15m, -1h, -7d."
)
_UNITS_NS = {
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86_400 * 10**9,
    "w": 604_800 * 10**9,
}
_RELATIVE = re.compile(r"(?:now)?-(\d{1,6})([smhdw])")


def parse_time(name: str, text: str, now_ns: int) -> int:
    """Unix nanoseconds of an ISO 8601 timestamp, Unix seconds, ``now`` or ``-1h``."""
    text = text.strip()
    if text == "now":
        return now_ns
    rel = _RELATIVE.fullmatch(text)
    if rel:
        return now_ns - int(rel.group(1)) * _UNITS_NS[rel.group(2)]
    try:
        seconds = Decimal(text)
    except InvalidOperation:
        return _parse_iso(name, text)
    if not seconds.is_finite() or seconds < 0:
        raise InvalidQuery(f"{name!r} must be a finite, non-negative number of Unix seconds")
    if seconds >= _MAX_UNIX_S:
        raise InvalidQuery(f"{name!r} must be Unix seconds (this looks like ms or ns): {text}")
    return int(seconds * 10**9)


def _parse_iso(name: str, text: str) -> int:
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        raise InvalidQuery(
            f"{name!r} is neither an ISO 8601 timestamp nor Unix seconds: {text[:64]!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def iso(ns: int) -> str:
    """Unix nanoseconds as an ISO 8601 UTC timestamp (microsecond precision)."""
    dt = _EPOCH + timedelta(microseconds=ns // 1000)
    return dt.isoformat().replace("+00:00", "Z")
