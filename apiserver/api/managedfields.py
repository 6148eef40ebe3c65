"""metadata.managedFields and server-side apply, after sigs.k8s.io/structured-merge-diff as the
apiserver runs it.

Ownership is a set of paths; a path is a tuple of FieldsV1 path elements: `f:<field>`, `k:<json of
the item's key fields>` for list-map items, `v:<json>` for set members. A path in the set is a
*member* (owned); prefixes that only lead to members are not. FieldsV1 is that set as a trie, with
`.` marking a member that also has owned children.

* Update/create/patch (`update_managed_fields`): the fields the write added or changed (compared to
  the old object, or to the kind's zero value on create) go to the writer's Update entry and leave
  everyone else's; removed fields leave every entry.
* Apply (`server_side_apply`): the applied configuration is merged into the live object (maps
  merge, list-maps merge per key, everything else is replaced), fields the manager applied last
  time but no longer applies and no one else owns are removed, changed fields owned by someone
  else are conflicts (409) unless forced, and the manager's Apply entry becomes exactly the
  configuration's field set.

Types come from patch.py's shapes, so list-map keys, sets and atomic structs/maps are the same ones
strategic merge uses.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from kubeling.api.errors import StatusError, bad_request
from apiserver.api.patch import KEY_DEFAULTS, Shape, root_shape, malformed_patch

Path = tuple[str, ...]
ABSENT: Any = object()
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Metadata the server sets: never owned (the stripMetaManager's list, plus deletion bookkeeping).
NOT_OWNED_META = frozenset({"name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation",
                            "managedFields", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"})
STRIP: frozenset[Path] = frozenset({("f:metadata",)} | {("f:metadata", "f:" + f) for f in NOT_OWNED_META})

# Fields present in a Go zero value of the type (non-pointer structs, fields without omitempty).
# A create is diffed against that zero object, so these get no `.` of their own in FieldsV1
# (`f:spec`, `f:template`, `f:containers`) while omitempty fields that appear do (`f:labels: {.: {}}`).
ZERO_FIELDS: dict[str, tuple[str, ...]] = {
    "ObjectMeta": ("creationTimestamp",),
    "DeploymentSpec": ("selector", "template", "strategy"),
    "ReplicaSetSpec": ("selector", "template"),
    "DaemonSetSpec": ("selector", "template", "updateStrategy"),
    "StatefulSetSpec": ("selector", "template", "updateStrategy"),
    "JobSpec": ("template",), "CronJobSpec": ("jobTemplate",), "JobTemplateSpec": ("metadata", "spec"),
    "PodTemplateSpec": ("metadata", "spec"), "PodTemplate": ("template",), "PodSpec": ("containers",),
    "PersistentVolumeClaimSpec": ("resources",), "ServiceStatus": ("loadBalancer",),
    "Event": ("involvedObject", "source"), "HorizontalPodAutoscalerSpec": ("scaleTargetRef",),
    "EndpointSlice": ("endpoints",),
}


class TypeError_(Exception):
    """A value that does not fit its schema (e.g. a list-map item without its key)."""


# ---------------------------------------------------------------------------------------------
# Paths and FieldsV1
# ---------------------------------------------------------------------------------------------

def _json(v: Any) -> str:
    return orjson.dumps(v).decode()


def _item_pe(shape: Shape, item: Any) -> str:
    """Path element of a list item: `k:{...}` (key fields sorted, defaults filled) or `v:<json>`."""
    if shape.relation == "set":
        return "v:" + _json(item)
    if item is None:
        raise TypeError_("associative list with keys may not have a null element")
    if not isinstance(item, dict):
        raise TypeError_("associative list with keys may not have non-map elements")
    key: dict[str, Any] = {}
    for name in sorted(shape.map_keys):
        if name in item:
            key[name] = item[name]
        elif (shape.item().short, name) in KEY_DEFAULTS:
            key[name] = KEY_DEFAULTS[(shape.item().short, name)]
        else:
            raise TypeError_(f'associative list with keys has an element that omits key field "{name}" '
                             "(and doesn't have default value)")
    return "k:" + _json(key)


def render(path: Path) -> str:
    """A path as structured-merge-diff prints it: .spec.containers[name="nginx"].image"""
    out = []
    for seg in path:
        kind, rest = seg[:2], seg[2:]
        if kind == "f:":
            out.append("." + rest)
        elif kind == "k:":
            out.append("[" + ",".join(f"{k}={_json(v)}" for k, v in orjson.loads(rest).items()) + "]")
        elif kind == "v:":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


def encode_fields(paths: set[Path]) -> dict:
    """Set of member paths -> FieldsV1 trie (sorted keys, `.` for members that have children)."""
    trie: dict = {}
    for p in paths:
        node = trie
        for seg in p:
            node = node.setdefault(seg, {})

    def emit(node: dict, prefix: Path) -> dict:
        out: dict = {".": {}} if node and prefix in paths else {}
        for seg in sorted(node):
            out[seg] = emit(node[seg], prefix + (seg,))
        return out
    return emit(trie, ())


def decode_fields(fields: Any) -> set[Path]:
    out: set[Path] = set()

    def walk(node: dict, prefix: Path) -> None:
        for seg, child in node.items():
            if seg == ".":
                out.add(prefix)
            elif isinstance(child, dict) and child:
                walk(child, prefix + (seg,))
            else:
                out.add(prefix + (seg,))
    if isinstance(fields, dict):
        walk(fields, ())
    return out


# ---------------------------------------------------------------------------------------------
# Typed walks: field set, compare, merge, remove
# ---------------------------------------------------------------------------------------------

def _form(shape: Shape, *values: Any) -> str:
    """How a value is walked: 'map' (granular fields), 'list' (set or list-map) or 'leaf' (atomic)."""
    f = shape.form
    if f == "list":
        kind = "leaf" if shape.relation == "atomic" else "list"
    elif f in ("struct", "map"):
        kind = "leaf" if shape.atomic else "map"
    elif f == "any" and not shape.atomic:
        present = next((v for v in values if v is not ABSENT and v is not None), None)
        kind = "map" if isinstance(present, dict) else "leaf"
    else:
        kind = "leaf"
    if kind != "leaf":
        want = dict if kind == "map" else list
        if any(v is not ABSENT and v is not None and not isinstance(v, want) for v in values):
            return "leaf"   # a value of the wrong type: compare it whole
    return kind


def field_set(obj: Any, shape: Shape, path: Path = ()) -> set[Path]:
    """ToFieldSet: every leaf, list item and granular-map entry of obj (raises TypeError_)."""
    out: set[Path] = set()
    _to_set(obj, shape, path, out)
    return out


def _to_set(v: Any, shape: Shape, path: Path, out: set[Path]) -> None:
    form = _form(shape, v)
    if form == "leaf":
        out.add(path)
    elif form == "map" and isinstance(v, dict):
        for k, x in v.items():
            p = path + ("f:" + k,)
            _to_set(x, shape.field(k), p, out)
            if not shape.has_field(k):
                out.add(p)
    elif form == "list" and isinstance(v, list):
        seen: set[str] = set()
        for i, item in enumerate(v):
            try:
                pe = _item_pe(shape, item)
            except TypeError_ as e:
                raise TypeError_(f"{render(path)}: element {i}: {e}") from None
            if pe in seen:
                raise TypeError_(f"{render(path)}: duplicate entries for key {render((pe,))}")
            seen.add(pe)
            _to_set(item, shape.item(), path + (pe,), out)
            out.add(path + (pe,))


def _items(shape: Shape, items: list) -> dict[str, Any]:
    """List items by path element; items without a usable key are not tracked (live data is lenient)."""
    out: dict[str, Any] = {}
    for item in items:
        try:
            out.setdefault(_item_pe(shape, item), item)
        except TypeError_:
            pass
    return out


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_eq, a, b))
    return not isinstance(b, (dict, list)) and a == b


@dataclass
class Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)


def compare(lhs: Any, rhs: Any, shape: Shape) -> Comparison:
    """Fields rhs added, modified and removed relative to lhs. A map or list that appears or
    disappears as a whole is itself added/removed (that is where `.` entries come from)."""
    c = Comparison()
    _cmp(lhs, rhs, shape, (), c)
    return c


def _cmp(l: Any, r: Any, shape: Shape, path: Path, c: Comparison) -> None:
    form = _form(shape, l, r)
    if form == "map":
        lm = l if isinstance(l, dict) else {}
        rm = r if isinstance(r, dict) else {}
        if lm or rm:
            for k in [*lm, *(k for k in rm if k not in lm)]:
                _cmp(lm.get(k, ABSENT), rm.get(k, ABSENT), shape.field(k), path + ("f:" + k,), c)
        else:
            form = "leaf"
    elif form == "list":
        li = _items(shape, l if isinstance(l, list) else [])
        ri = _items(shape, r if isinstance(r, list) else [])
        if li or ri:
            for pe, rv in ri.items():
                _cmp(li.get(pe, ABSENT), rv, shape.item(), path + (pe,), c)
            for pe, lv in li.items():
                if pe not in ri:
                    _cmp(lv, ABSENT, shape.item(), path + (pe,), c)
        else:
            form = "leaf"
    if l is ABSENT:
        c.added.add(path)
    elif r is ABSENT:
        c.removed.add(path)
    elif form == "leaf" and not _eq(l, r):
        c.modified.add(path)


def merge(lhs: Any, rhs: Any, shape: Shape) -> Any:
    """Merge rhs (an applied configuration) into lhs: rhs wins at leaves, maps merge, list-maps and
    sets merge per item (rhs order, lhs-only items kept in place). Nulls set by rhs unset fields."""
    if rhs is ABSENT:
        return lhs
    l = None if lhs is ABSENT else lhs
    form = _form(shape, l, rhs)
    if form == "map":
        lm = l if isinstance(l, dict) else {}
        rm = rhs if isinstance(rhs, dict) else {}
        if not lm and not rm:
            return rhs
        out: dict = {}
        for k in [*lm, *(k for k in rm if k not in lm)]:
            v = merge(lm.get(k, ABSENT), rm.get(k, ABSENT), shape.field(k))
            if v is None and k in rm and lm.get(k, ABSENT) is not None:
                continue
            out[k] = v
        return out
    if form == "list":
        ll = l if isinstance(l, list) else []
        rl = rhs if isinstance(rhs, list) else []
        return _merge_list(ll, rl, shape) if ll or rl else rhs
    return rhs


def _merge_list(ll: list, rl: list, shape: Shape) -> list:
    def pe(item: Any) -> str | None:
        try:
            return _item_pe(shape, item)
        except TypeError_:
            return None
    lhs = [(pe(x), x) for x in ll]
    rhs = [(pe(x), x) for x in rl]
    rmap = {p: x for p, x in reversed(rhs) if p is not None}
    lmap = {p: x for p, x in reversed(lhs) if p is not None}
    out, done, i, j = [], set(), 0, 0
    while i < len(lhs) or j < len(rhs):
        if i < len(lhs):
            lp, lv = lhs[i]
            if lp is None or lp not in rmap:
                out.append(lv)
                i += 1
                continue
            if lp in done:
                i += 1
                continue
        if j < len(rhs):
            rp, rv = rhs[j]
            j += 1
            if rp is not None and rp not in done:
                done.add(rp)
                out.append(merge(lmap.get(rp, ABSENT), rmap[rp], shape.item()))
            continue
        i += 1
    return out


def _child(node: Any, seg: str, shape: Shape) -> tuple[Any, Shape]:
    if seg.startswith("f:"):
        return (node.get(seg[2:], ABSENT) if isinstance(node, dict) else ABSENT), shape.field(seg[2:])
    if isinstance(node, list):
        return _items(shape, node).get(seg, ABSENT), shape.item()
    return ABSENT, shape.item()


def _delete(node: Any, seg: str, shape: Shape) -> None:
    if seg.startswith("f:"):
        if isinstance(node, dict):
            node.pop(seg[2:], None)
    elif isinstance(node, list):
        keep = []
        for item in node:
            try:
                if _item_pe(shape, item) == seg:
                    continue
            except TypeError_:
                pass
            keep.append(item)
        node[:] = keep


def remove_path(obj: dict, path: Path, shape: Shape) -> None:
    """Delete the value at path with its subtree; lists and maps it leaves empty go too (as Go's nil
    slices/maps would), structs stay."""
    trail: list[tuple[Any, str, Shape]] = []
    node, cur = obj, shape
    for seg in path[:-1]:
        nxt, nshape = _child(node, seg, cur)
        if nxt is ABSENT:
            return
        trail.append((node, seg, cur))
        node, cur = nxt, nshape
    _delete(node, path[-1], cur)
    while trail and node in ({}, []):
        parent, seg, pshape = trail.pop()
        if _child(parent, seg, pshape)[1].form not in ("list", "map", "any"):
            break
        _delete(parent, seg, pshape)
        node = parent


def _with_named(paths: set[Path], shape: Shape) -> set[Path]:
    """EnsureNamedFieldsAreMembers: prefixes ending in a struct field count as owned too."""
    out = set(paths)
    for p in paths:
        cur = shape
        for i, seg in enumerate(p):
            if seg.startswith("f:"):
                if cur.has_field(seg[2:]):
                    out.add(p[:i + 1])
                cur = cur.field(seg[2:])
            else:
                cur = cur.item()
    return out


def _zero(shape: Shape, top: bool = False) -> dict:
    names = (("metadata", "spec", "status") if top else ()) + ZERO_FIELDS.get(shape.short, ())
    out: dict = {}
    for name in names:
        if shape.has_field(name):
            child = shape.field(name)
            out[name] = _zero(child) if child.form == "struct" and not child.atomic else None
    return out


def _scope(obj: dict, subresource: str | None) -> dict:
    """The part of an object whose fields can be owned: no apiVersion/kind or server-set metadata;
    status only through /status, and only status there."""
    out = {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind") or (k == "status") != (subresource == "status"):
            continue
        if k == "metadata" and isinstance(v, dict):
            v = {mk: mv for mk, mv in v.items() if mk not in NOT_OWNED_META}
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# managedFields entries
# ---------------------------------------------------------------------------------------------

@dataclass
class Manager:
    manager: str
    operation: str
    api_version: str
    time: str | None
    subresource: str | None
    fields: set[Path]

    @property
    def ident(self) -> tuple[str, str, str, str]:
        """Appliers are one manager whatever version they apply; updaters are per version."""
        return (self.manager, self.operation, "" if self.operation == "Apply" else self.api_version,
                self.subresource or "")

    @property
    def label(self) -> str:
        name = json.dumps(self.manager, ensure_ascii=False)
        return f"{name} using {self.api_version}" if self.operation == "Update" else name

    def entry(self) -> dict:
        e: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            e["time"] = self.time
        e.update(fieldsType="FieldsV1", fieldsV1=encode_fields(self.fields))
        if self.subresource:
            e["subresource"] = self.subresource
        return e


def _decode_entries(entries: Any) -> dict[tuple, Manager]:
    out: dict[tuple, Manager] = {}
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict) or e.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        m = Manager(str(e.get("manager") or ""), str(e.get("operation") or ""), str(e.get("apiVersion") or ""),
                    e.get("time"), e.get("subresource") or None, decode_fields(e.get("fieldsV1")))
        if m.ident in out:
            out[m.ident].fields |= m.fields
        else:
            out[m.ident] = m
    return out


MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"


def _cap(managers: dict[tuple, Manager]) -> None:
    """Keep at most 10 Update entries: the oldest are folded into per-version "ancient-changes"."""
    updaters = sorted((m for m in managers.values() if m.operation != "Apply"), key=lambda m: (m.time or "", m.manager))
    excess = len(updaters) - MAX_UPDATE_MANAGERS
    for m in updaters:
        if excess <= 0:
            break
        if m.manager == ANCIENT_CHANGES:
            continue
        del managers[m.ident]
        bucket = Manager(ANCIENT_CHANGES, "Update", m.api_version, m.time, None, set())
        if bucket.ident in managers:
            bucket = managers[bucket.ident]
            bucket.time = max(bucket.time or "", m.time or "") or None
            excess -= 1
        managers[bucket.ident] = bucket
        bucket.fields |= m.fields


def _store(obj: dict, managers: dict[tuple, Manager]) -> None:
    managers = {k: m for k, m in managers.items() if m.fields}
    _cap(managers)
    live = list(managers.values())
    live.sort(key=lambda m: (m.operation, m.time or "", m.manager, m.api_version, m.subresource or ""))
    meta = obj.setdefault("metadata", {})
    if live:
        meta["managedFields"] = [m.entry() for m in live]
    else:
        meta.pop("managedFields", None)


def managed_fields(obj: dict) -> dict[tuple, Manager]:
    """The object's managedFields, decoded (by manager identity)."""
    return _decode_entries((obj.get("metadata") or {}).get("managedFields"))


# ---------------------------------------------------------------------------------------------
# Update
# ---------------------------------------------------------------------------------------------

def update_managed_fields(old: dict | None, new: dict, manager: str, operation: str, api_version: str, now: str,
                          subresource: str | None = None) -> None:
    """Record a create/update/patch by `manager` in new's metadata.managedFields (in place).

    The base is old's managedFields, or new's when the request carries a non-empty list of its own
    (how clients reset them; `[{}]` clears everything). On create the object is compared to the
    kind's zero value.
    """
    kind_key = (new.get("apiVersion") or api_version, new.get("kind") or (old or {}).get("kind", ""))
    shape = root_shape(kind_key)
    provided = (new.get("metadata") or {}).get("managedFields")
    use_new = isinstance(provided, list) and bool(provided) and not subresource
    managers = _decode_entries(provided if use_new else ((old or {}).get("metadata") or {}).get("managedFields"))
    before = _scope(old if old is not None else _zero(shape, top=True), subresource)
    c = compare(before, _scope(new, subresource), shape)
    changed = (c.added | c.modified) - STRIP
    for m in managers.values():
        m.fields -= changed | c.removed
    if changed:
        mine = Manager(manager, operation, api_version, now, subresource, set())
        mine = managers.setdefault(mine.ident, mine)
        mine.fields |= changed
        mine.time, mine.api_version = now, api_version
    _store(new, managers)


# ---------------------------------------------------------------------------------------------
# Apply
# ---------------------------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """YAML as sigs.k8s.io/yaml reads it: timestamps stay strings."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag != "tag:yaml.org,2002:timestamp"]
    for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _jsonish(v: Any) -> Any:
    """YAML values as JSON: keys become strings (as YAMLToJSON does), binary becomes base64."""
    if isinstance(v, dict):
        return {(k if isinstance(k, str) else json.dumps(k) if isinstance(k, bool) else str(k)): _jsonish(x)
                for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonish(x) for x in v]
    if isinstance(v, bytes):
        import base64
        return base64.b64encode(v).decode()
    return v


def _gvk(obj: dict) -> str:
    api_version = obj.get("apiVersion") if isinstance(obj.get("apiVersion"), str) else ""
    group, _, version = api_version.rpartition("/")
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else ""
    return f"{group}/{version}, Kind={kind}"


def parse_apply_body(body: bytes) -> dict:
    """The body of an apply patch (YAML or JSON) as an object; 400 when it is not one."""
    try:
        obj = orjson.loads(body) if body.lstrip()[:1] == b"{" else yaml.load(body, Loader=_Loader)  # noqa: S506
    except orjson.JSONDecodeError:
        obj = None
        try:
            obj = yaml.load(body, Loader=_Loader)  # noqa: S506
        except yaml.YAMLError as e:
            raise _yaml_error(e) from None
    except yaml.YAMLError as e:
        raise _yaml_error(e) from None
    except UnicodeDecodeError:
        raise bad_request("error decoding patch: error converting YAML to JSON: yaml: invalid leading UTF-8 octet") \
            from None
    if not isinstance(obj, dict):
        what = {list: "array", str: "string", bool: "bool", type(None): "null"}.get(type(obj), "number")
        raise bad_request(f"error decoding patch: json: cannot unmarshal {what} into Go value of type "
                          "map[string]interface {}")
    obj = _jsonish(obj)
    if not isinstance(obj.get("apiVersion"), str) or not obj.get("apiVersion") \
            or not isinstance(obj.get("kind"), str) or not obj.get("kind"):
        raise bad_request(f"invalid object type: {_gvk(obj)}")
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise bad_request("error decoding patch: json: cannot unmarshal non-object into Go struct field "
                          "Object.metadata of type v1.ObjectMeta")
    return obj


def _yaml_error(e: yaml.YAMLError) -> StatusError:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return bad_request(f"error decoding patch: error converting YAML to JSON: yaml: {where}{problem}")


def _conflict_error(conflicts: list[tuple[Manager, Path]]) -> StatusError:
    """409 Conflict worded like the apiserver's NewConflictError."""
    conflicts = sorted(conflicts, key=lambda c: (c[0].manager, c[0].operation, c[0].api_version, c[1]))
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {m.label}", "field": render(p)}
              for m, p in conflicts]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {m.label}: {render(p)}"
    else:
        lines: list[str] = []
        last = None
        for m, p in conflicts:
            if m.ident != last:
                lines.append(f"conflicts with {m.label}:")
                last = m.ident
            lines.append(f"- {render(p)}")
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, details={"causes": causes})


def _last_applied_allowed(live: dict, shape: Shape) -> set[Path] | None:
    """Fields kubectl's client-side last-applied annotation set to their live values: when kubectl
    moves to server-side apply, conflicts on these are not conflicts."""
    ann = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = json.loads(ann) if ann else None
    except ValueError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != live.get("apiVersion"):
        return None
    try:
        fields = field_set(_scope(last, None), shape)
    except TypeError_:
        return None
    c = compare(_scope(last, None), _scope(live, None), shape)
    return fields - c.added - c.modified - c.removed


def _go_json(v: Any) -> str:
    """encoding/json of an unstructured object: sorted keys, compact, HTML-escaped, newline-terminated."""
    text = json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def _sync_last_applied(obj: dict, applied: dict, manager: str) -> None:
    """kubectl's server-side apply keeps an existing client-side last-applied annotation current."""
    annotations = (obj.get("metadata") or {}).get("annotations")
    if manager != "kubectl" or not isinstance(annotations, dict) or LAST_APPLIED not in annotations:
        return
    config = copy.deepcopy(applied)
    (config.get("metadata") or {}).get("annotations", {}).pop(LAST_APPLIED, None)
    annotations[LAST_APPLIED] = _go_json(config)


def server_side_apply(live: dict | None, applied: dict, manager: str, force: bool, now: str) -> dict:
    """Apply `applied` (a parsed apply configuration) for `manager` onto `live` (None: create).

    Returns the new object with metadata.managedFields set; raises 409 on conflicts unless `force`.
    An apply that changes nothing leaves the object and its entry's time as they were.
    """
    api_version, kind = applied.get("apiVersion", ""), applied.get("kind", "")
    shape = root_shape((api_version, kind))
    meta = applied.get("metadata") if isinstance(applied.get("metadata"), dict) else {}
    if meta.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    config = copy.deepcopy({k: v for k, v in applied.items() if k != "status"})
    if isinstance(config.get("metadata"), dict):
        config["metadata"].pop("managedFields", None)
    try:
        applied_set = field_set(_scope(config, None), shape)
    except TypeError_ as e:
        raise malformed_patch(f"failed to create typed patch object ({meta.get('namespace', '')}/{meta.get('name', '')}; "
                           f"{_gvk(applied)}): {e}") from None
    owned = applied_set - STRIP
    me = Manager(manager, "Apply", api_version, now, None, owned)

    if live is None:
        result = merge(ABSENT, config, shape)
        _sync_last_applied(result, applied, manager)
        _store(result, {me.ident: me})
        return result

    managers = managed_fields(live)
    body = copy.deepcopy(live)
    body.get("metadata", {}).pop("managedFields", None)
    if not managers:   # nothing tracked yet: what exists belongs to "before-first-apply"
        first = Manager(BEFORE_FIRST_APPLY, "Update", live.get("apiVersion") or api_version, now, None, set())
        c = compare(_scope(_zero(shape, top=True), None), _scope(body, None), shape)
        first.fields = (c.added | c.modified) - STRIP
        managers[first.ident] = first
    result = merge(body, config, shape)

    previous = managers.pop(me.ident, None)
    if previous and previous.fields:
        keep = _with_named(applied_set.union(*(m.fields for m in managers.values())), shape)
        drop = _with_named(previous.fields, shape) - keep - STRIP - {("f:metadata",)}
        for p in sorted(drop, key=len):
            remove_path(result, p, shape)

    before, after = _scope(body, None), _scope(result, None)
    c = compare(before, after, shape)
    changed = c.added | c.modified
    conflicts = [(m, p) for m in managers.values() for p in sorted(m.fields & changed)]
    if conflicts and not force:
        allowed = _last_applied_allowed(live, shape) if manager == "kubectl" else None
        if allowed is not None:
            conflicts = [(m, p) for m, p in conflicts if p not in allowed]
        if conflicts:
            raise _conflict_error(conflicts)
    for m in managers.values():
        m.fields -= changed | c.removed
    if _eq(before, after) and _eq(body.get("apiVersion"), result.get("apiVersion")):
        me.time = previous.time if previous else None
    managers[me.ident] = me
    _sync_last_applied(result, applied, manager)
    _store(result, managers)
    return result
