"""managedFields and server-side apply.

Field ownership is tracked as sets of leaf paths ("f:spec", "f:replicas"; list items by merge key
"k:{...}"; set members "v:..."), encoded as Kubernetes' FieldsV1. Ordinary writes give the fields
they changed to their manager (operation Update); apply merges the applied configuration, drops
fields the manager stopped applying (unless someone else owns them) and reports conflicts with
other managers.
"""
from __future__ import annotations

from typing import Any

import orjson
import yaml

from kubeling.api.errors import StatusError, bad_request
from kubeling.api.patch import SET_LISTS, merge_key, strategic_merge

Path = tuple[str, ...]
SKIP_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
             "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}
ATOMIC = {"selector", "nodeSelectorTerms", "labelSelector"}
MAP_FIELDS = {"labels", "annotations", "data", "binaryData", "stringData", "nodeSelector", "matchLabels",
              "limits", "requests", "capacity", "allocatable", "rollingUpdate"}


def parse_apply_body(body: bytes) -> dict:
    try:
        obj = yaml.safe_load(body)
    except yaml.YAMLError as e:
        raise bad_request(f"error decoding YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(obj, dict):
        raise bad_request("error decoding YAML: the apply configuration must be an object")
    if not obj.get("apiVersion") or not obj.get("kind"):
        raise bad_request("Object 'Kind' is missing in the apply configuration" if not obj.get("kind")
                          else "Object 'apiVersion' is missing in the apply configuration")
    obj.setdefault("metadata", {})
    return obj


def _key_seg(item: dict, key: str) -> str:
    return "k:" + orjson.dumps({key: item.get(key)}).decode()


def leaves(obj: dict, kind_key: tuple[str, str], subresource: str | None = None) -> dict[Path, Any]:
    """Every owned leaf path of obj with its value."""
    out: dict[Path, Any] = {}
    for top, v in obj.items():
        if top in ("apiVersion", "kind"):
            continue
        if (top == "status") != (subresource == "status"):
            continue
        if top == "metadata" and isinstance(v, dict):
            v = {k: x for k, x in v.items() if k not in SKIP_META}
            if not v:
                continue
        _walk(v, (top,), ("f:" + top,), kind_key, out)
    return out


def _walk(v: Any, fields: tuple[str, ...], path: Path, kind_key: tuple[str, str], out: dict[Path, Any]) -> None:
    name = fields[-1]
    if isinstance(v, dict) and v and name not in ATOMIC:
        if name in MAP_FIELDS:
            out[path + (".",)] = None
        for k, x in v.items():
            _walk(x, fields + (k,), path + ("f:" + k,), kind_key, out)
        return
    if isinstance(v, list) and v:
        key = merge_key(kind_key, fields)
        if key and all(isinstance(i, dict) for i in v):
            for item in v:
                seg = _key_seg(item, key)
                out[path + (seg, ".")] = None
                for k, x in item.items():
                    _walk(x, fields + (k,), path + (seg, "f:" + k), kind_key, out)
            return
        if name in SET_LISTS:
            for item in v:
                out[path + ("v:" + orjson.dumps(item).decode(),)] = item
            return
    out[path] = v


def encode(paths: set[Path]) -> dict:
    root: dict = {}
    for p in paths:
        node = root
        for seg in p:
            node = node.setdefault(seg, {})
    return root


def decode(fields: dict | None) -> set[Path]:
    out: set[Path] = set()

    def walk(node: dict, prefix: Path) -> None:
        for seg, child in node.items():
            if isinstance(child, dict) and child:
                walk(child, prefix + (seg,))
            else:
                out.add(prefix + (seg,))
    walk(fields or {}, ())
    return out


def _entries(obj: dict | None) -> list[dict]:
    return [dict(e) for e in ((obj or {}).get("metadata") or {}).get("managedFields") or [] if isinstance(e, dict)]


def _store(obj: dict, entries: list[dict]) -> None:
    entries = [e for e in entries if e.get("fieldsV1")]
    if entries:
        obj.setdefault("metadata", {})["managedFields"] = entries
    else:
        obj.get("metadata", {}).pop("managedFields", None)


def _set_entry(entries: list[dict], manager: str, operation: str, api_version: str, now: str,
               paths: set[Path], subresource: str | None) -> None:
    for e in entries:
        if e.get("manager") == manager and e.get("operation") == operation and e.get("subresource") == subresource \
                and (operation == "Apply" or e.get("apiVersion") == api_version):
            e.update({"apiVersion": api_version, "time": now, "fieldsType": "FieldsV1", "fieldsV1": encode(paths)})
            return
    e = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now,
         "fieldsType": "FieldsV1", "fieldsV1": encode(paths)}
    if subresource:
        e["subresource"] = subresource
    entries.append(e)


def update_managed_fields(old: dict | None, new: dict, manager: str, operation: str, api_version: str, now: str,
                          subresource: str | None = None) -> None:
    """Give `manager` the fields this write changed, taking them from everyone else."""
    kind_key = (new.get("apiVersion", ""), new.get("kind", ""))
    before = leaves(old, kind_key, subresource) if old else {}
    after = leaves(new, kind_key, subresource)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    removed = set(before) - set(after)
    entries = _entries(new) if "managedFields" in (new.get("metadata") or {}) else _entries(old)
    if not changed and not removed:
        _store(new, entries)
        return
    mine: set[Path] = set()
    for e in entries:
        paths = decode(e.get("fieldsV1")) - changed - removed
        if e.get("manager") == manager and e.get("operation") == operation and e.get("subresource") == subresource:
            mine |= paths
        e["fieldsV1"] = encode(paths)
    _set_entry(entries, manager, operation, api_version, now, mine | changed, subresource)
    _store(new, entries)


def _get(obj: Any, path: Path) -> tuple[bool, Any]:
    cur = obj
    for seg in path:
        if seg == ".":
            return True, cur
        if seg.startswith("f:"):
            if not isinstance(cur, dict) or seg[2:] not in cur:
                return False, None
            cur = cur[seg[2:]]
        elif seg.startswith("k:"):
            want = orjson.loads(seg[2:])
            if not isinstance(cur, list):
                return False, None
            cur = next((i for i in cur if isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())), None)
            if cur is None:
                return False, None
        elif seg.startswith("v:"):
            val = orjson.loads(seg[2:])
            return (isinstance(cur, list) and val in cur), val
    return True, cur


def _remove(obj: dict, path: Path) -> None:
    if path and path[-1] == ".":
        return
    parent_ok, parent = _get(obj, path[:-1])
    if not parent_ok:
        return
    seg = path[-1]
    if seg.startswith("f:") and isinstance(parent, dict):
        parent.pop(seg[2:], None)
    elif seg.startswith("k:") and isinstance(parent, list):
        want = orjson.loads(seg[2:])
        parent[:] = [i for i in parent if not (isinstance(i, dict) and all(i.get(k) == v for k, v in want.items()))]
    elif seg.startswith("v:") and isinstance(parent, list):
        val = orjson.loads(seg[2:])
        parent[:] = [i for i in parent if i != val]


def server_side_apply(live: dict | None, applied: dict, manager: str, force: bool, now: str) -> dict:
    """Merge `applied` into `live` for `manager`; 409 on conflicts unless force."""
    api_version = applied.get("apiVersion", "")
    kind_key = (api_version, applied.get("kind", ""))
    applied_leaves = leaves(applied, kind_key)
    entries = _entries(live)
    conflicts: list[tuple[str, Path]] = []
    base = live or {}
    for e in entries:
        if e.get("manager") == manager or e.get("subresource"):
            continue
        for p in decode(e.get("fieldsV1")) & set(applied_leaves):
            if p[-1] == ".":
                continue
            present, value = _get(base, p)
            if present and value != applied_leaves[p]:
                conflicts.append((e["manager"], p))
    if conflicts and not force:
        causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"',
                   "field": _render(p)} for m, p in conflicts]
        lines = [f'conflict with "{m}"' + (f" using {api_version}" if api_version else "") + f": {_render(p)}"
                 for m, p in conflicts]
        n = len(conflicts)
        msg = f"Apply failed with {n} conflict{'s' if n > 1 else ''}: " + "\n".join(lines)
        raise StatusError(409, "Conflict", msg, details={"causes": causes})
    result = strategic_merge(live or {}, applied, kind_key) if live else _plain(applied)
    previous: set[Path] = set()
    for e in entries:
        if e.get("manager") == manager and e.get("operation") == "Apply":
            previous = decode(e.get("fieldsV1"))
    others: set[Path] = set()
    for e in entries:
        if not (e.get("manager") == manager and e.get("operation") == "Apply"):
            others |= decode(e.get("fieldsV1"))
    for p in sorted(previous - set(applied_leaves) - others, key=len, reverse=True):
        _remove(result, p)
    mine = set(applied_leaves)
    taken = {p for _, p in conflicts}
    for e in entries:
        if e.get("manager") == manager and e.get("operation") == "Apply":
            continue
        if taken:
            e["fieldsV1"] = encode(decode(e.get("fieldsV1")) - taken)
    _set_entry(entries, manager, "Apply", api_version, now, mine, None)
    result.setdefault("metadata", {})
    _store(result, entries)
    return result


def _plain(obj: dict) -> dict:
    return orjson.loads(orjson.dumps(obj))


def _render(p: Path) -> str:
    out = ""
    for seg in p:
        if seg.startswith("f:"):
            out += "." + seg[2:]
        elif seg.startswith("k:"):
            out += "[" + ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in orjson.loads(seg[2:]).items()) + "]"
        elif seg.startswith("v:"):
            out += "[=" + seg[2:] + "]"
    return out
