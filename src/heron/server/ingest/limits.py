"""What every ingest route accepts from the wire, checked before anything is queued.

A value the store cannot hold (a timestamp past 2262, an integer beyond 64 bits, text
that is not Unicode, structure nested deeper than any encoder handles) must never reach
the writer: it would fail a commit and be answered 5xx, which tells an SDK to retry a
request that can never succeed. So JSON is parsed here with a depth limit and lone
surrogate escapes replaced, and the decoders check ranges with the constants below.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# Times are stored as signed 64-bit nanoseconds since the epoch: up to 2262-04-11.
MAX_TIME_NS = 2**63 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# orjson's parser refuses deeper JSON without recursing in Python.
MAX_JSON_DEPTH = 1024
# Nesting of a structured value (OTLP kvlist/array values, Sentry data bags): deeper
# containers are replaced by TRIMMED, so scrubbing and storing stay bounded.
MAX_VALUE_DEPTH = 32
TRIMMED = "[…]"

# An escaped backslash, a surrogate pair, or a lone surrogate escape (high or low).
_ESCAPES = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    rb"|\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed as JSON; ValueError saying what is wrong otherwise.

    A lone surrogate escape (``"\\ud800"``, valid JSON that many encoders emit for
    broken text) becomes U+FFFD instead of failing the document. Nesting deeper than
    :data:`MAX_JSON_DEPTH` is refused by the parser itself, before any recursion.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        if "surrogate" not in str(e) or b"\\u" not in raw:
            raise ValueError(_json_error(e)) from None
    try:
        return orjson.loads(_ESCAPES.sub(_replace_lone, raw))
    except orjson.JSONDecodeError as e:
        raise ValueError(_json_error(e)) from None


def _replace_lone(m: re.Match[bytes]) -> bytes:
    return rb"\ufffd" if len(m.group()) == 6 else m.group()


def _json_error(e: orjson.JSONDecodeError) -> str:
    if "depth limit" in str(e):
        return f"nested deeper than {MAX_JSON_DEPTH} levels"
    return f"not valid JSON: {e}"


def trimmed(value: Any, depth: int = MAX_VALUE_DEPTH) -> Any:
    """A copy of ``value`` with containers nested deeper than ``depth`` replaced by
    :data:`TRIMMED`."""
    if isinstance(value, dict):
        if depth <= 0:
            return TRIMMED
        return {k: trimmed(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth <= 0:
            return TRIMMED
        return [trimmed(v, depth - 1) for v in value]
    return value


def time_in_range(ns: int, field: str) -> int:
    """``ns`` when it is a storable time (0 = unknown); ValueError naming ``field``."""
    if not 0 <= ns <= MAX_TIME_NS:
        raise ValueError(f"{field} {ns} is out of range (0 to {MAX_TIME_NS} ns, year 2262)")
    return ns


def int64(v: int, field: str) -> int:
    if not INT64_MIN <= v <= INT64_MAX:
        raise ValueError(f"{field} {v} is out of the int64 range")
    return v
