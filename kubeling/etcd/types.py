"""Result types and request builders of the etcd v3 client, with their JSON codecs."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Union

Bytesish = Union[str, bytes]


def to_bytes(v: Bytesish) -> bytes:
    return v.encode() if isinstance(v, str) else bytes(v)


def b64(v: Bytesish) -> str:
    return base64.b64encode(to_bytes(v)).decode()


def unb64(v: str | None) -> bytes:
    return base64.b64decode(v) if v else b""


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that selects every key starting with prefix (etcd's GetPrefixRangeEnd)."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\x00"


@dataclass(slots=True)
class Header:
    cluster_id: int = 0
    member_id: int = 0
    revision: int = 0
    raft_term: int = 0

    @classmethod
    def decode(cls, d: dict | None) -> "Header":
        d = d or {}
        return cls(int(d.get("cluster_id", 0)), int(d.get("member_id", 0)), int(d.get("revision", 0)),
                   int(d.get("raft_term", 0)))


@dataclass(slots=True)
class KeyValue:
    key: bytes
    value: bytes = b""
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    lease: int = 0

    @classmethod
    def decode(cls, d: dict) -> "KeyValue":
        return cls(unb64(d.get("key")), unb64(d.get("value")), int(d.get("create_revision", 0)),
                   int(d.get("mod_revision", 0)), int(d.get("version", 0)), int(d.get("lease", 0)))


@dataclass(slots=True)
class Event:
    type: str  # "PUT" | "DELETE"
    kv: KeyValue
    prev_kv: KeyValue | None = None

    @classmethod
    def decode(cls, d: dict) -> "Event":
        prev = d.get("prev_kv")
        return cls(d.get("type", "PUT"), KeyValue.decode(d.get("kv") or {}),
                   KeyValue.decode(prev) if prev else None)


@dataclass(slots=True)
class RangeResponse:
    header: Header
    kvs: list[KeyValue] = field(default_factory=list)
    count: int = 0
    more: bool = False

    @classmethod
    def decode(cls, d: dict) -> "RangeResponse":
        return cls(Header.decode(d.get("header")), [KeyValue.decode(x) for x in d.get("kvs") or ()],
                   int(d.get("count", 0)), bool(d.get("more", False)))


@dataclass(slots=True)
class PutResponse:
    header: Header
    prev_kv: KeyValue | None = None

    @classmethod
    def decode(cls, d: dict) -> "PutResponse":
        prev = d.get("prev_kv")
        return cls(Header.decode(d.get("header")), KeyValue.decode(prev) if prev else None)


@dataclass(slots=True)
class DeleteResponse:
    header: Header
    deleted: int = 0
    prev_kvs: list[KeyValue] = field(default_factory=list)

    @classmethod
    def decode(cls, d: dict) -> "DeleteResponse":
        return cls(Header.decode(d.get("header")), int(d.get("deleted", 0)),
                   [KeyValue.decode(x) for x in d.get("prev_kvs") or ()])


@dataclass(slots=True)
class TxnResponse:
    header: Header
    succeeded: bool = False
    responses: list = field(default_factory=list)

    @classmethod
    def decode(cls, d: dict) -> "TxnResponse":
        out = []
        for r in d.get("responses") or ():
            (kind, body), = r.items()
            out.append(_RESPONSE_TYPES[kind].decode(body))
        return cls(Header.decode(d.get("header")), bool(d.get("succeeded", False)), out)


_RESPONSE_TYPES: dict[str, Any] = {
    "response_range": RangeResponse,
    "response_put": PutResponse,
    "response_delete_range": DeleteResponse,
    "response_txn": TxnResponse,
}


@dataclass(slots=True)
class LeaseGrantResponse:
    header: Header
    id: int
    ttl: int


@dataclass(slots=True)
class LeaseTTLResponse:
    header: Header
    id: int
    ttl: int
    granted_ttl: int
    keys: list[bytes]


@dataclass(slots=True)
class StatusResponse:
    header: Header
    version: str
    db_size: int
    leader: int
    raft_index: int
    raft_term: int


@dataclass(slots=True)
class WatchResponse:
    header: Header
    events: list[Event] = field(default_factory=list)
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    watch_id: int = 0

    @classmethod
    def decode(cls, d: dict) -> "WatchResponse":
        return cls(Header.decode(d.get("header")), [Event.decode(e) for e in d.get("events") or ()],
                   bool(d.get("created", False)), bool(d.get("canceled", False)),
                   int(d.get("compact_revision", 0)), int(d.get("watch_id", 0)))


def key_range(key: Bytesish, range_end: Bytesish | None = None, prefix: bool = False) -> dict:
    """The key/range_end pair of a request: one key, an explicit range, or every key under a prefix."""
    k = to_bytes(key)
    d: dict = {"key": b64(k)}
    end = prefix_end(k) if prefix else (to_bytes(range_end) if range_end is not None else b"")
    if end:
        d["range_end"] = b64(end)
    return d


def options(d: dict, **opts: Any) -> dict:
    """Add the options that differ from their default (the gateway omits defaults too)."""
    d.update((k, v) for k, v in opts.items() if v)
    return d


def range_body(key: Bytesish, *, range_end: Bytesish | None = None, prefix: bool = False, limit: int = 0,
               revision: int = 0, keys_only: bool = False, count_only: bool = False,
               serializable: bool = False, sort_order: str | None = None,
               sort_target: str | None = None) -> dict:
    return options(key_range(key, range_end, prefix), limit=limit, revision=revision, keys_only=keys_only,
                   count_only=count_only, serializable=serializable,
                   sort_order=sort_order and sort_order.upper(), sort_target=sort_target and sort_target.upper())


def put_body(key: Bytesish, value: Bytesish, *, lease: int = 0, prev_kv: bool = False) -> dict:
    return options({"key": b64(key), "value": b64(value)}, lease=lease, prev_kv=prev_kv)


def delete_body(key: Bytesish, *, range_end: Bytesish | None = None, prefix: bool = False,
                prev_kv: bool = False) -> dict:
    return options(key_range(key, range_end, prefix), prev_kv=prev_kv)


_CMP_OPS = {"=": "EQUAL", "==": "EQUAL", "!=": "NOT_EQUAL", ">": "GREATER", "<": "LESS"}


class Compare:
    """A txn compare; build with Compare.value/version/create_revision/mod_revision/lease."""

    __slots__ = ("body",)

    def __init__(self, target: str, field_name: str, key: Bytesish, op: str, operand: Any,
                 range_end: Bytesish | None = None) -> None:
        self.body: dict = {"key": b64(key), "target": target, "result": _CMP_OPS[op]}
        self.body[field_name] = b64(operand) if target == "VALUE" else int(operand)
        if range_end is not None:
            self.body["range_end"] = b64(range_end)

    @classmethod
    def value(cls, key: Bytesish, op: str, value: Bytesish, range_end: Bytesish | None = None) -> "Compare":
        return cls("VALUE", "value", key, op, value, range_end)

    @classmethod
    def version(cls, key: Bytesish, op: str, version: int, range_end: Bytesish | None = None) -> "Compare":
        return cls("VERSION", "version", key, op, version, range_end)

    @classmethod
    def create_revision(cls, key: Bytesish, op: str, rev: int, range_end: Bytesish | None = None) -> "Compare":
        return cls("CREATE", "create_revision", key, op, rev, range_end)

    @classmethod
    def mod_revision(cls, key: Bytesish, op: str, rev: int, range_end: Bytesish | None = None) -> "Compare":
        return cls("MOD", "mod_revision", key, op, rev, range_end)

    @classmethod
    def lease(cls, key: Bytesish, op: str, lease: int, range_end: Bytesish | None = None) -> "Compare":
        return cls("LEASE", "lease", key, op, lease, range_end)


class Op:
    """A txn operation; build with Op.get/put/delete/txn."""

    __slots__ = ("body",)

    def __init__(self, body: dict) -> None:
        self.body = body

    @classmethod
    def get(cls, key: Bytesish, **kwargs: Any) -> "Op":
        return cls({"request_range": range_body(key, **kwargs)})

    @classmethod
    def put(cls, key: Bytesish, value: Bytesish, lease: int = 0, prev_kv: bool = False) -> "Op":
        return cls({"request_put": put_body(key, value, lease=lease, prev_kv=prev_kv)})

    @classmethod
    def delete(cls, key: Bytesish, range_end: Bytesish | None = None, prefix: bool = False,
               prev_kv: bool = False) -> "Op":
        return cls({"request_delete_range": delete_body(key, range_end=range_end, prefix=prefix, prev_kv=prev_kv)})

    @classmethod
    def txn(cls, compare: list[Compare], success: list["Op"], failure: list["Op"] = ()) -> "Op":
        return cls({"request_txn": txn_body(compare, success, failure)})


def txn_body(compare: list[Compare], success: list[Op], failure: list[Op] = ()) -> dict:
    return {"compare": [c.body for c in compare], "success": [o.body for o in success],
            "failure": [o.body for o in failure]}
