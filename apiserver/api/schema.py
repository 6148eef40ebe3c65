"""The API's schemas: the Kubernetes 1.32 definitions (schema.json.gz) plus the custom resources' ones.

One source for everything that needs to know a kind's fields: the OpenAPI documents (openapi.py),
unknown-field detection for fieldValidation=Strict|Warn (here), and the strategic-merge and
server-side-apply metadata (patch.py, managedfields.py). The built-in definitions are cut from
upstream's spec by tools/gen_schema.py, so descriptions, required lists, formats and the
x-kubernetes-* extensions are upstream's own. Custom resources add theirs with `register_custom`
(from the CRD's openAPIV3Schema); every derived cache is cleared then (`cached`).

Definitions are Swagger 2.0 schemas keyed by upstream's names ("io.k8s.api.apps.v1.Deployment");
custom kinds are named like upstream's CRD publisher does: the group reversed, version, kind
("com.example.stable.v1.CronTab").
"""
from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path
from typing import Any, Callable, TypeVar

import orjson

from kubeling.api.resources import Resource

Json = dict[str, Any]
GVK = tuple[str, str, str]  # (group, version, kind)
F = TypeVar("F", bound=Callable[..., Any])

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
TIME, MICROTIME, FIELDSV1, PATCH = f"{META}.Time", f"{META}.MicroTime", f"{META}.FieldsV1", f"{META}.Patch"
OBJECT_META, LIST_META = f"{META}.ObjectMeta", f"{META}.ListMeta"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
STATUS, DELETE_OPTIONS, WATCH_EVENT = f"{META}.Status", f"{META}.DeleteOptions", f"{META}.WatchEvent"
RESOURCE_LIST = f"{META}.APIResourceList"
REF_PREFIX = "#/definitions/"

# Request/response bodies of subresources, with the GVKs they are registered as.
SUBRESOURCE_KINDS: dict[str, GVK] = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}
# JSON-Schema keywords OpenAPI 3 has and Swagger 2.0 does not: dropped from custom schemas, as upstream's
# CRD publisher does for /openapi/v2.
_V3_ONLY = frozenset({"nullable", "oneOf", "anyOf", "not"})
_TYPE_DOCS = {
    "apiVersion": "APIVersion defines the versioned schema of this representation of an object. Servers should "
                  "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
                  "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
                  "#resources",
    "kind": "Kind is a string value representing the REST resource this object represents. Servers may infer "
            "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
            "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
}

_CACHES: list[Any] = []


def cached(fn: F) -> F:
    """functools.cache, cleared whenever the set of definitions changes (a custom kind comes or goes)."""
    wrapped = cache(fn)
    _CACHES.append(wrapped)
    return wrapped  # type: ignore[return-value]


@cache
def _generated() -> Json:
    return orjson.loads(gzip.decompress(Path(__file__).with_name("schema.json.gz").read_bytes()))


def builtin_definitions() -> dict[str, Json]:
    """The generated 1.32 definitions (read-only: shared)."""
    return _generated()["definitions"]


def parameter(name: str) -> Json:
    """{type, description} of a query parameter, as upstream documents it."""
    return _generated()["parameters"][name]


# ---------------------------------------------------------------------------------------------
# Custom resources
# ---------------------------------------------------------------------------------------------

_CUSTOM: dict[GVK, tuple[Resource, Json]] = {}


def register_custom(resource: Resource, openapi_v3_schema: Json | None) -> None:
    """Publish a custom kind (one served version of a CRD): its schema and the resource's paths.

    openapi_v3_schema is the version's `schema.openAPIV3Schema`; None publishes an object that keeps
    any field (x-kubernetes-preserve-unknown-fields). Registering the same kind again replaces it.
    """
    _CUSTOM[(resource.group, resource.version, resource.kind)] = (resource, openapi_v3_schema or {})
    _changed()


def unregister_custom(resource: Resource) -> None:
    """Withdraw a custom kind registered with `register_custom` (no-op when it is not registered)."""
    if _CUSTOM.pop((resource.group, resource.version, resource.kind), None) is not None:
        _changed()


def custom_resources() -> list[Resource]:
    return [r for r, _ in _CUSTOM.values()]


def _changed() -> None:
    for c in _CACHES:
        c.cache_clear()


def custom_def_name(group: str, version: str, kind: str) -> str:
    return ".".join([*reversed(group.split(".")), version, kind])


def _v2(node: Any) -> Any:
    """A CRD schema node in the Swagger 2.0 subset published in definitions."""
    if isinstance(node, list):
        return [_v2(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {k: (v if k in ("enum", "default", "example") else _v2(v)) for k, v in node.items() if k not in _V3_ONLY}


def _custom_defs(r: Resource, schema: Json, openapi3: bool = False) -> dict[str, Json]:
    name = custom_def_name(r.group, r.version, r.kind)
    body = ((schema if openapi3 else _v2(schema)) if schema else
            {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = {"apiVersion": {"description": _TYPE_DOCS["apiVersion"], "type": "string"},
             "kind": {"description": _TYPE_DOCS["kind"], "type": "string"},
             "metadata": {"$ref": f"#/definitions/{OBJECT_META}",
                          "description": "Standard object's metadata. More info: https://git.k8s.io/community/"
                                         "contributors/devel/sig-architecture/api-conventions.md#metadata"}}
    props.update({k: v for k, v in body.get("properties", {}).items() if k not in props})
    obj = {**body, "type": "object", "properties": props,
           "x-kubernetes-group-version-kind": [{"group": r.group, "kind": r.kind, "version": r.version}]}
    lst = {"description": f"{r.kind}List is a list of {r.kind}", "type": "object", "required": ["items"],
           "properties": {"apiVersion": props["apiVersion"], "kind": props["kind"],
                          "items": {"description": f"List of {r.plural}. More info: https://git.k8s.io/community/"
                                                   "contributors/devel/api-conventions.md",
                                    "type": "array", "items": {"$ref": f"#/definitions/{name}"}},
                          "metadata": {"$ref": f"#/definitions/{LIST_META}", "description": "Standard list "
                                       "metadata. More info: https://git.k8s.io/community/contributors/devel/"
                                       "sig-architecture/api-conventions.md#metadata"}},
           "x-kubernetes-group-version-kind": [{"group": r.group, "kind": r.list_kind, "version": r.version}]}
    return {name: obj, f"{name}List": lst}


@cached
def definitions(openapi3: bool = False) -> dict[str, Json]:
    """Built-in and custom definitions as published in /openapi/v2 (read-only: shared); with openapi3
    the custom schemas keep what only OpenAPI 3 can say (nullable, anyOf...), for /openapi/v3."""
    out = dict(builtin_definitions())
    for r, schema in _CUSTOM.values():
        out.update(_custom_defs(r, schema, openapi3))
    return dict(sorted(out.items()))


@cached
def flat_definitions() -> dict[str, Json]:
    """definitions() with the custom kinds' nested object schemas lifted out as named definitions
    ("<kind definition>/spec/ports[]"), so type-driven code (patch shapes) can follow $refs only."""
    out = dict(builtin_definitions())
    for r, schema in _CUSTOM.values():
        for name, d in _custom_defs(r, schema).items():
            out[name] = _hoist(name, d, out, top=True)
    return out


def _hoist(path: str, node: Any, out: dict[str, Json], top: bool = False) -> Any:
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "properties" in node:
        node["properties"] = {k: _hoist(f"{path}/{k}", v, out) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        node["items"] = _hoist(f"{path}[]", node["items"], out)
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _hoist(f"{path}{{}}", node["additionalProperties"], out)
    if top or "properties" not in node:
        return node
    out[path] = node
    keep = {k: node[k] for k in ("description",) + _PROPERTY_EXTENSIONS if k in node}
    return {"$ref": REF_PREFIX + path, **keep}


# Extensions that describe the field (the list or map that holds the value), not the value's type.
_PROPERTY_EXTENSIONS = ("x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key", "x-kubernetes-list-type",
                        "x-kubernetes-list-map-keys")


@cached
def def_by_gvk() -> dict[GVK, str]:
    """(group, version, kind) -> definition name, for every kind with a schema (lists and bodies too)."""
    return {(g["group"], g["version"], g["kind"]): name for name, d in definitions().items()
            for g in d.get("x-kubernetes-group-version-kind", ())}


# ---------------------------------------------------------------------------------------------
# Unknown-field detection for fieldValidation=Strict|Warn
# ---------------------------------------------------------------------------------------------

_EMBEDDED_PROPERTIES = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                        "metadata": {"$ref": REF_PREFIX + OBJECT_META}}


def unknown_fields(api_version: str, kind: str, obj: dict) -> list[str]:
    """Paths of fields in obj that the kind's schema does not define, in document order.

    Paths use Kubernetes' strict-decoding notation with a leading dot: ".spec.template.spec.
    containers[0].imagee"; the apiserver strips the dot to answer `strict decoding error: unknown field
    "spec.template.spec.containers[0].imagee"` (errors joined by ", "). Map values are entered as
    ".key"; free-form values (IntOrString, Quantity, RawExtension, managedFields[].fieldsV1, custom
    fields with x-kubernetes-preserve-unknown-fields or -int-or-string) accept anything; objects marked
    x-kubernetes-embedded-resource also know apiVersion, kind and metadata. Unknown kinds give [].
    """
    group, _, version = api_version.rpartition("/")
    name = def_by_gvk().get((group, version, kind))
    out: list[str] = []
    if name and isinstance(obj, dict):
        _visit(obj, {"$ref": REF_PREFIX + name}, "", flat_definitions(), out)
    return out


def _visit(value: Any, node: Json, path: str, defs: dict[str, Json], out: list[str]) -> None:
    ref = node.get("$ref")
    if ref is not None:
        node = defs[ref.removeprefix(REF_PREFIX)]
    if node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string"):
        return
    if isinstance(value, dict):
        props = node.get("properties")
        if node.get("x-kubernetes-embedded-resource"):   # a whole object inside a custom resource
            props = {**_EMBEDDED_PROPERTIES, **(props or {})}
        if props is not None:
            for key, v in value.items():
                if key not in props:
                    out.append(f"{path}.{key}")
                elif v is not None:
                    _visit(v, props[key], f"{path}.{key}", defs, out)
        elif isinstance(node.get("additionalProperties"), dict):
            for key, v in value.items():
                if v is not None:
                    _visit(v, node["additionalProperties"], f"{path}.{key}", defs, out)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            if item is not None:
                _visit(item, node["items"], f"{path}[{i}]", defs, out)
