"""Shared pieces of the read side: time ranges and errors.

Nothing here formats SQL from caller input: values are always bound parameters and the
few identifiers that vary come from constant tables in this package.
"""

from __future__ import annotations

from dataclasses import dataclass

NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
NS_PER_MS = 1_000_000


class InvalidQuery(ValueError):
    """A query parameter is out of range or malformed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open range ``[start_ns, end_ns)`` of Unix nanoseconds."""

    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        if self.start_ns >= self.end_ns:
            raise InvalidQuery("the time range is empty: 'from' must be before 'to'")

    @property
    def minutes(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_MIN

    def covered_minutes(self, first_minute_s: int | None) -> float:
        """Minutes from the first minute with data (the range's start without one) to the
        range's end, at least one: rates over the time a service was actually seen, so one
        that started three minutes ago is not averaged over the whole hour."""
        start = self.start_ns if first_minute_s is None else first_minute_s * NS_PER_S
        return max(self.end_ns - start, NS_PER_MIN) / NS_PER_MIN

    def minute_bounds(self, step_s: int = 60) -> tuple[int, int]:
        """Rollup ``minute_s`` bounds ``[lo, hi)`` of the steps overlapping the range.

        Rollups have minute granularity, so a minute (or step) partly inside the range
        counts whole; ``step_s`` must be a multiple of 60.
        """
        step_ns = step_s * NS_PER_S
        lo = self.start_ns // step_ns * step_s
        hi = -(-self.end_ns // step_ns) * step_s
        return lo, hi


def filling_share(t: int, step_s: int, now_ns: int | None) -> float | None:
    """The elapsed share (0..1) of the step starting at Unix second ``t`` if it is still
    filling at ``now_ns``, else None (a past step, or no clock given)."""
    start_ns, step_ns = t * NS_PER_S, step_s * NS_PER_S
    if now_ns is None or not start_ns <= now_ns < start_ns + step_ns:
        return None
    return max(now_ns - start_ns, NS_PER_S) / step_ns


def ms(ns: float | None) -> float | None:
    """Nanoseconds to milliseconds, rounded to the microsecond."""
    return None if ns is None else round(ns / NS_PER_MS, 3)
