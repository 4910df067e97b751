"""What the events of one RUM beacon share: its envelope (:class:`Context`) and the page
views it reports on (:class:`View`), decoded and scrubbed (``rum_decode``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from heron._scrub import Scrubber
from heron.server.ingest.useragent import UserAgentInfo

# Scrubbed URLs and texts up to this long are remembered, this many at a time: a site's
# beacons repeat their pages, resources and scripts.
_CACHED_CHARS = 2048
_CACHE_ENTRIES = 16_384


class TextScrubber(Protocol):
    def url(self, url: str) -> str: ...

    def text(self, s: str) -> str: ...


class CachedScrubber:
    """A :class:`heron._scrub.Scrubber`'s ``url`` and ``text``, memoized (bounded)."""

    def __init__(self, scrubber: Scrubber) -> None:
        self.scrubber = scrubber
        self._urls: dict[str, str] = {}

    def url(self, url: str) -> str:
        hit = self._urls.get(url)
        if hit is None:
            hit = self.scrubber.url(url)
            if len(url) <= _CACHED_CHARS:
                if len(self._urls) >= _CACHE_ENTRIES:
                    self._urls.clear()
                self._urls[url] = hit
        return hit

    def text(self, s: str) -> str:
        return self.scrubber.text(s)  # memoized by the Scrubber itself


@dataclass(slots=True)
class View:
    id: str
    url: str  # scrubbed
    page: str
    origin: str
    referrer: str  # scrubbed
    nav: str
    start_ms: float
    trace_id: bytes | None
    document_span: int  # the backend span that served the document (traceparent's)


@dataclass(slots=True)
class Context:
    """The beacon's envelope: what every event of it shares."""

    session: str
    user: str
    app: str
    release: str
    environment: str
    sdk: str
    ua: UserAgentInfo
    user_agent: str
    views: dict[str, View]
    received_ns: int
