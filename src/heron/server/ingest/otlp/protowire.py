"""Protobuf wire-format primitives shared by the hot-path decoders (``wire`` for spans,
``metrics_wire`` for metric data points): varints, skipping a field, fixed64 structs."""

from __future__ import annotations

import struct

U64 = struct.Struct("<Q")


class Unsupported(Exception):
    """Wire data the fast path does not walk (group fields); use the upb path instead."""


def varint(buf: bytes, i: int) -> tuple[int, int]:
    """The varint at ``buf[i]`` and the position after it."""
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def skip(buf: bytes, i: int, wire_type: int) -> int:
    """The position after a field's value of ``wire_type`` starting at ``buf[i]``."""
    if wire_type == 0:
        return varint(buf, i)[1]
    if wire_type == 1:
        return i + 8
    if wire_type == 2:
        n, i = varint(buf, i)
        return i + n
    if wire_type == 5:
        return i + 4
    raise Unsupported(f"wire type {wire_type}")
