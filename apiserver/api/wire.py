"""Minimal protobuf wire-format reading (varints, length-delimited fields), shared by the
Kubernetes protobuf decoder and the schema generator. Malformed input raises ValueError."""
from __future__ import annotations

from typing import Iterator


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for one message; value is int or bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError("field number 0")
        if wt == 0:
            val, pos = varint(buf, pos)
            yield num, wt, val
        elif wt == 2:
            n, pos = varint(buf, pos)
            if pos + n > end:
                raise ValueError("truncated length-delimited field")
            yield num, wt, buf[pos:pos + n]
            pos += n
        elif wt == 1:
            if pos + 8 > end:
                raise ValueError("truncated fixed64")
            yield num, wt, int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wt == 5:
            if pos + 4 > end:
                raise ValueError("truncated fixed32")
            yield num, wt, int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
