"""Decoding Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into the
same dicts kubectl would have sent as JSON.

The envelope is the 4 magic bytes `k8s\\0` and a runtime.Unknown {typeMeta{apiVersion,kind}, raw,
contentEncoding, contentType}; `raw` is the object, decoded with the generated schema table
(protobuf_schema.py, from the descriptors of Kubernetes 1.32).
"""
from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import orjson

from kubeling.api.protobuf_schema import KINDS, MESSAGES
from kubeling.api.wire import fields

MAGIC = b"k8s\x00"
META = "k8s.io.apimachinery.pkg.apis.meta.v1."
TIME = {META + "Time", META + "MicroTime"}
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
RAW = "k8s.io.apimachinery.pkg.runtime.RawExtension"
DURATION = META + "Duration"
FIELDS_V1 = META + "FieldsV1"
# Go pointer scalars: a zero value on the wire was set explicitly and must survive (JSON sends it).
POINTER_SCALARS = {
    "replicas", "minReplicas", "parallelism", "completions", "backoffLimit", "backoffLimitPerIndex",
    "maxFailedIndexes", "activeDeadlineSeconds", "terminationGracePeriodSeconds", "progressDeadlineSeconds",
    "revisionHistoryLimit", "automountServiceAccountToken", "readOnlyRootFilesystem", "runAsUser", "runAsGroup",
    "runAsNonRoot", "privileged", "allowPrivilegeEscalation", "defaultMode", "mode", "optional", "suspend",
    "immutable", "enableServiceLinks", "shareProcessNamespace", "hostUsers", "ttlSecondsAfterFinished",
    "targetCPUUtilizationPercentage", "allocateLoadBalancerNodePorts", "manualSelector", "fsGroup",
    "expirationSeconds", "priority", "deletionGracePeriodSeconds", "gracePeriodSeconds", "orphanDependents",
    "ready", "serving", "terminating", "leaseDurationSeconds", "leaseTransitions", "averageUtilization",
    "stdin", "stdinOnce", "tty", "controller", "blockOwnerDeletion", "selectPolicy", "stabilizationWindowSeconds",
    "podFailurePolicy", "minReadySeconds",
}


def decode_object(body: bytes) -> dict:
    """Envelope -> JSON-shaped object with apiVersion and kind; ValueError for anything malformed."""
    if not body.startswith(MAGIC):
        raise ValueError("missing the protobuf envelope prefix 'k8s\\x00'")
    try:
        api_version = kind = ""
        raw = b""
        encoding = ""
        for num, wt, val in fields(body[4:]):
            if num == 1 and wt == 2:
                for n2, w2, v2 in fields(val):   # type: ignore[arg-type]
                    if n2 == 1 and w2 == 2:
                        api_version = v2.decode()   # type: ignore[union-attr]
                    elif n2 == 2 and w2 == 2:
                        kind = v2.decode()   # type: ignore[union-attr]
            elif num == 2 and wt == 2:
                raw = val   # type: ignore[assignment]
            elif num == 3 and wt == 2:
                encoding = val.decode()   # type: ignore[union-attr]
        if encoding:
            raise ValueError(f"unsupported content encoding {encoding!r}")
        message = KINDS.get((api_version, kind))
        if message is None:
            raise ValueError(f"no protobuf schema for kind {kind!r} in {api_version!r}")
        obj = _message(raw, message)
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8 in a string field: {e}") from None
    except RecursionError:
        raise ValueError("message nesting too deep") from None
    return {"apiVersion": api_version, "kind": kind, **obj}


def _time(raw: bytes) -> str | None:
    secs = nanos = 0
    for num, wt, val in fields(raw):
        if num == 1 and wt == 0:
            secs = _signed(val)   # type: ignore[arg-type]
        elif num == 2 and wt == 0:
            nanos = val   # type: ignore[assignment]
    if secs == 0 and nanos == 0:
        return None
    t = dt.datetime.fromtimestamp(secs, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _special(raw: bytes, typ: str) -> Any:
    if typ in TIME:
        return _time(raw)
    if typ == QUANTITY:
        return next((v.decode() for n, wt, v in fields(raw) if n == 1 and wt == 2), "")   # type: ignore[union-attr]
    if typ == INT_OR_STRING:
        kind, ival, sval = 0, 0, ""
        for n, wt, v in fields(raw):
            if n == 1 and wt == 0:
                kind = v   # type: ignore[assignment]
            elif n == 2 and wt == 0:
                ival = _signed(v) if isinstance(v, int) else 0
            elif n == 3 and wt == 2:
                sval = v.decode()   # type: ignore[union-attr]
        return sval if kind == 1 else ival
    if typ == RAW:
        data = next((v for n, wt, v in fields(raw) if n == 1 and wt == 2), b"")
        try:
            return orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            raise ValueError("RawExtension is not JSON") from None
    if typ == FIELDS_V1:
        data = next((v for n, wt, v in fields(raw) if n == 1 and wt == 2), b"")
        return orjson.loads(data) if data else {}
    if typ == DURATION:
        ns = next((_signed(v) for n, wt, v in fields(raw) if n == 1 and wt == 0), 0)   # type: ignore[arg-type]
        return f"{ns / 1e9:g}s"
    return _message(raw, typ)


def _scalar(typ: str, wt: int, val: int | bytes) -> Any:
    if typ == "s":
        if wt != 2:
            raise ValueError("string field with a non length-delimited wire type")
        return val.decode()   # type: ignore[union-attr]
    if typ == "b":
        if wt != 2:
            raise ValueError("bytes field with a non length-delimited wire type")
        return base64.b64encode(val).decode()   # type: ignore[arg-type]
    if wt != 0 and typ in ("i", "u", "z"):
        raise ValueError("integer field with a non-varint wire type")
    if typ == "u":
        return bool(val)
    if typ == "z":
        return (val >> 1) ^ -(val & 1)   # type: ignore[operator]
    if typ in ("d", "f"):
        import struct
        return struct.unpack("<d" if wt == 1 else "<f", val.to_bytes(8 if wt == 1 else 4, "little"))[0]  # type: ignore[union-attr]
    return _signed(val)   # type: ignore[arg-type]


def _value(typ: str, wt: int, val: int | bytes) -> Any:
    if len(typ) > 1:
        if wt != 2:
            raise ValueError(f"message field {typ} with wire type {wt}")
        return _special(val, typ)   # type: ignore[arg-type]
    return _scalar(typ, wt, val)


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == 0 and not isinstance(v, bool) or v is False or v == {} or v == []


def _message(raw: bytes, message: str) -> dict:
    schema = MESSAGES.get(message)
    if schema is None:
        raise ValueError(f"no protobuf schema for {message}")
    out: dict[str, Any] = {}
    for num, wt, val in fields(raw):
        spec = schema.get(num)
        if spec is None:
            continue   # unknown field: skipped, as protobuf does
        name, typ, repeated, nullable = spec
        if typ.startswith("map:"):
            vtyp = typ[4:]
            key, value = "", None
            for n2, w2, v2 in fields(val):   # type: ignore[arg-type]
                if n2 == 1:
                    key = _scalar("s", w2, v2)
                elif n2 == 2:
                    value = _value(vtyp, w2, v2)
            if value is None:
                value = "" if vtyp in ("s", "b") else (None if len(vtyp) > 1 else 0)
            out.setdefault(name, {})[key] = value
            continue
        value = _value(typ, wt, val)
        if repeated:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    for name, typ, repeated, nullable in schema.values():
        if name not in out or repeated or typ.startswith("map:"):
            continue
        v = out[name]
        if len(typ) == 1:
            if _empty(v) and name not in POINTER_SCALARS:
                del out[name]
        elif v is None or (_empty(v) and not nullable):
            del out[name]
    return out
