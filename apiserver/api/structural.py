"""Structural schemas of CustomResourceDefinitions: validating and defaulting custom objects, and the
checks a CRD's own schema must pass (upstream's apiextensions-apiserver with kube-openapi's validator).

Messages are kube-openapi's as the apiserver wraps them in field errors, e.g.
`spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`.
Pruning of unknown fields is schema.unknown_fields' job; CEL rules (x-kubernetes-validations) are not
evaluated yet.
"""
from __future__ import annotations

import copy
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from kubeling.api.errors import Cause, invalid, not_supported, required

Json = dict[str, Any]
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _is(v: Any, typ: str) -> bool:
    if typ == "integer":
        return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer()
    if typ == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, _TYPES.get(typ, object))


@lru_cache(maxsize=256)
def _pattern(p: str) -> re.Pattern:
    return re.compile(p)


def _format_ok(fmt: str, v: Any) -> bool:
    if not isinstance(v, str):
        return True
    try:
        if fmt == "date-time":
            datetime.fromisoformat(v.replace("Z", "+00:00"))
        elif fmt == "date":
            datetime.strptime(v, "%Y-%m-%d")
        elif fmt == "uuid":
            return re.fullmatch(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}", v) is not None
        elif fmt == "ipv4":
            parts = v.split(".")
            return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)
    except ValueError:
        return False
    return True


def validate(schema: Json, obj: Any, path: str = "") -> list[Cause]:
    """Field errors of obj against schema (the root's apiVersion, kind and metadata are the apiserver's)."""
    out: list[Cause] = []
    _check(schema, obj, path, out, root=not path)
    return out


def _child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(s: Json, v: Any, path: str, out: list[Cause], root: bool = False) -> None:
    where = path or "<root>"
    if v is None:
        if s.get("nullable") or not s.get("type") and not s.get("x-kubernetes-int-or-string"):
            return
        out.append(invalid(path, "null", f"{where} in body must be of type {s.get('type', 'string')}: \"null\""))
        return
    if s.get("x-kubernetes-int-or-string"):
        if not (_is(v, "integer") or isinstance(v, str)):
            out.append(invalid(path, _type_name(v), f"{where} in body must be of type integer,string: \"{_type_name(v)}\""))
            return
    elif (typ := s.get("type")) and not _is(v, typ):
        out.append(invalid(path, _type_name(v), f"{where} in body must be of type {typ}: \"{_type_name(v)}\""))
        return
    if "enum" in s and v not in s["enum"]:
        out.append(not_supported(path, v, s["enum"]))
    if isinstance(v, str):
        _check_string(s, v, path, where, out)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        _check_number(s, v, path, where, out)
    elif isinstance(v, list):
        _check_array(s, v, path, where, out)
    elif isinstance(v, dict):
        _check_object(s, v, path, out, root)


def _check_string(s: Json, v: str, path: str, where: str, out: list[Cause]) -> None:
    if "minLength" in s and len(v) < s["minLength"]:
        out.append(invalid(path, v, f"{where} in body should be at least {s['minLength']} chars long"))
    if "maxLength" in s and len(v) > s["maxLength"]:
        out.append(Cause("FieldValueTooLong", f"Too long: may not be more than {s['maxLength']} bytes", path))
    if "pattern" in s and not _pattern(s["pattern"]).search(v):
        out.append(invalid(path, v, f"{where} in body should match '{s['pattern']}'"))
    if (fmt := s.get("format")) and not _format_ok(fmt, v):
        out.append(invalid(path, v, f"{where} in body must be of type {fmt}: \"{v}\""))


def _check_number(s: Json, v: float, path: str, where: str, out: list[Cause]) -> None:
    if "minimum" in s:
        lo, excl = s["minimum"], s.get("exclusiveMinimum")
        if v < lo or excl and v == lo:
            word = "greater than" if excl else "greater than or equal to"
            out.append(invalid(path, v, f"{where} in body should be {word} {lo}"))
    if "maximum" in s:
        hi, excl = s["maximum"], s.get("exclusiveMaximum")
        if v > hi or excl and v == hi:
            word = "less than" if excl else "less than or equal to"
            out.append(invalid(path, v, f"{where} in body should be {word} {hi}"))
    if (m := s.get("multipleOf")) and (v / m) != int(v / m):
        out.append(invalid(path, v, f"{where} in body should be a multiple of {m}"))


def _check_array(s: Json, v: list, path: str, where: str, out: list[Cause]) -> None:
    if "minItems" in s and len(v) < s["minItems"]:
        out.append(invalid(path, len(v), f"{where} in body should have at least {s['minItems']} items"))
    if "maxItems" in s and len(v) > s["maxItems"]:
        out.append(Cause("FieldValueTooMany", f"Too many: {len(v)}: must have at most {s['maxItems']} items", path))
    if s.get("uniqueItems") or s.get("x-kubernetes-list-type") == "set":
        seen: list = []
        for i, item in enumerate(v):
            if item in seen:
                out.append(Cause("FieldValueDuplicate", f"Duplicate value: {_json(item)}", f"{path}[{i}]"))
            seen.append(item)
    items = s.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(v):
            _check(items, item, f"{path}[{i}]", out)


def _check_object(s: Json, v: dict, path: str, out: list[Cause], root: bool) -> None:
    props = s.get("properties") or {}
    for name in s.get("required") or []:
        if name not in v and not (root and name in ("apiVersion", "kind", "metadata")):
            out.append(required(_child_path(path, name), ""))
    if "minProperties" in s and len(v) < s["minProperties"]:
        out.append(invalid(path, len(v), f"{path or '<root>'} in body should have at least {s['minProperties']} properties"))
    if "maxProperties" in s and len(v) > s["maxProperties"]:
        out.append(Cause("FieldValueTooMany", f"Too many: {len(v)}: must have at most {s['maxProperties']} items", path))
    extra = s.get("additionalProperties")
    for k, item in v.items():
        if root and k in ("apiVersion", "kind", "metadata"):
            continue
        sub = props.get(k)
        if sub is None and isinstance(extra, dict):
            sub = extra
        if sub is not None:
            _check(sub, item, _child_path(path, k), out)


def _json(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else str(v)


def apply_defaults(schema: Json, obj: Any) -> None:
    """Fill `default`s of missing properties, recursively where the parent exists (as on upstream's writes)."""
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        for k, sub in props.items():
            if k not in obj and "default" in sub:
                obj[k] = copy.deepcopy(sub["default"])
        extra = schema.get("additionalProperties")
        for k, v in obj.items():
            sub = props.get(k) or (extra if isinstance(extra, dict) else None)
            if sub:
                apply_defaults(sub, v)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for v in obj:
            apply_defaults(schema["items"], v)


def structural_errors(schema: Json, path: str) -> list[Cause]:
    """What makes a CRD version's openAPIV3Schema non-structural (the common cases)."""
    out: list[Cause] = []
    if schema.get("type") != "object":
        out.append(required(f"{path}.type", "must be object at the root") if not schema.get("type")
                   else invalid(f"{path}.type", schema["type"], "must be object at the root"))
    _structural(schema, path, out)
    return out


def _structural(s: Json, path: str, out: list[Cause]) -> None:
    for name, sub in (s.get("properties") or {}).items():
        p = f"{path}.properties[{name}]"
        if not isinstance(sub, dict):
            out.append(invalid(p, sub, "must be an object"))
            continue
        if not sub.get("type") and not sub.get("x-kubernetes-int-or-string") \
                and not sub.get("x-kubernetes-preserve-unknown-fields"):
            out.append(required(f"{p}.type", "must not be empty for specified object fields"))
        _structural(sub, p, out)
    if isinstance(s.get("items"), dict):
        _structural(s["items"], f"{path}.items", out)
    if isinstance(s.get("additionalProperties"), dict):
        _structural(s["additionalProperties"], f"{path}.additionalProperties", out)
    if s.get("properties") and isinstance(s.get("additionalProperties"), dict):
        out.append(Cause("FieldValueForbidden", "Forbidden: additionalProperties and properties are mutual exclusive",
                         f"{path}.additionalProperties"))
