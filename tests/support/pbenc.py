"""A tiny schema-free protobuf encoder for tests: bodies are spelled field number by field number, so
the tests do not reuse the decoder's own schema to build their input."""
from __future__ import annotations

MAGIC = b"k8s\x00"


def varint(n: int) -> bytes:
    """Base-128 varint; negative numbers as 64-bit two's complement, like Go's int32/int64 fields."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num: int, wire_type: int) -> bytes:
    return varint(num << 3 | wire_type)


def i(num: int, n: int) -> bytes:
    """int32/int64/bool field (wire type 0)."""
    return key(num, 0) + varint(int(n))


def b(num: int, data: bytes) -> bytes:
    """bytes field (wire type 2)."""
    return key(num, 2) + varint(len(data)) + data


def s(num: int, text: str) -> bytes:
    return b(num, text.encode())


def m(num: int, *parts: bytes) -> bytes:
    """Embedded message made of already-encoded fields."""
    return b(num, b"".join(parts))


def fixed64(num: int, n: int) -> bytes:
    return key(num, 1) + n.to_bytes(8, "little")


def fixed32(num: int, n: int) -> bytes:
    return key(num, 5) + n.to_bytes(4, "little")


def entry(num: int, k: str, v: str | bytes) -> bytes:
    """One map<string, string|bytes> entry; a message value is passed pre-encoded via m(2, ...)."""
    value = v.encode() if isinstance(v, str) else v
    return m(num, s(1, k), b(2, value))


def qty(num: int, text: str) -> bytes:
    """resource.Quantity {string=1}."""
    return m(num, s(1, text))


def qty_entry(num: int, k: str, text: str) -> bytes:
    """map<string, Quantity> entry (ResourceList)."""
    return m(num, s(1, k), qty(2, text))


def int_or_string(num: int, v: int | str) -> bytes:
    """intstr.IntOrString {type=1 (0 int, 1 string), intVal=2, strVal=3}, written the way gogo does."""
    if isinstance(v, str):
        return m(num, i(1, 1), i(2, 0), s(3, v))
    return m(num, i(1, 0), i(2, v), s(3, ""))


def envelope(api_version: str, kind: str, raw: bytes, content_type: str = "") -> bytes:
    """`k8s\\0` + runtime.Unknown{typeMeta{apiVersion, kind}=1, raw=2, contentEncoding=3, contentType=4}."""
    return MAGIC + m(1, s(1, api_version), s(2, kind)) + b(2, raw) + s(3, "") + s(4, content_type)
