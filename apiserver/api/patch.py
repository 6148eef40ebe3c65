"""PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch.

Patch metadata (merge keys, patch strategies, list types) is found by *type*, not by path: the
kind's OpenAPI definition (schema.py: upstream's, or a custom resource's) is walked field by field
(`Shape`), and each property carries upstream's x-kubernetes-patch-*/list-*/map-type extensions. So
`PodSpec.containers` merges by name the same way under a Pod, a Deployment's spec.template or a
Job's template. Server-side apply (managedfields.py) walks the same shapes for list-map keys, sets
and atomic structs/maps.

Strategic merge follows k8s.io/apimachinery/pkg/util/strategicpatch as the apiserver runs it
(MergeParallelList, IgnoreUnmatchedNulls): `$patch: replace|delete|merge`, `$retainKeys`,
`$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`, null deletes, merged items ordered
patch-first with server-only items interleaved by their live order.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from apiserver.api import schema
from kubeling.api.errors import StatusError, bad_request
from kubeling.api.gofmt import go_value

# ---------------------------------------------------------------------------------------------
# Type shapes
# ---------------------------------------------------------------------------------------------

# Defaults of list-map key fields (+default), used when an applied item omits them.
KEY_DEFAULTS: dict[tuple[str, str], Any] = {("ContainerPort", "protocol"): "TCP", ("ServicePort", "protocol"): "TCP"}


@dataclass(frozen=True)
class Shape:
    """What a value at some path is: struct (named definition), map, list, scalar or any (unknown)."""
    form: str
    name: str = ""                  # definition name of a struct / list element / map value
    elem: Shape | None = None      # list item or map value shape
    strategy: str = ""              # x-kubernetes-patch-strategy
    merge_key: str = ""             # x-kubernetes-patch-merge-key
    list_type: str = ""             # x-kubernetes-list-type
    keys: tuple[str, ...] = ()      # x-kubernetes-list-map-keys
    atomic: bool = False            # +structType/+mapType=atomic, or opaque (RawExtension, FieldsV1)

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    def field(self, name: str) -> Shape:
        if self.form == "struct":
            return _field_shape(self.name, name)
        if self.form == "map" and self.elem is not None:
            return self.elem
        return ANY

    def item(self) -> Shape:
        return self.elem if self.form == "list" and self.elem is not None else ANY

    def has_field(self, name: str) -> bool:
        return self.form == "struct" and name in _props(self.name)

    @property
    def smp_strategy(self) -> str:
        """The strategic-merge strategy without retainKeys (which only steers diffing)."""
        return next((s for s in self.strategy.split(",") if s and s != "retainKeys"), "")

    @property
    def relation(self) -> str:
        """Server-side apply list semantics: atomic, set or map (structured-merge-diff's rules)."""
        if self.list_type:
            return self.list_type
        if self.smp_strategy == "merge":
            return "map" if self.merge_key else "set"
        return "atomic"

    @property
    def map_keys(self) -> tuple[str, ...]:
        if self.list_type == "map":
            return self.keys
        return (self.merge_key,) if self.relation == "map" else ()


ANY = Shape("any")


@schema.cached
def _props(defname: str) -> dict[str, Any]:
    return schema.flat_definitions().get(defname, {}).get("properties", {})


def _shape(node: dict) -> Shape:
    """Shape of a property's schema; list and map semantics come from the property's extensions."""
    meta = dict(strategy=node.get("x-kubernetes-patch-strategy", ""),
                merge_key=node.get("x-kubernetes-patch-merge-key", ""),
                list_type=node.get("x-kubernetes-list-type", ""),
                keys=tuple(node.get("x-kubernetes-list-map-keys", ())))
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix(schema.REF_PREFIX)
        d = schema.flat_definitions()[name]
        if "properties" in d:   # +structType=atomic structs say x-kubernetes-map-type: atomic
            return Shape("struct", name, atomic=d.get("x-kubernetes-map-type") == "atomic", **meta)
        if d.get("type", "object") == "object":   # FieldsV1, RawExtension, Patch, JSON: opaque
            return Shape("any", name, atomic=True)
        return Shape("scalar", name)           # Quantity, IntOrString, Time, MicroTime
    if node.get("x-kubernetes-int-or-string"):
        return Shape("scalar")
    if node.get("type") == "array":
        elem = _shape(node.get("items") or {})
        return Shape("list", elem.name, elem, **meta)
    if isinstance(node.get("additionalProperties"), dict):
        elem = _shape(node["additionalProperties"])
        return Shape("map", elem.name, elem, atomic=node.get("x-kubernetes-map-type") == "atomic")
    if node.get("type") == "object" and not node.get("properties"):
        return ANY
    return Shape("scalar")


@schema.cached
def _field_shape(defname: str, field: str) -> Shape:
    prop = _props(defname).get(field)
    return ANY if prop is None else _shape(prop)


@schema.cached
def root_shape(kind_key: tuple[str, str]) -> Shape:
    """Shape of a whole object of (apiVersion, kind); ANY when the kind has no schema."""
    api_version, kind = kind_key
    group, _, version = api_version.rpartition("/")
    name = schema.def_by_gvk().get((group, version, kind))
    return Shape("struct", name) if name else ANY


def shape_at(kind_key: tuple[str, str], path: tuple[str, ...]) -> Shape:
    """Shape at a field path (field names only; lists are stepped through to their items)."""
    cur = root_shape(kind_key)
    for name in path:
        if cur.form == "list":
            cur = cur.item()
        cur = cur.field(name)
    return cur


def merge_key(kind_key: tuple[str, str], path: tuple[str, ...]) -> str | None:
    """Strategic-merge key of the list at `path`, None when the list is replaced or is a set."""
    s = shape_at(kind_key, path)
    return s.merge_key or None if s.form == "list" and s.smp_strategy == "merge" else None


def list_map_keys(kind_key: tuple[str, str], path: tuple[str, ...]) -> tuple[str, ...]:
    """Server-side-apply keys of the list at `path` (() for atomic lists and sets)."""
    s = shape_at(kind_key, path)
    return s.map_keys if s.form == "list" else ()


# ---------------------------------------------------------------------------------------------
# Errors, Go flavoured
# ---------------------------------------------------------------------------------------------

def malformed_patch(message: str) -> StatusError:
    """A patch the merge code cannot apply. Upstream lets these plain Go errors reach its responder
    as a 500; they are the client's input, so kubeling answers 400 BadRequest with the same text
    (docs/apiserver.md)."""
    return bad_request(message)


def _invalid_patch() -> StatusError:
    """apierrors.NewGenericServerResponse(422, ...) drops the cause and keeps this fixed text."""
    return StatusError(422, "Invalid", "the server rejected our request due to an error in our request", details={})


def _decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        text = body.decode("utf-8", "replace")
        pos = getattr(e, "pos", len(text))
        if not text[pos:].strip():
            raise bad_request("unexpected end of JSON input") from None
        raise bad_request(f"invalid character '{text[pos]}' looking for beginning of value") from None


def _go_type(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(v), "number")


def _not_a_map(v: Any) -> StatusError:
    return bad_request(f"json: cannot unmarshal {_go_type(v)} into Go value of type map[string]interface {{}}")


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------

MAX_JSON_PATCH_OPS = 10000


def apply_patch(content_type: str, original: dict, patch_body: bytes, kind_key: tuple[str, str]) -> dict:
    """Apply a json-patch, merge-patch or strategic-merge-patch body to `original` (not mutated)."""
    ct = content_type.split(";", 1)[0].strip().lower()
    if ct == "application/json-patch+json":
        return json_patch(original, patch_body)
    if ct == "application/merge-patch+json":
        patch = _decode(patch_body)
        if patch is None:
            raise bad_request("Invalid JSON Patch")
        if not isinstance(patch, dict):
            raise _not_a_map(patch)
        return merge_patch(original, patch)
    if ct == "application/strategic-merge-patch+json":
        patch = _decode(patch_body)
        if not isinstance(patch, dict):
            if patch is None:
                return copy.deepcopy(original)
            raise _not_a_map(patch)
        return strategic_merge(original, patch, kind_key)
    raise StatusError(415, "UnsupportedMediaType", f"the patch type {ct} is not supported")


def json_patch(original: dict, body: bytes) -> Any:
    """RFC 6902. Decoding problems are 400s; any failure while applying is Kubernetes' generic 422."""
    ops = _decode(body)
    if ops is None:
        return copy.deepcopy(original)
    if not isinstance(ops, list):
        raise bad_request(f"json: cannot unmarshal {_go_type(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request(f"json: cannot unmarshal {_go_type(op)} into Go value of type jsonpatch.Operation")
    if len(ops) > MAX_JSON_PATCH_OPS:
        raise StatusError(413, "RequestEntityTooLarge", "Request entity too large: The allowed maximum operations "
                          f"in a JSON patch is {MAX_JSON_PATCH_OPS}, got {len(ops)}")
    try:
        return jsonpatch.JsonPatch(ops).apply(original)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, KeyError, TypeError, IndexError,
            ValueError, AttributeError):
        raise _invalid_patch() from None


def merge_patch(orig: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, null deletes, anything else replaces (with its nulls pruned)."""
    if not isinstance(patch, dict) or not isinstance(orig, dict):
        return _prune_nulls(patch)
    out = dict(orig)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_patch(out[k], v)
        else:
            out[k] = _prune_nulls(v)
    return out


def _prune_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _prune_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_prune_nulls(x) for x in v]
    return v


# ---------------------------------------------------------------------------------------------
# Strategic merge patch
# ---------------------------------------------------------------------------------------------

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList"
_ABSENT: Any = object()


def strategic_merge(original: dict, patch: dict, kind_key: tuple[str, str]) -> dict:
    """Kubernetes' strategic merge of `patch` into `original` (neither is mutated)."""
    shape = root_shape(kind_key)
    return _smp_map(copy.deepcopy(original), copy.deepcopy(patch), shape)


def _clean(v: Any) -> Any:
    """A patch value inserted as is: drop directive keys, directive-only items and nulls."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if not k.startswith("$") and x is not None}
    if isinstance(v, list):
        return [_clean(x) for x in v if not (isinstance(x, dict) and DIRECTIVE in x)]
    return v


def _same(a: Any, b: Any) -> bool:
    """Go's interface equality on decoded JSON scalars (int64 and float64 differ; bools are not ints)."""
    return type(a) is type(b) and a == b


def _directive_field(key: str, prefix: str, error: str) -> str:
    parts = key.split("/", 1)
    if len(parts) < 2 or parts[0] != prefix:
        raise bad_request(error)
    return parts[1]


def _smp_map(orig: dict, patch: dict, shape: Shape) -> dict:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            return _clean({k: v for k, v in patch.items() if k != DIRECTIVE})
        if directive == "delete":
            return {}
        if directive != "merge":   # an explicit merge is the default (Kubernetes itself rejects it)
            raise malformed_patch(f"unknown patch type: {go_value(directive)} in map: {go_value(patch)}")
    out = dict(orig)
    patch = {k: v for k, v in patch.items() if k != DIRECTIVE}
    if RETAIN_KEYS in patch:
        out = _retain_keys(out, patch, patch.pop(RETAIN_KEYS))
    for key in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(key)
        field = _directive_field(key, SET_ORDER, "invalid patch format of setElementOrder list")
        _set_element_order(out, patch, field, order, shape.field(field))
    deletions: list[tuple[str, Any]] = []
    for k, v in patch.items():
        if k.startswith(DELETE_PRIMITIVE):
            deletions.append((_directive_field(k, DELETE_PRIMITIVE, "invalid patch format of primitive list"), v))
            continue
        if v is None:
            out.pop(k, None)
            continue
        if k not in out:
            out[k] = _clean(v)
            continue
        cur, child = out[k], shape.field(k)
        if isinstance(cur, dict) and isinstance(v, dict):
            out[k] = _clean(v) if child.smp_strategy == "replace" else _smp_map(cur, v, child)
        elif isinstance(cur, list) and isinstance(v, list):
            out[k] = _smp_list(cur, v, child) if child.smp_strategy == "merge" else _clean(v)
        else:
            out[k] = _clean(v)
    for field, drop in deletions:
        if not isinstance(drop, list):
            raise bad_request("invalid patch format of primitive list")
        if isinstance(out.get(field), list):
            out[field] = [x for x in out[field] if not any(_same(x, d) for d in drop)]
    return out


def _retain_keys(out: dict, patch: dict, retain: Any) -> dict:
    """Clear fields not listed; every (non-null) field the patch sets must be listed."""
    if not isinstance(retain, list):
        raise bad_request("invalid patch format of retainKeys")
    keep = {x for x in retain if isinstance(x, str)}
    for k, v in patch.items():
        if v is None or k.startswith(DELETE_PRIMITIVE) or k.startswith(SET_ORDER):
            continue
        if k not in keep:
            raise bad_request("invalid patch format of retainKeys")
    return {k: v for k, v in out.items() if k in keep}


def _ident(item: Any, key: str | None) -> Any:
    return item.get(key, _ABSENT) if key and isinstance(item, dict) else item


def _index(order: list, item: Any, key: str | None) -> int:
    want = _ident(item, key)
    return next((i for i, x in enumerate(order) if _same(_ident(x, key), want)), -1)


def _no_merge_key(item: Any, key: str) -> StatusError:
    return malformed_patch(f"map: {go_value(item)} does not contain declared merge key: {key}")


def _smp_list(orig: list, patch: list, shape: Shape, delete_list: bool = False) -> list:
    """mergeSlice: keyed maps merge by merge key, primitives union; then the order is normalized."""
    if not orig and not patch:
        return orig
    kinds = {type(x) for x in orig + patch}
    if list in kinds:
        raise _invalid_patch()  # lists of lists are not supported: a generic 422
    if len(kinds) > 1:
        raise malformed_patch(f"list element types are not identical: {go_value([orig, patch])}")
    key = shape.merge_key or None
    if kinds != {dict}:
        if delete_list:
            return [x for x in orig if not any(_same(x, d) for d in patch)]
        merged: list = []
        for x in orig + patch:
            if not any(_same(x, m) for m in merged):
                merged.append(x)
        return _normalize(merged, patch, orig, None)
    if not key:
        raise malformed_patch("cannot merge lists without merge key for type "
                           + ("struct" if shape.item().form == "struct" else "map"))
    orig, patch = _special_items(orig, patch, key)
    merged = list(orig)
    for item in patch:
        if key not in item:
            raise _no_merge_key(item, key)
        at = _index(merged, item, key)
        if at >= 0:
            merged[at] = _smp_map(merged[at], item, shape.item())
        else:
            merged.append(_clean(item))
    for item in merged:
        if not isinstance(item, dict) or key not in item:
            raise _no_merge_key(item, key)
    return _normalize(merged, patch, orig, key)


def _special_items(orig: list, patch: list, key: str) -> tuple[list, list]:
    """Handle `$patch` list items: delete removes by key, replace makes the patch the whole list."""
    plain, replace = [], False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if key not in item:
                raise _no_merge_key(item, key)
            orig = [o for o in orig if not (isinstance(o, dict) and _same(o.get(key, _ABSENT), item[key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":   # accepted as the default merge (Kubernetes rejects it)
            plain.append({k: v for k, v in item.items() if k != DIRECTIVE})
        else:
            raise malformed_patch(f"unknown patch type: {go_value(directive)} in map: {go_value(item)}")
    if replace:
        return [_clean(x) for x in plain], []
    return orig, plain


def _normalize(merged: list, patch_order: list, server_order: list, key: str | None) -> list:
    """normalizeElementOrder: items named by the patch in patch order, server-only items in live
    order, interleaved where both are known to the live list (patch items otherwise go first)."""
    in_patch = [x for x in merged if _index(patch_order, x, key) >= 0]
    server = [x for x in merged if _index(patch_order, x, key) < 0]
    in_patch.sort(key=lambda x: _index(patch_order, x, key))
    server.sort(key=lambda x: _index(server_order, x, key))
    out, i, j = [], 0, 0
    while i < len(server) or j < len(in_patch):
        if j >= len(in_patch):
            out.append(server[i])
            i += 1
        elif i >= len(server):
            out.append(in_patch[j])
            j += 1
        else:
            li, ri = _index(server_order, server[i], key), _index(server_order, in_patch[j], key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server[i])
                i += 1
            else:
                out.append(in_patch[j])
                j += 1
    return out


def _set_element_order(out: dict, patch: dict, field: str, order: Any, shape: Shape) -> None:
    """`$setElementOrder/<field>`: merge the field's patch list (if any), then order by the directive."""
    if not isinstance(order, list):
        raise malformed_patch(f"expected a []interface {{}}, but received a {_go_type(order)}")
    key = shape.merge_key or None if shape.smp_strategy == "merge" else None
    cur, new = out.get(field, _ABSENT), patch.pop(field, _ABSENT)
    for v in (cur, new):
        if v is not _ABSENT and not isinstance(v, list):
            raise malformed_patch(f"expected a []interface {{}}, but received a {_go_type(v)}")
    if new is not _ABSENT:
        _check_order(new, order, key)
    if cur is _ABSENT and new is _ABSENT:
        return
    if new is _ABSENT:
        merged = cur
    elif shape.smp_strategy == "merge":
        merged = _smp_list([] if cur is _ABSENT else cur, new, shape)
    else:
        merged = _clean(new)
    if key:
        for item in merged + order:
            if not isinstance(item, dict) or key not in item:
                raise _no_merge_key(item, key)
    out[field] = _normalize(merged, order, [] if cur is _ABSENT else cur, key)


def _check_order(patch_list: list, order: list, key: str | None) -> None:
    """The patch list's (non-deleted) items must appear in the same relative order as in the directive."""
    items = [x for x in patch_list if not (key and isinstance(x, dict) and x.get(DIRECTIVE) == "delete")]
    if not items or not order:
        return
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        if isinstance(items[pi], dict) and DIRECTIVE in items[pi]:
            pi += 1
            continue
        if key:
            for x in (items[pi], order[oi]):
                if not isinstance(x, dict) or key not in x:
                    raise _no_merge_key(x, key)
        if _same(_ident(items[pi], key), _ident(order[oi], key)):
            pi += 1
        oi += 1
    if pi < len(items):
        raise malformed_patch(f"The order in patch list:\n{go_value(patch_list)}\n doesn't match {SET_ORDER} list:\n"
                           f"{go_value(order)}\n")
