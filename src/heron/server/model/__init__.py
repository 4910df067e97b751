"""Internal records that ingest produces and stores consume: one module per record
(:mod:`.span`, :mod:`.log`, :mod:`.event`), each with its columns and rules.

Decoders build these from wire formats; nothing here knows about SQL engines or HTTP.
"""

from heron.server.model.event import ISSUE_STATUSES, LEVELS, ErrorEvent
from heron.server.model.log import LogRecord
from heron.server.model.span import (
    KIND_NAMES,
    SPAN_KIND_CLIENT,
    SPAN_KIND_CONSUMER,
    SPAN_KIND_INTERNAL,
    SPAN_KIND_PRODUCER,
    SPAN_KIND_SERVER,
    SPAN_KIND_UNSPECIFIED,
    STATUS_ERROR,
    STATUS_NAMES,
    STATUS_OK,
    STATUS_UNSET,
    DecodeResult,
    Span,
)

__all__ = [
    "ISSUE_STATUSES",
    "KIND_NAMES",
    "LEVELS",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_CONSUMER",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_UNSPECIFIED",
    "STATUS_ERROR",
    "STATUS_NAMES",
    "STATUS_OK",
    "STATUS_UNSET",
    "DecodeResult",
    "ErrorEvent",
    "LogRecord",
    "Span",
]
