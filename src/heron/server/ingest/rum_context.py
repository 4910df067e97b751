"""What the events of one RUM beacon share: its envelope (:class:`Context`) and the page
views it reports on (:class:`View`), decoded and scrubbed (``rum_decode``)."""

from __future__ import annotations

from dataclasses import dataclass

from heron.server.ingest.useragent import UserAgentInfo


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
