"""The read API's shared query parameters (time range, environment, Apdex T) and the
dependencies every route takes: ``WindowDep`` (those parameters, parsed) and ``Project``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

from heron.server.context import Ctx
from heron.server.query import TIME_HELP, InvalidQuery, TimeRange, iso, parse_time

DEFAULT_RANGE_NS = 3600 * 10**9


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


async def window(
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
    """A dependency reading ``from``, ``to``, ``environment`` and ``apdex_t_ms`` (no I/O,
    so ``async``: no thread-pool hop)."""
    now = ctx.clock()
    end = parse_time("to", to, now) if to else now
    start = parse_time("from", from_, now) if from_ else end - DEFAULT_RANGE_NS
    t = apdex_t_ms if apdex_t_ms is not None else ctx.config.apdex_t_ms
    if not math.isfinite(t) or t <= 0:
        raise InvalidQuery("apdex_t_ms must be a positive number")
    return Window(TimeRange(start, end), environment or None, t, now)


async def project_id(ctx: Ctx) -> int:
    """The project the read API answers for."""
    return ctx.project_id


WindowDep = Annotated[Window, Depends(window)]
Project = Annotated[int, Depends(project_id)]
