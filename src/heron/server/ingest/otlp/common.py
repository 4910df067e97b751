"""Pieces every OTLP decoder shares (traces and logs, protobuf and JSON): the request
error, the resource, and attribute values in either encoding.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from heron.server.ingest.limits import MAX_VALUE_DEPTH, TRIMMED, int64, parse_json
from heron.server.semconv import ENVIRONMENT_KEYS, SERVICE_NAME, SERVICE_VERSION

MAX_ATTR_VALUE_CHARS = 16_384


class DecodeError(ValueError):
    """The request as a whole is not a valid OTLP export."""


def first_value(attrs: dict[str, Any], keys: Iterable[str]) -> Any:
    for k in keys:
        v = attrs.get(k)
        if v is not None:
            return v
    return None


def as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


class ResourceInfo:
    __slots__ = ("service", "environment", "release", "attributes", "error")

    def __init__(self, attributes: dict[str, Any], error: str | None = None) -> None:
        self.attributes = attributes
        self.error = error  # why every item of this resource is rejected
        self.service = str(attributes.get(SERVICE_NAME) or "unknown_service")
        self.environment = str(first_value(attributes, ENVIRONMENT_KEYS) or "")
        self.release = str(attributes.get(SERVICE_VERSION) or "")


def clip(s: str) -> str:
    return s if len(s) <= MAX_ATTR_VALUE_CHARS else s[:MAX_ATTR_VALUE_CHARS] + "…"


def pb_value(v: Any, depth: int = 0) -> Any:
    which = v.WhichOneof("value")
    if which == "string_value":
        return clip(v.string_value)
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        if depth >= MAX_VALUE_DEPTH:
            return TRIMMED
        return [pb_value(x, depth + 1) for x in v.array_value.values]
    if which == "kvlist_value":
        if depth >= MAX_VALUE_DEPTH:
            return TRIMMED
        return {kv.key: pb_value(kv.value, depth + 1) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def pb_attrs(kvs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: pb_value(kv.value) for kv in kvs}


def hex_id(v: Any, field: str, length: int) -> bytes:
    if v is None or v == "":
        return b""
    if not isinstance(v, str) or len(v) != 2 * length:
        raise ValueError(f"{field} must be a {2 * length}-character hex string")
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise ValueError(f"{field} must be a {2 * length}-character hex string") from None


def json_int(v: Any, field: str) -> int:
    if v is None:
        return 0
    if isinstance(v, bool):
        raise ValueError(f"{field} must be an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise ValueError(f"{field} must be an integer (number or decimal string)")


def json_str(v: Any, field: str) -> str:
    """A string field: as sent; numbers and booleans as text (lenient encoders send
    them); anything else is invalid."""
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    if isinstance(v, int | float):
        return str(v)
    raise ValueError(f"{field} must be a string")


def json_obj(v: Any, field: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError(f"{field} must be an object")
    return v


def json_double(d: Any) -> float | None:
    if isinstance(d, bool) or not isinstance(d, int | float | str):
        return None
    try:
        return float(d)
    except ValueError:
        raise ValueError(f"doubleValue {str(d)[:32]!r} is not a number") from None


def json_value(v: Any, depth: int = 0) -> Any:
    if not isinstance(v, dict):
        return None
    if "stringValue" in v:
        return clip(json_str(v["stringValue"], "stringValue"))
    if "intValue" in v:
        return int64(json_int(v["intValue"], "intValue"), "intValue")
    if "doubleValue" in v:
        return json_double(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v or "kvlistValue" in v:
        if depth >= MAX_VALUE_DEPTH:
            return TRIMMED
        if "arrayValue" in v:
            return [json_value(x, depth + 1) for x in json_list(v["arrayValue"], "values")]
        return json_attrs(json_list(v["kvlistValue"], "values"), depth + 1)
    if "bytesValue" in v:
        return clip(json_str(v["bytesValue"], "bytesValue"))
    return None


def json_attrs(kvs: Any, depth: int = 0) -> dict[str, Any]:
    if not kvs:
        return {}
    if not isinstance(kvs, list):
        raise ValueError("attributes must be a list of {key, value}")
    out: dict[str, Any] = {}
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            try:
                out[kv["key"]] = json_value(kv.get("value"), depth)
            except ValueError as e:
                if depth:
                    raise
                raise ValueError(f"attribute {kv['key'][:64]!r}: {e}") from None
    return out


def json_list(obj: Any, key: str) -> list[Any]:
    v = obj.get(key) if isinstance(obj, dict) else None
    if v is None:
        return []
    if not isinstance(v, list):
        raise DecodeError(f"field {key!r} must be an array")
    return v


def json_resource(parent: dict[str, Any]) -> ResourceInfo:
    """The resource of a ResourceSpans/ResourceLogs; one whose attributes are invalid
    makes each of its items rejected (not the whole request)."""
    try:
        attrs = json_attrs(json_obj(parent.get("resource"), "resource").get("attributes"))
    except ValueError as e:
        return ResourceInfo({}, error=f"resource: {e}")
    return ResourceInfo(attrs)


def json_scope_name(parent: Any) -> str:
    scope = parent.get("scope") if isinstance(parent, dict) else None
    name = scope.get("name") if isinstance(scope, dict) else None
    return name if isinstance(name, str) else ""


def json_body(body: bytes, message_type: str) -> dict[str, Any]:
    """An OTLP-JSON request body as a dict; DecodeError saying what is wrong otherwise
    (including nesting too deep to parse: see :func:`parse_json`)."""
    try:
        doc = parse_json(body)
    except ValueError as e:
        raise DecodeError(f"request body is {e}") from None
    if not isinstance(doc, dict):
        raise DecodeError(f"request body must be a JSON object ({message_type})")
    return doc
