#!/usr/bin/env python3
"""Generate apiserver/api/zero_fields.py: the fields Go's encoding/json always writes, per served kind.

A Kubernetes object read from the apiserver carries every field Go serialises even when unset: a field
without `omitempty` (its zero value: 0, "", false; null for a nil pointer, slice or map) and every
non-pointer struct (`omitempty` never drops a struct: `status: {}`, `lastState: {}`; metav1.Time marshals
its zero as null, Quantity as "0", IntOrString as 0, RawExtension as null). Clients depend on it: the
official Python client rejects a DaemonSet whose status lacks `currentNumberScheduled`.

Sources, both generated from the 1.32 release:
* the OpenAPI spec: types, and `required` = fields with neither `omitempty` nor `+optional`;
* the protobuf descriptors compiled into kubectl 1.32 (apiserver/api/protobuf_schema.py, and the
  binary itself for the groups that module leaves out): gogoproto `nullable`, i.e. which Go fields
  are pointers (for structs and scalars alike);
plus NOT_OMITEMPTY, the few `+optional` fields declared without `omitempty` in the Go types (the spec
cannot tell them from omitempty ones), and GO_VALUE_STRUCTS for the two API packages kubectl carries
no descriptors of (apiextensions-apiserver, kube-aggregator).

    .venv/bin/python tools/gen_zero_fields.py [kubernetes-1.32-swagger.json [kubectl-1.32]] \
        > apiserver/api/zero_fields.py
"""
from __future__ import annotations

import json
import pprint
import re
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from apiserver.api.protobuf_schema import MESSAGES  # noqa: E402
from gen_protobuf_schema import fields, fields_safe, parse_message  # noqa: E402
from kubeling.api.resources import RESOURCES  # noqa: E402

SWAGGER = Path(__file__).resolve().parents[2] / "shared" / "reference" / "kubernetes-1.32-swagger.json"
KUBECTL = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")
AGGREGATED = {"metrics.k8s.io"}   # served upstream by an aggregated API: not in kube-apiserver's swagger
META, PKG = "io.k8s.apimachinery.pkg.apis.meta.v1.", "io.k8s.apimachinery.pkg."
# Types with their own JSON marshaller: the value a zero (non-pointer) field serialises to.
SPECIAL_ZERO = {META + "Time": None, META + "MicroTime": None, META + "FieldsV1": None,
                PKG + "runtime.RawExtension": None, PKG + "api.resource.Quantity": "0",
                PKG + "util.intstr.IntOrString": 0}
SCALAR_ZERO = {"string": "", "integer": 0, "number": 0, "boolean": False}
# `+optional` in types.go but `json:"name"` without omitempty, checked against k8s.io/api 1.32. Candidates:
# the struct tags without omitempty compiled into kubectl 1.32 whose name and protobuf number match an
# optional field of a served kind; most are other types' tags.
NOT_OMITEMPTY = {
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus": ("currentMetrics",),
    "io.k8s.api.core.v1.AzureFilePersistentVolumeSource": ("secretNamespace",),
    "io.k8s.api.core.v1.ContainerImage": ("names",),
    "io.k8s.api.core.v1.Event": ("reportingComponent", "reportingInstance"),
    "io.k8s.api.core.v1.GRPCAction": ("service",),
    "io.k8s.api.core.v1.ProjectedVolumeSource": ("sources",),
    "io.k8s.api.core.v1.TypedLocalObjectReference": ("apiGroup",),
    "io.k8s.api.core.v1.TypedObjectReference": ("apiGroup",),
    "io.k8s.api.discovery.v1.EndpointSlice": ("ports",),
    "io.k8s.api.flowcontrol.v1.ResourcePolicyRule": ("namespaces",),
    "io.k8s.api.rbac.v1.ClusterRole": ("rules",),
    "io.k8s.api.rbac.v1.Role": ("rules",),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus":
        ("conditions", "storedVersions"),
}
# Packages without descriptors in kubectl: their struct fields declared as values, not pointers (from
# apiextensions-apiserver's and kube-aggregator's v1 types.go); every other struct field there is a pointer.
NO_DESCRIPTORS = ("io.k8s.apiextensions-apiserver.", "io.k8s.kube-aggregator.")
GO_VALUE_STRUCTS = {
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition": ("metadata", "spec",
                                                                                        "status"),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec": ("names",),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus": ("acceptedNames",),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionCondition":
        ("lastTransitionTime",),
    "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService": ("metadata", "spec", "status"),
    "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceCondition": ("lastTransitionTime",),
}
SHORT_PREFIXES = ("io.k8s.api.", "io.k8s.apimachinery.pkg.apis.", "io.k8s.apimachinery.pkg.",
                  "io.k8s.apiextensions-apiserver.pkg.apis.", "io.k8s.kube-aggregator.pkg.apis.")


def short(name: str) -> str:
    for prefix in SHORT_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def kubectl_messages(binary: Path, packages: set[str]) -> dict:
    """MESSAGES-shaped tables of the given proto packages (k8s.io.api.rbac.v1...), read from kubectl."""
    data = binary.read_bytes()
    messages: dict = {}
    for m in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", data):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[m.start():m.start() + 4_000_000])
        except zlib.error:
            continue
        top = list(fields_safe(raw))
        package = next((v.decode() for n, _, v in top if n == 2), "")
        if package in packages and any(n == 1 and v.endswith(b"/generated.proto") for n, _, v in top):
            for n, _, v in fields(raw):
                if n == 4:
                    parse_message(v, package, messages, {})
    return messages


def definition_pointers(name: str, properties: dict) -> dict[str, bool]:
    """JSON name -> whether the Go field is a pointer, for one definition."""
    if name.startswith(NO_DESCRIPTORS):
        values = GO_VALUE_STRUCTS.get(name, ())
        return {f: bool(child_ref(p)[0]) and not child_ref(p)[1] and f not in values for f, p in properties.items()}
    return go_pointers("k8s.io." + name[len("io.k8s."):], properties)


def go_pointers(message: str, properties: dict) -> dict[str, bool]:
    """JSON name -> whether the Go field is a pointer (gogoproto nullable), for a message's fields; a field
    the spec does not list is an embedded `json:",inline"` struct whose fields are the outer object's.
    Protobuf names can differ from JSON ones in case only (aPIGroup for apiGroup)."""
    out: dict[str, bool] = {}
    json_names = {p.lower(): p for p in properties}
    for name, typ, _, nullable in MESSAGES.get(message, {}).values():
        if name.lower() in json_names:
            out[json_names[name.lower()]] = nullable
        elif typ in MESSAGES:
            out.update(go_pointers(typ, properties))
    return out


def ref_of(prop: dict) -> str | None:
    ref = prop.get("$ref")
    return ref.rsplit("/", 1)[1] if ref else None


def child_ref(prop: dict) -> tuple[str | None, str]:
    """The definition a property leads to and how: "" the value, "[]" each item, "{}" each map value."""
    if ref_of(prop):
        return ref_of(prop), ""
    if prop.get("type") == "array":
        return ref_of(prop.get("items") or {}), "[]"
    if prop.get("type") == "object":
        return ref_of(prop.get("additionalProperties") or {}), "{}"
    return None, ""


def analyse(defs: dict, name: str) -> tuple[dict, list]:
    """(fields set when absent -> zero, [(field, definition, how)] to descend into) for one definition."""
    d = defs[name]
    required = set(d.get("required", ())) | set(NOT_OMITEMPTY.get(name, ()))
    pointer = definition_pointers(name, d.get("properties", {}))
    zeros: dict = {}
    nested: list = []
    for field, prop in sorted(d.get("properties", {}).items()):
        if field not in pointer:
            if field in ("apiVersion", "kind"):     # the embedded TypeMeta: the server sets it
                continue
            sys.exit(f"{name}.{field}: not in the protobuf schema")
        ref, how = child_ref(prop)
        if ref is not None and ref not in SPECIAL_ZERO:
            nested.append((field, ref, how))
        if prop.get("type") in ("array", "object"):
            if field in required:           # a slice or map without omitempty: nil is null
                zeros[field] = None
        elif ref is not None:
            if not pointer[field]:          # a struct value: always written, omitempty or not
                zeros[field] = SPECIAL_ZERO[ref] if ref in SPECIAL_ZERO else {}
            elif field in required:
                zeros[field] = None
        elif field in required:
            zeros[field] = None if pointer[field] else SCALAR_ZERO[prop["type"]]
    return zeros, nested


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else SWAGGER
    defs = json.loads(path.read_text())["definitions"]
    packages = {"k8s.io." + n[len("io.k8s."):].rsplit(".", 1)[0] for n in defs if n.startswith("io.k8s.api.")}
    missing = {p for p in packages if not any(m.startswith(p + ".") for m in MESSAGES)}
    MESSAGES.update(kubectl_messages(Path(sys.argv[2]) if len(sys.argv) > 2 else KUBECTL, missing))
    by_gvk = {(x["group"], x["version"], x["kind"]): name for name, d in defs.items()
              for x in d.get("x-kubernetes-group-version-kind", ())}
    roots = {}
    for r in RESOURCES:
        if r.group in AGGREGATED:
            continue
        if (r.group, r.version, r.kind) not in by_gvk:
            sys.exit(f"{r.api_version} {r.kind}: not in {path}")
        roots[r.api_version, r.kind] = by_gvk[r.group, r.version, r.kind]
    table: dict[str, tuple[dict, list]] = {}
    todo = sorted(set(roots.values()))
    while todo:
        name = todo.pop()
        if name not in table:
            table[name] = analyse(defs, name)
            todo.extend(ref for _, ref, _ in table[name][1])
    # Keep only what leads to a field to fill.
    useful = {n for n, (zeros, _) in table.items() if zeros}
    while True:
        grown = useful | {n for n, (_, nested) in table.items() if any(ref in useful for _, ref, _ in nested)}
        if grown == useful:
            break
        useful = grown
    fields = {short(n): (zeros, {f: (short(ref), how) for f, ref, how in nested if ref in useful})
              for n, (zeros, nested) in sorted(table.items()) if n in useful}
    print('"""Fields Go always serialises, per definition of the served kinds (generated by tools/gen_zero_fields.py')
    print('from the Kubernetes 1.32 OpenAPI spec and protobuf descriptors; do not edit).')
    print()
    print("ROOTS: (apiVersion, kind) -> definition.")
    print("FIELDS: definition -> ({field: zero value written when the field is absent}, {field: (definition, how)})")
    print('with how "" (the field\'s object), "[]" (each list item) or "{}" (each map value) to fill in turn."""')
    print("# flake8: noqa")
    print("ROOTS = " + pprint.pformat({k: short(v) for k, v in sorted(roots.items()) if v in useful},
                                      width=120, compact=True))
    print("FIELDS = " + pprint.pformat(fields, width=120, compact=True))


if __name__ == "__main__":
    main()
