"""PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes' strategic merge patch.

Strategic merge needs to know which lists merge by key; that knowledge is one table keyed by the
list's field name (and, for `ports`, its parent), so pod templates inside workloads reuse it.
"""
from __future__ import annotations

from typing import Any

import jsonpatch
import orjson

from kubeling.api.errors import StatusError, bad_request

NAME_KEYED = {"containers", "initContainers", "ephemeralContainers", "volumes", "env", "imagePullSecrets"}
KEYED = {"volumeMounts": "mountPath", "volumeDevices": "devicePath", "ownerReferences": "uid",
         "hostAliases": "ip", "topologySpreadConstraints": "topologyKey", "resourceClaims": "name",
         "schedulingGates": "name"}
SET_LISTS = {"finalizers"}
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def merge_key(kind_key: tuple[str, str], path: tuple[str, ...]) -> str | None:
    """The strategic-merge key of the list at `path` (field names only), None for atomic lists."""
    field = path[-1]
    if field in NAME_KEYED:
        return "name"
    if field == "ports":
        if kind_key[1] == "Service" and path == ("spec", "ports"):
            return "port"
        if len(path) >= 2 and path[-2] in CONTAINER_LISTS:
            return "containerPort"
        return None
    if field == "conditions" and path == ("status", "conditions") and kind_key[1] != "Job":
        return "type"
    return KEYED.get(field)


def _strip(v: Any) -> Any:
    """Drop directive keys from a value that is inserted as a whole."""
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def strategic_merge(orig: Any, patch: Any, kind_key: tuple[str, str], path: tuple[str, ...] = ()) -> Any:
    if not isinstance(patch, dict):
        return _strip(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return None
    out = dict(orig) if isinstance(orig, dict) else {}
    orders: dict[str, list] = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v if isinstance(v, list) else []
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            drop = v if isinstance(v, list) else [v]
            out[field] = [x for x in out.get(field) or [] if x not in drop]
            continue
        if v is None:
            out.pop(k, None)
            continue
        sub = path + (k,)
        cur = out.get(k)
        if isinstance(v, dict):
            merged = strategic_merge(cur if isinstance(cur, dict) else {}, v, kind_key, sub)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list):
            out[k] = _merge_list(cur, v, kind_key, sub)
        else:
            out[k] = v
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _reorder(out[field], order, merge_key(kind_key, path + (field,)))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(cur: Any, items: list, kind_key: tuple[str, str], path: tuple[str, ...]) -> list:
    key = merge_key(kind_key, path)
    if key is None:
        if path[-1] in SET_LISTS and isinstance(cur, list):
            return cur + [x for x in items if x not in cur]
        return [_strip(x) for x in items if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in items):
        return [_strip(x) for x in items if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    out = list(cur) if isinstance(cur, list) else []
    for item in items:
        if not isinstance(item, dict):
            raise bad_request(f"unable to find api field in struct for the patch: list {path[-1]} needs objects")
        kv = item.get(key)
        idx = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == kv), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(strategic_merge({}, item, kind_key, path))
        else:
            out[idx] = strategic_merge(out[idx], item, kind_key, path)
    return out


def _reorder(items: list, order: list, key: str | None) -> list:
    if key is None:
        rank = {orjson.dumps(v): i for i, v in enumerate(order)}
        ident = lambda x: orjson.dumps(x)  # noqa: E731
    else:
        rank = {orjson.dumps(o.get(key) if isinstance(o, dict) else o): i for i, o in enumerate(order)}
        ident = lambda x: orjson.dumps(x.get(key) if isinstance(x, dict) else x)  # noqa: E731
    listed = sorted((x for x in items if ident(x) in rank), key=lambda x: rank[ident(x)])
    return listed + [x for x in items if ident(x) not in rank]


def merge_patch(orig: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    out = dict(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _load(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise bad_request(f"error decoding patch: {e}") from None


def apply_patch(content_type: str, original: dict, patch_body: bytes, kind_key: tuple[str, str]) -> dict:
    ct = content_type.split(";", 1)[0].strip()
    if ct == "application/json-patch+json":
        ops = _load(patch_body)
        if not isinstance(ops, list):
            raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        try:
            return jsonpatch.JsonPatch(ops).apply(original)
        except jsonpatch.JsonPatchTestFailed as e:
            raise StatusError(422, "Invalid", f"the server rejected our request due to an error in our request: {e}") from None
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, TypeError, IndexError) as e:
            raise StatusError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                              f"{e or type(e).__name__}") from None
    patch = _load(patch_body)
    if not isinstance(patch, dict):
        raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
    if ct == "application/merge-patch+json":
        return merge_patch(original, patch)
    if ct == "application/strategic-merge-patch+json":
        return strategic_merge(original, patch, kind_key)
    raise StatusError(415, "UnsupportedMediaType", f"the patch type {ct} is not supported")
