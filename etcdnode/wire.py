"""etcd's v3 JSON gateway format: request decoding into log ops, result encoding.

Shapes follow grpc-gateway as real etcd 3.4 serves them: bytes as base64, int64 as
strings, fields at their default value omitted.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from . import errors
from .errors import EtcdError
from .mvcc import CREATE, KEY, LEASE, MOD, VALUE, VERSION, RangeReq

SORT_ORDER = {"NONE": 0, "ASCEND": 1, "DESCEND": 2}
SORT_TARGET = {"KEY": 0, "VERSION": 1, "CREATE": 2, "MOD": 3, "VALUE": 4}
CMP_RESULT = ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"]
CMP_TARGET = ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"]
CMP_FIELD = {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision", "VALUE": "value",
             "LEASE": "lease"}

_B64_STD = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_B64_CHAR = re.compile(r"[A-Za-z0-9+/_-]")


def bad(message: str) -> EtcdError:
    return EtcdError(errors.INVALID_ARGUMENT, message)


def parse_json(body: bytes) -> dict:
    if not body.strip():
        return {}
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        pos = getattr(e, "pos", 0) or 0
        ch = body[pos : pos + 1].decode("latin-1") if pos < len(body) else ""
        if ch:
            raise bad(f"invalid character {ch!r} looking for beginning of value") from None
        raise bad("unexpected end of JSON input") from None
    if not isinstance(obj, dict):
        raise bad(f"json: cannot unmarshal {type(obj).__name__} into Go value of type object")
    return obj


def b64d(value: Any) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise bad("json: cannot unmarshal non-string into Go value of type []byte")
    try:
        if _B64_STD.fullmatch(value):
            return base64.b64decode(value, validate=True)
        if _B64_URL.fullmatch(value):
            return base64.urlsafe_b64decode(value)
    except (binascii.Error, ValueError):
        pass
    pos = next((i for i, ch in enumerate(value) if not _B64_CHAR.match(ch)), len(value))
    raise bad(f"illegal base64 data at input byte {pos}")


def b64e(value: bytes) -> str:
    return base64.b64encode(value).decode()


def i64(obj: dict, name: str) -> int:
    v = obj.get(name)
    if v is None or v == "":
        return 0
    if isinstance(v, bool):
        raise bad(f"json: cannot unmarshal bool into Go value of type int64 ({name})")
    try:
        return int(v)
    except (TypeError, ValueError):
        raise bad(f'strconv.ParseInt: parsing "{v}": invalid syntax') from None


def flag(obj: dict, name: str) -> bool:
    v = obj.get(name, False)
    if not isinstance(v, bool):
        raise bad(f"json: cannot unmarshal {type(v).__name__} into Go value of type bool ({name})")
    return v


def enum(obj: dict, name: str, values: dict[str, int] | list[str], go_type: str) -> int:
    v = obj.get(name)
    if v is None:
        return 0
    names = values if isinstance(values, dict) else {n: i for i, n in enumerate(values)}
    if isinstance(v, str) and v in names:
        return names[v]
    if isinstance(v, int) and not isinstance(v, bool) and v in names.values():
        return v
    raise bad(f'unknown value "{v}" for enum etcdserverpb.{go_type}')


def need_key(key: bytes) -> bytes:
    if not key:
        raise errors.empty_key()
    return key


# ----- requests -> ops -----
def range_req(obj: dict) -> RangeReq:
    return RangeReq(
        key=need_key(b64d(obj.get("key"))),
        range_end=b64d(obj.get("range_end")),
        limit=i64(obj, "limit"),
        revision=i64(obj, "revision"),
        keys_only=flag(obj, "keys_only"),
        count_only=flag(obj, "count_only"),
        sort_order=enum(obj, "sort_order", SORT_ORDER, "RangeRequest_SortOrder"),
        sort_target=enum(obj, "sort_target", SORT_TARGET, "RangeRequest_SortTarget"),
        serializable=flag(obj, "serializable"),
        min_mod_revision=i64(obj, "min_mod_revision"),
        max_mod_revision=i64(obj, "max_mod_revision"),
        min_create_revision=i64(obj, "min_create_revision"),
        max_create_revision=i64(obj, "max_create_revision"),
    )


def put_op(obj: dict) -> tuple:
    return ("put", need_key(b64d(obj.get("key"))), b64d(obj.get("value")), i64(obj, "lease"),
            flag(obj, "prev_kv"), flag(obj, "ignore_value"), flag(obj, "ignore_lease"))


def delete_op(obj: dict) -> tuple:
    return ("del", need_key(b64d(obj.get("key"))), b64d(obj.get("range_end")), flag(obj, "prev_kv"))


def txn_op(obj: dict, max_ops: int) -> tuple:
    compares = obj.get("compare") or []
    success = obj.get("success") or []
    failure = obj.get("failure") or []
    if not all(isinstance(x, list) for x in (compares, success, failure)):
        raise bad("json: cannot unmarshal object into Go value of type []*etcdserverpb.RequestOp")
    if len(compares) > max_ops or len(success) > max_ops or len(failure) > max_ops:
        raise errors.too_many_ops()
    return ("txn", [compare(c) for c in compares], [request_op(o, max_ops) for o in success],
            [request_op(o, max_ops) for o in failure])


def compare(obj: Any) -> tuple:
    if not isinstance(obj, dict):
        raise bad("json: cannot unmarshal into Go value of type etcdserverpb.Compare")
    result = CMP_RESULT[enum(obj, "result", CMP_RESULT, "Compare_CompareResult")]
    target = CMP_TARGET[enum(obj, "target", CMP_TARGET, "Compare_CompareTarget")]
    key = need_key(b64d(obj.get("key")))
    field = CMP_FIELD[target]
    operand = b64d(obj.get(field)) if target == "VALUE" else i64(obj, field)
    return (target, result, key, b64d(obj.get("range_end")), operand)


def request_op(obj: Any, max_ops: int) -> tuple:
    if not isinstance(obj, dict):
        raise bad("json: cannot unmarshal into Go value of type etcdserverpb.RequestOp")
    if "request_range" in obj:
        return ("range", range_req(obj["request_range"] or {}))
    if "request_put" in obj:
        return put_op(obj["request_put"] or {})
    if "request_delete_range" in obj:
        return delete_op(obj["request_delete_range"] or {})
    if "request_txn" in obj:
        return txn_op(obj["request_txn"] or {}, max_ops)
    raise errors.key_not_found()  # what etcd answers for an empty or unknown RequestOp


def op_size(op: tuple) -> int:
    """Approximate protobuf size of a request, for --max-request-bytes."""
    kind = op[0]
    if kind == "put":
        return len(op[1]) + len(op[2]) + 16
    if kind == "del":
        return len(op[1]) + len(op[2]) + 8
    if kind == "range":
        return len(op[1].key) + len(op[1].range_end) + 16
    if kind == "txn":
        return sum(len(c[2]) + len(c[3]) + (len(c[4]) if isinstance(c[4], bytes) else 8) for c in op[1]) + sum(
            op_size(o) for o in op[2]) + sum(op_size(o) for o in op[3]) + 8
    return 16


def is_read_only(op: tuple) -> bool:
    if op[0] == "range":
        return True
    if op[0] == "txn":
        return all(is_read_only(o) for o in op[2]) and all(is_read_only(o) for o in op[3])
    return False


# ----- results -> JSON-ready dicts -----
def kv(rec: tuple, keys_only: bool = False) -> dict:
    d: dict = {"key": b64e(rec[KEY])}
    if rec[CREATE]:
        d["create_revision"] = str(rec[CREATE])
    if rec[MOD]:
        d["mod_revision"] = str(rec[MOD])
    if rec[VERSION]:
        d["version"] = str(rec[VERSION])
    if rec[VALUE] and not keys_only:
        d["value"] = b64e(rec[VALUE])
    if rec[LEASE]:
        d["lease"] = str(rec[LEASE])
    return d


def range_result(res: tuple, req: RangeReq, header: dict) -> dict:
    _, _, recs, count, more = res
    d: dict = {"header": header}
    if recs:
        d["kvs"] = [kv(r, req.keys_only) for r in recs]
    if more:
        d["more"] = True
    if count:
        d["count"] = str(count)
    return d


def put_result(res: tuple, header: dict) -> dict:
    d: dict = {"header": header}
    if res[2] is not None:
        d["prev_kv"] = kv(res[2])
    return d


def delete_result(res: tuple, header: dict) -> dict:
    _, _, deleted, prevs = res
    d: dict = {"header": header}
    if deleted:
        d["deleted"] = str(deleted)
    if prevs:
        d["prev_kvs"] = [kv(r) for r in prevs]
    return d


def txn_result(res: tuple, op: tuple, header: dict) -> dict:
    _, rev, succeeded, responses = res
    d: dict = {"header": header}
    if succeeded:
        d["succeeded"] = True
    branch = op[2] if succeeded else op[3]
    if responses:
        inner = {"revision": str(rev)}
        d["responses"] = [_inner(r, o, inner) for r, o in zip(responses, branch)]
    return d


def _inner(res: tuple, op: tuple, header: dict) -> dict:
    kind = res[0]
    if kind == "range":
        return {"response_range": range_result(res, op[1], header)}
    if kind == "put":
        return {"response_put": put_result(res, header)}
    if kind == "del":
        return {"response_delete_range": delete_result(res, header)}
    return {"response_txn": txn_result(res, op, header)}


def error_body(e: EtcdError) -> bytes:
    return orjson.dumps({"error": e.message, "message": e.message, "code": e.code})
