"""The UI's shared, linkable state: time range, environment and auto-refresh, in the URL.

Every page reads the same query parameters and every link it renders carries them, so a
view can be shared by copying the address bar. A preset range (``range=1h``) is relative
to the moment the page is loaded; a custom one (``from``/``to``) is absolute.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from heron.server.query import InvalidQuery, TimeRange, iso, parse_time

RANGES: dict[str, int] = {
    "15m": 15 * 60,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "7d": 7 * 86400,
}
DEFAULT_RANGE = "1h"
REFRESH: dict[str, int] = {"off": 0, "10s": 10, "30s": 30, "1m": 60, "5m": 300}
MAX_RANGE_S = 90 * 86400
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class UiState:
    """What the global controls say; ``time_range`` is resolved against the clock."""

    range: str
    """A preset key of RANGES, or "custom"."""
    time_range: TimeRange
    environment: str | None
    refresh: str
    custom_from: str = ""
    custom_to: str = ""
    now_ns: int | None = None
    """When the page was asked for: the chart step holding it is still filling."""

    def params(self) -> dict[str, str]:
        """The global parameters as they appear in URLs (defaults left out)."""
        out: dict[str, str] = {}
        if self.range == "custom":
            out["from"], out["to"] = self.custom_from, self.custom_to
        elif self.range != DEFAULT_RANGE:
            out["range"] = self.range
        if self.environment is not None:
            out["env"] = self.environment
        if self.refresh != "off":
            out["refresh"] = self.refresh
        return out

    def url(self, path: str, /, **extra: Any) -> str:
        """``path`` with the global parameters and ``extra`` (None values dropped)."""
        params: dict[str, Any] = {**self.params()}
        for key, value in extra.items():
            key = key.rstrip("_")
            if value is None or value == "" or value == []:
                params.pop(key, None)
            else:
                params[key] = value
        query = urlencode(params, doseq=True)
        return f"{path}?{query}" if query else path

    def with_range(self, preset: str) -> UiState:
        return replace(self, range=preset, custom_from="", custom_to="")

    @property
    def refresh_s(self) -> int:
        return REFRESH[self.refresh]

    @property
    def from_iso(self) -> str:
        return iso(self.time_range.start_ns)

    @property
    def to_iso(self) -> str:
        return iso(self.time_range.end_ns)


def read_state(request: Request, now_ns: int) -> UiState:
    """Parse the global parameters; a bad value raises InvalidQuery naming it."""
    q = request.query_params
    env = q.get("env") or None
    refresh = q.get("refresh") or "off"
    if refresh not in REFRESH:
        raise InvalidQuery(f"refresh must be one of {', '.join(REFRESH)} (got {refresh[:32]!r})")
    frm, to = (q.get("from") or "").strip(), (q.get("to") or "").strip()
    if frm or to:
        end = parse_time("to", to, now_ns) if to else now_ns
        start = parse_time("from", frm, now_ns) if frm else end - RANGES[DEFAULT_RANGE] * NS
        if end - start > MAX_RANGE_S * NS:
            raise InvalidQuery(f"the time range is longer than {MAX_RANGE_S // 86400} days")
        return UiState(
            "custom", TimeRange(start, end), env, refresh, frm or iso(start), to or "now", now_ns
        )
    preset = q.get("range") or DEFAULT_RANGE
    if preset not in RANGES:
        raise InvalidQuery(f"range must be one of {', '.join(RANGES)} (got {preset[:32]!r})")
    time_range = TimeRange(now_ns - RANGES[preset] * NS, now_ns)
    return UiState(preset, time_range, env, refresh, now_ns=now_ns)
