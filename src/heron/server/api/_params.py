"""The read API's shared query parameters (time range, environment, Apdex T) and the
dependencies every route takes: ``WindowDep`` (those parameters, parsed) and ``Project``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Query

from heron.server.context import Ctx
from heron.server.query import InvalidQuery, TimeRange

DEFAULT_RANGE_NS = 3600 * 10**9
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


@dataclass(frozen=True, slots=True)
class Window:
    """The shared parameters of read queries, parsed and defaulted."""

    time_range: TimeRange
    environment: str | None
    apdex_t_ms: float
    now_ns: int | None = None
    """When the request was read: the series step holding it is still filling."""

    def echo(self) -> dict[str, Any]:
        """The range and filter as answered back in every response."""
        return {
            "from": iso(self.time_range.start_ns),
            "to": iso(self.time_range.end_ns),
            "environment": self.environment,
        }


def window(
    ctx: Ctx,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            description=(
                f"Start of the range (inclusive). {TIME_HELP} Default: one hour before 'to'."
            ),
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(description=(f"End of the range (exclusive). {TIME_HELP} Default: now.")),
    ] = None,
    environment: Annotated[
        str | None,
        Query(
            description=(
                "Only this deployment environment (deployment.environment.name); "
                "empty or absent means all."
            )
        ),
    ] = None,
    apdex_t_ms: Annotated[
        float | None,
        Query(
            gt=0,
            allow_inf_nan=False,
            description=(
                "Apdex threshold T in ms (satisfied ≤ T < tolerating ≤ 4T). Default: server config."
            ),
        ),
    ] = None,
) -> Window:
    """A dependency reading ``from``, ``to``, ``environment`` and ``apdex_t_ms``."""
    now = ctx.clock()
    end = parse_time("to", to, now) if to else now
    start = parse_time("from", from_, now) if from_ else end - DEFAULT_RANGE_NS
    t = apdex_t_ms if apdex_t_ms is not None else ctx.config.apdex_t_ms
    if not math.isfinite(t) or t <= 0:
        raise InvalidQuery("apdex_t_ms must be a positive number")
    return Window(TimeRange(start, end), environment or None, t, now)


def project_id(ctx: Ctx) -> int:
    """The project the read API answers for."""
    return ctx.project_id


WindowDep = Annotated[Window, Depends(window)]
Project = Annotated[int, Depends(project_id)]
