"""OTLP decoding, by concern: :mod:`.common` (resource, attribute values, request
errors; shared with logs), :mod:`.traces` (span validation and lifting), :mod:`.reference`
(protobuf via upb objects, and OTLP-JSON) and :mod:`.wire` (the fast protobuf decoder
of the ingest hot path). This package exports what the rest of Heron calls.
"""

from heron.server.ingest.otlp.common import DecodeError
from heron.server.ingest.otlp.reference import decode_json, decode_protobuf
from heron.server.ingest.otlp.wire import decode_protobuf_batch

__all__ = ["DecodeError", "decode_json", "decode_protobuf", "decode_protobuf_batch"]
