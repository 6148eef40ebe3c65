"""Per-kind behaviour the generic handler delegates to (defaults, validation, conversion, tables, patches).

The pure logic lives in kubeling.api; this module only adapts it to the handler.
"""
from __future__ import annotations

import re
import time
from typing import Any

from apiserver.api import conversion, defaults, validation
from kubeling.api.errors import bad_request, invalid_error
from kubeling.api.resources import Resource, storage_resource



_now: list = [0, ""]


def now_rfc3339() -> str:
    """Second-resolution RFC 3339 'now', formatted once per second (it is on every write)."""
    t = int(time.time())
    if t != _now[0]:
        _now[0], _now[1] = t, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    return _now[1]


def from_storage(r: Resource, obj: dict) -> dict:
    """The served form: stored objects carry their version's zero fields already, a converted view
    gets its own (autoscaling/v1 requires `status.currentReplicas`, v2 omits a zero one)."""
    if r.converted:
        out = conversion.from_storage(r, obj)
        defaults.fill_zero_fields(r.api_version, r.kind, out)
        return out
    return obj


def to_storage(r: Resource, obj: dict) -> dict:
    if r.converted:
        return conversion.to_storage(r, obj)
    return obj


def apply_defaults(r: Resource, obj: dict) -> None:
    """Objects are defaulted and validated in their storage version."""
    defaults.apply_defaults(storage_resource(r), obj)


def validate(r: Resource, obj: dict, old: dict | None) -> None:
    causes = validation.validate(storage_resource(r), obj, old)
    if causes:
        raise invalid_error(r.group, r.kind, obj.get("metadata", {}).get("name", ""), causes)




def prune_unknown(r: Resource, obj: dict, mode: str) -> list[str]:
    """Drop fields the schema does not know (Kubernetes' decoder ignores them); Strict rejects them."""
    from apiserver.api import openapi
    unknown = openapi.unknown_fields(r.api_version, r.kind, obj)
    if not unknown:
        return []
    if mode == "Strict":
        msgs = [f'unknown field "{p.lstrip(".")}"' for p in unknown]
        raise bad_request("strict decoding error: " + ", ".join(msgs))
    for p in unknown:
        _delete_path(obj, p)
    return [f'unknown field "{p.lstrip(".")}"' for p in unknown]


def _delete_path(obj: Any, path: str) -> None:
    """Remove `.a.b[2].c`; keys may themselves contain dots or brackets, so match real keys."""
    _del_key(obj, path[1:] if path.startswith(".") else path)


def _del_key(cur: Any, rest: str) -> bool:
    if not isinstance(cur, dict):
        return False
    if rest in cur:
        cur.pop(rest)
        return True
    for k in sorted(cur, key=len, reverse=True):
        if rest.startswith(k) and len(rest) > len(k) and rest[len(k)] in ".[" and _del_next(cur[k], rest[len(k):]):
            return True
    return False


def _del_next(cur: Any, rest: str) -> bool:
    if rest.startswith("."):
        return _del_key(cur, rest[1:])
    m = re.match(r"\[(\d+)\]", rest)
    if m and isinstance(cur, list) and int(m.group(1)) < len(cur) and m.end() < len(rest):
        return _del_next(cur[int(m.group(1))], rest[m.end():])
    return False
