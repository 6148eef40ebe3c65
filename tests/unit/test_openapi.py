"""OpenAPI v2/v3 documents: structure, references, per-resource paths, kubectl-relevant extensions,
agreement with the official Python client (generated from upstream's spec), protobuf form,
unknown-field detection for fieldValidation, custom resources, and the generated schema's freshness."""
from __future__ import annotations

import gzip
import hashlib
import inspect
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from apiserver.api import openapi as oa
from kubeling.api.resources import RESOURCES, Resource, group_versions

# group-versions with a 1.32 schema (metrics.k8s.io is an aggregated API upstream: no OpenAPI here)
GVS = [(g, v) for g, vs in group_versions().items() for v in vs if g != "metrics.k8s.io"]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _paths(r: Resource) -> tuple[str, str, str]:
    root = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
    ns = "/namespaces/{namespace}" if r.namespaced else ""
    return root, f"{root}{ns}/{r.plural}", f"{root}{ns}/{r.plural}/{{name}}"


def _def_of(r: Resource) -> tuple[str, dict]:
    defs = oa.openapi_v2()["definitions"]
    want = {"group": r.group, "kind": r.kind, "version": r.version}
    hits = [(n, d) for n, d in defs.items() if want in d.get("x-kubernetes-group-version-kind", [])]
    assert len(hits) == 1, (r, [n for n, _ in hits])
    return hits[0]


# --- documents --------------------------------------------------------------------------------

def test_documents_are_json_and_valid_against_the_openapi_meta_schemas():
    v2 = orjson.loads(oa.openapi_v2_bytes())
    assert v2["swagger"] == "2.0" and v2["info"] == {"title": "Kubernetes", "version": "v1.32.0"}
    assert v2 == json.loads(json.dumps(oa.openapi_v2()))
    docs = {gv: orjson.loads(oa.openapi_v3_bytes(*gv)) for gv in GVS}
    assert all(d["openapi"].startswith("3.0") for d in docs.values())
    definitions = pytest.importorskip("schemathesis.specs.openapi.definitions")
    assert not list(definitions.SWAGGER_20_VALIDATOR.iter_errors(v2))
    for gv, doc in docs.items():
        errors = list(definitions.OPENAPI_30_VALIDATOR.iter_errors(doc))
        assert not errors, (gv, str(errors[0])[:500])


def test_every_ref_resolves():
    v2 = oa.openapi_v2()
    refs = set(_refs(v2))
    assert refs and all(r.startswith("#/definitions/") for r in refs)
    assert {r.split("/")[-1] for r in refs} <= set(v2["definitions"])
    for gv in GVS:
        doc = oa.openapi_v3(*gv)
        refs = set(_refs(doc))
        assert all(r.startswith("#/components/schemas/") for r in refs), gv
        assert {r.split("/")[-1] for r in refs} <= set(doc["components"]["schemas"]), gv
        # only what the group-version needs
        assert not any(n.startswith("io.k8s.api.apps.") for n in doc["components"]["schemas"]) or gv == ("apps", "v1")


def test_v3_index_and_lookup():
    index = oa.openapi_v3_index()["paths"]
    assert set(index) == {f"apis/{g}/{v}" if g else f"api/{v}" for g, v in GVS}
    for (g, v) in GVS:
        url = index[f"apis/{g}/{v}" if g else f"api/{v}"]["serverRelativeURL"]
        path, _, digest = url.partition("?hash=")
        assert path == (f"/openapi/v3/apis/{g}/{v}" if g else f"/openapi/v3/api/{v}")
        assert digest == hashlib.sha512(oa.openapi_v3_bytes(g, v)).hexdigest().upper()
    assert orjson.loads(oa.openapi_v3_index_bytes()) == oa.openapi_v3_index()
    assert oa.openapi_v3("apps", "v9") is None and oa.openapi_v3_bytes("nope", "v1") is None
    assert oa.openapi_v3("", "v1")["info"]["title"] == "Kubernetes"


# --- resources, operations, extensions -----------------------------------------------------------

VERB_OPS = {  # verb -> (which path, method, action)
    "list": ("coll", "get", "list"), "create": ("coll", "post", "post"),
    "deletecollection": ("coll", "delete", "deletecollection"), "get": ("item", "get", "get"),
    "update": ("item", "put", "put"), "patch": ("item", "patch", "patch"), "delete": ("item", "delete", "delete"),
}


@pytest.mark.parametrize("r", [r for r in RESOURCES if r.group != "metrics.k8s.io"], ids=lambda r: f"{r.group or 'core'}/{r.version}/{r.kind}")
def test_resource_has_paths_operations_and_gvk(r: Resource):
    paths = oa.openapi_v2()["paths"]
    name, definition = _def_of(r)
    assert name.endswith(f".{r.version}.{r.kind}") and definition["type"] == "object"
    assert {"apiVersion", "kind", "metadata"} <= set(definition["properties"])
    gvk = {"group": r.group, "kind": r.kind, "version": r.version}
    root, coll, item = _paths(r)
    group_camel = "Core" if not r.group else "".join(
        p.capitalize() for p in r.group.removesuffix(".k8s.io").split("."))
    prefix = f"{group_camel}{r.version.capitalize()}{'Namespaced' if r.namespaced else ''}{r.kind}"
    for verb, (which, method, action) in VERB_OPS.items():
        op = paths.get(coll if which == "coll" else item, {}).get(method)
        if verb not in r.verbs:
            assert op is None, (verb, r)
            continue
        assert op["x-kubernetes-action"] == action and op["x-kubernetes-group-version-kind"] == gvk
        params = {p["name"] for p in op["parameters"]}
        if verb in ("create", "update", "patch"):
            assert {"dryRun", "fieldManager", "fieldValidation"} <= params
        if verb == "patch":
            assert op["operationId"] == f"patch{prefix}" and "force" in params
            assert set(op["consumes"]) == set(oa.PATCH_TYPES)
            assert op["responses"]["200"]["schema"] == {"$ref": f"#/definitions/{name}"}
        if verb == "list":
            assert op["operationId"] == f"list{prefix}" and op["responses"]["200"]["schema"]["$ref"].endswith("List")
            assert {"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "resourceVersionMatch",
                    "watch", "allowWatchBookmarks", "timeoutSeconds"} <= params
        if verb == "deletecollection":
            assert {"gracePeriodSeconds", "propagationPolicy", "labelSelector"} <= params
        if verb == "create":
            assert op["operationId"] == f"create{prefix}" and set(op["responses"]) == {"200", "201", "202", "401"}
    for p in (coll, item) if {"get", "update", "patch", "delete"} & set(r.verbs) else (coll,):   # reviews: POST only
        assert any(x["name"] == "pretty" for x in paths[p]["parameters"])
    if r.namespaced:
        all_ns = paths[f"{root}/{r.plural}"]["get"]
        assert all_ns["operationId"] == f"list{group_camel}{r.version.capitalize()}{r.kind}ForAllNamespaces"
    assert paths[f"{root}/"]["get"]["responses"]["200"]["schema"]["$ref"].endswith("APIResourceList")
    if "status" in r.subresources:
        st = paths[f"{item}/status"]
        assert {m for m in st if m != "parameters"} == {"get", "put", "patch"}
        assert st["patch"]["x-kubernetes-group-version-kind"] == gvk
        assert st["get"]["operationId"] == f"read{prefix}Status"
    if "scale" in r.subresources:
        sc = paths[f"{item}/scale"]
        scale = {"group": "autoscaling", "kind": "Scale", "version": "v1"}
        assert sc["put"]["x-kubernetes-group-version-kind"] == scale
        assert sc["get"]["responses"]["200"]["schema"] == {"$ref": "#/definitions/io.k8s.api.autoscaling.v1.Scale"}

    if "patch" not in r.verbs:   # read-only kinds (componentstatuses)
        return
    # v3: kubectl --validate picks server-side validation when the kind's PATCH lists fieldValidation
    doc = oa.openapi_v3(r.group, r.version)
    patches = [op["patch"] for op in doc["paths"].values()
               if "patch" in op and op["patch"].get("x-kubernetes-group-version-kind") == gvk]
    assert patches and all(any(p["name"] == "fieldValidation" for p in op["parameters"]) for op in patches)
    body = doc["paths"][item]["patch"]["requestBody"]["content"]
    assert set(body) == set(oa.PATCH_TYPES)
    assert doc["components"]["schemas"][name]["x-kubernetes-group-version-kind"] == [gvk]


def test_pod_subresources():
    paths = oa.openapi_v2()["paths"]
    base = "/api/v1/namespaces/{namespace}/pods/{name}"
    assert paths[f"{base}/binding"]["post"]["x-kubernetes-group-version-kind"] == \
        {"group": "", "kind": "Binding", "version": "v1"}
    ev = paths[f"{base}/eviction"]["post"]
    assert ev["operationId"] == "createCoreV1NamespacedPodEviction"
    assert ev["parameters"][0]["schema"] == {"$ref": "#/definitions/io.k8s.api.policy.v1.Eviction"}
    log = paths[f"{base}/log"]["get"]
    assert log["responses"]["200"]["schema"] == {"type": "string"} and "text/plain" in log["produces"]
    assert {"container", "follow", "tailLines", "previous"} <= {p["name"] for p in log["parameters"]}
    assert paths[f"{base}/exec"]["post"]["x-kubernetes-action"] == "connect"
    token = paths["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"]
    assert token["x-kubernetes-group-version-kind"]["kind"] == "TokenRequest"
    assert paths["/api/v1/namespaces/{name}/finalize"]["put"]["operationId"] == "replaceCoreV1NamespaceFinalize"
    watch = paths["/api/v1/watch/namespaces/{namespace}/pods"]["get"]
    assert watch["x-kubernetes-action"] == "watchlist" and watch["responses"]["200"]["schema"]["$ref"].endswith(
        "WatchEvent")


def test_operations_match_the_official_client():
    """The client is generated from upstream's swagger: same operation ids, paths, methods, params, bodies."""
    kc = pytest.importorskip("kubernetes.client")

    def snake(s: str) -> str:
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", s).lower()   # CSIDriver: csi_driver

    checked = 0
    for path, item in oa.openapi_v2()["paths"].items():
        for method, op in item.items():
            if method == "parameters" or "/watch/" in path:  # the client drops the deprecated watch paths
                continue
            verb, group, version, rest = re.fullmatch(r"([a-z]+)((?:[A-Z][a-z]+)+?)(V\d+)(\w*)",
                                                      op["operationId"]).groups()
            api = getattr(kc, f"{group}{version}Api")
            src = inspect.getsource(getattr(api, f"{snake(verb + rest)}_with_http_info"))
            call_path, call_method = re.search(r"call_api\(\s*'([^']+)', '(\w+)'", src).groups()
            assert (call_path, call_method.lower()) == (path, method), op["operationId"]
            client_params = set(re.findall(r"'(\w+)'", re.search(r"all_params = \[(.*?)\]", src, re.S).group(1)))
            ours = {"_continue" if p["name"] == "continue" else snake(p["name"])
                    for p in op["parameters"] + item.get("parameters", [])}
            assert client_params - {"path2"} == ours, op["operationId"]
            if (m := re.search(r"response_type='(\w+)'", src)):
                ref = op["responses"]["200"]["schema"].get("$ref", "str")
                assert m.group(1).endswith(ref.rsplit(".", 1)[-1]), op["operationId"]
            checked += 1
    assert checked > 100


def test_definitions_match_client_models_and_gvk_shape():
    kc = pytest.importorskip("kubernetes.client")
    defs = oa.openapi_v2()["definitions"]
    dep = defs["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert set(defs["io.k8s.api.core.v1.PodSpec"]["properties"]) == set(kc.V1PodSpec.attribute_map.values())
    assert set(defs["io.k8s.api.events.v1.Event"]["properties"]) == set(kc.EventsV1Event.attribute_map.values())
    assert set(defs["io.k8s.api.core.v1.Event"]["properties"]) == set(kc.CoreV1Event.attribute_map.values())
    gvks = defs["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"]
    assert {"group": "apps", "kind": "DeleteOptions", "version": "v1"} in gvks
    for name, d in defs.items():
        for g in d.get("x-kubernetes-group-version-kind", []):
            assert set(g) == {"group", "kind", "version"} and all(isinstance(x, str) for x in g.values()), name
    for name in defs:
        assert re.fullmatch(r"io\.k8s\.(api\.[a-z]+\.v\d|apimachinery\.pkg\.(apis\.meta\.v1|api\.resource|util\.intstr|"
                            r"runtime)|apiextensions-apiserver\.pkg\.apis\.apiextensions\.v1|"
                            r"kube-aggregator\.pkg\.apis\.apiregistration\.v1)\.[A-Z]\w+", name), name


def test_types_and_formats():
    defs = oa.openapi_v2()["definitions"]
    p = lambda d, f: defs[d]["properties"][f]  # noqa: E731
    assert defs[oa.QUANTITY]["type"] == "string"
    assert defs[oa.INT_OR_STRING].items() >= {"type": "string", "format": "int-or-string"}.items()
    assert defs[oa.TIME].items() >= {"type": "string", "format": "date-time"}.items()
    assert p("io.k8s.api.core.v1.ResourceRequirements", "limits")["additionalProperties"] == \
        {"$ref": f"#/definitions/{oa.QUANTITY}"}
    assert p("io.k8s.api.core.v1.EmptyDirVolumeSource", "sizeLimit")["$ref"].endswith("Quantity")
    assert p("io.k8s.api.core.v1.ServicePort", "targetPort")["$ref"].endswith("IntOrString")
    assert p("io.k8s.api.apps.v1.RollingUpdateDeployment", "maxSurge")["$ref"].endswith("IntOrString")
    assert p("io.k8s.api.core.v1.HTTPGetAction", "port")["$ref"].endswith("IntOrString")
    assert p("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp")["$ref"].endswith(".Time")
    assert p("io.k8s.api.coordination.v1.LeaseSpec", "renewTime")["$ref"].endswith(".MicroTime")
    assert p("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry", "fieldsV1")["$ref"].endswith("FieldsV1")
    assert p("io.k8s.api.apps.v1.DeploymentSpec", "replicas")["format"] == "int32"
    assert p("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "generation")["format"] == "int64"
    assert p("io.k8s.api.core.v1.PodSpec", "terminationGracePeriodSeconds")["format"] == "int64"
    assert p("io.k8s.api.core.v1.Secret", "data")["additionalProperties"] == {"type": "string", "format": "byte"}
    assert p("io.k8s.api.core.v1.ConfigMap", "data")["additionalProperties"] == {"type": "string"}
    assert defs["io.k8s.api.apps.v1.DeploymentSpec"]["required"] == ["selector", "template"]
    assert defs["io.k8s.api.core.v1.Container"]["required"] == ["name"]
    assert "required" not in defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    assert "desired pods" in p("io.k8s.api.apps.v1.DeploymentSpec", "replicas")["description"].lower()
    v3 = oa.openapi_v3("", "v1")["components"]["schemas"]
    assert v3[oa.INT_OR_STRING]["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert v3[oa.QUANTITY]["oneOf"] == [{"type": "string"}, {"type": "number"}]
    target = v3["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]
    assert target["allOf"] == [{"$ref": f"#/components/schemas/{oa.INT_OR_STRING}"}] and target["description"]


@pytest.mark.parametrize("definition,field,strategy,key,list_type,map_keys", [
    ("core.v1.PodSpec", "containers", "merge", "name", "map", ["name"]),
    ("core.v1.PodSpec", "initContainers", "merge", "name", "map", ["name"]),
    ("core.v1.PodSpec", "ephemeralContainers", "merge", "name", "map", ["name"]),
    ("core.v1.PodSpec", "volumes", "merge,retainKeys", "name", "map", ["name"]),
    ("core.v1.PodSpec", "imagePullSecrets", "merge", "name", "map", ["name"]),
    ("core.v1.PodSpec", "hostAliases", "merge", "ip", "map", ["ip"]),
    ("core.v1.PodSpec", "topologySpreadConstraints", "merge", "topologyKey", "map",
     ["topologyKey", "whenUnsatisfiable"]),
    ("core.v1.PodSpec", "tolerations", None, None, "atomic", None),
    ("core.v1.Container", "env", "merge", "name", "map", ["name"]),
    ("core.v1.Container", "volumeMounts", "merge", "mountPath", "map", ["mountPath"]),
    ("core.v1.Container", "ports", "merge", "containerPort", "map", ["containerPort", "protocol"]),
    ("core.v1.ServiceSpec", "ports", "merge", "port", "map", ["port", "protocol"]),
    ("core.v1.PodStatus", "conditions", "merge", "type", "map", ["type"]),
    ("apps.v1.DeploymentStatus", "conditions", "merge", "type", "map", ["type"]),
    ("batch.v1.JobStatus", "conditions", "merge", "type", "atomic", None),
    ("apps.v1.DeploymentSpec", "strategy", "retainKeys", None, None, None),
])
def test_strategic_merge_metadata(definition, field, strategy, key, list_type, map_keys):
    for name, schema in ((f"io.k8s.api.{definition}", oa.openapi_v2()["definitions"]),
                         (f"io.k8s.api.{definition}", _v3_schemas(definition))):
        prop = schema[name]["properties"][field]
        assert prop.get("x-kubernetes-patch-strategy") == strategy
        assert prop.get("x-kubernetes-patch-merge-key") == key
        assert prop.get("x-kubernetes-list-type") == list_type
        assert prop.get("x-kubernetes-list-map-keys") == map_keys


def _v3_schemas(definition: str) -> dict:
    group = {"core": "", "apps": "apps", "batch": "batch"}[definition.split(".")[0]]
    return oa.openapi_v3(group, "v1")["components"]["schemas"]


def test_meta_patch_metadata():
    meta = oa.openapi_v2()["definitions"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["finalizers"]["x-kubernetes-patch-strategy"] == "merge"
    assert "x-kubernetes-patch-merge-key" not in meta["finalizers"]
    assert meta["ownerReferences"]["x-kubernetes-patch-merge-key"] == "uid"


# --- protobuf ----------------------------------------------------------------------------------

def _fields(data: bytes) -> list[tuple[int, Any]]:
    """A minimal protobuf wire decoder: (field number, bytes or int) pairs."""
    out, i = [], 0

    def varint() -> int:
        nonlocal i
        n = shift = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return n
    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.append((field, varint()))
        elif wire == 2:
            n = varint()
            out.append((field, data[i:i + n]))
            i += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _get(msg: bytes, field: int) -> list:
    return [v for f, v in _fields(msg) if f == field]


def test_v2_protobuf_matches_json_document():
    doc, pb = oa.openapi_v2(), oa.openapi_v2_protobuf()
    assert _get(pb, 1) == [b"2.0"]
    assert _get(_get(pb, 2)[0], 2) == [b"v1.32.0"]
    named_paths = _get(_get(pb, 8)[0], 2)
    assert [_get(p, 1)[0].decode() for p in named_paths] == list(doc["paths"])
    named_defs = _get(_get(pb, 9)[0], 1)
    assert [_get(d, 1)[0].decode() for d in named_defs] == list(doc["definitions"])
    # the Deployment schema carries its GVK as a YAML/JSON vendor extension (field 31)
    dep = next(_get(d, 2)[0] for d in named_defs if _get(d, 1)[0] == b"io.k8s.api.apps.v1.Deployment")
    ext = {_get(e, 1)[0].decode(): json.loads(_get(_get(e, 2)[0], 2)[0]) for e in _get(dep, 31)}
    assert ext == {"x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}]}
    assert _get(_get(dep, 22)[0], 1) == [b"object"]
    # the deployment PATCH operation: GVK extension (13) and a fieldValidation query parameter (8)
    item = next(_get(p, 2)[0] for p in named_paths
                if _get(p, 1)[0] == b"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    patch = _get(item, 8)[0]
    assert _get(patch, 5) == [b"patchAppsV1NamespacedDeployment"]
    names = []
    for param in _get(patch, 8):
        p = _get(param, 1)[0]
        if _get(p, 2):  # non-body: query sub-schema (3), name = 4
            names.append(_get(_get(_get(p, 2)[0], 3)[0], 4)[0].decode())
    assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= set(names)
    gvk = {_get(e, 1)[0].decode(): json.loads(_get(_get(e, 2)[0], 2)[0]) for e in _get(patch, 13)}
    assert gvk["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment", "version": "v1"}
    assert gvk["x-kubernetes-action"] == "patch"


def test_openapi_v2_response_negotiation():
    body, ct = oa.openapi_v2_response("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert body == oa.openapi_v2_protobuf() and ct == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert oa.openapi_v2_response("application/json") == (oa.openapi_v2_bytes(), "application/json")
    assert oa.openapi_v2_response(None)[1] == "application/json"


# --- unknown fields ----------------------------------------------------------------------------

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}, "annotations": {"any": "thing"},
                 "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
                 "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "1"}]},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
             "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                 {"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                  "resources": {"limits": {"cpu": "500m", "memory": 1073741824, "nvidia.com/gpu": 1}},
                  "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
                  "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}},
    "status": {"conditions": [{"type": "Available", "status": "True"}]},
}


def test_unknown_fields_accepts_valid_objects():
    assert oa.unknown_fields("apps/v1", "Deployment", DEPLOYMENT) == []
    svc = {"apiVersion": "v1", "kind": "Service", "spec": {"selector": {"a": "b"}, "ports": [
        {"port": 80, "targetPort": 8080}, {"port": 81, "targetPort": "web", "nodePort": 30001}]}}
    assert oa.unknown_fields("v1", "Service", svc) == []
    assert oa.unknown_fields("v1", "ConfigMap", {"data": {"x.y": "z"}, "binaryData": {"k": "AA=="}}) == []
    assert oa.unknown_fields("v1", "Secret", {"data": {"k": "dg=="}, "stringData": {"a": "b"}, "type": "x"}) == []
    assert oa.unknown_fields("v1", "Pod", {"spec": {"containers": None, "nodeSelector": {"k": "v"}}}) == []


def test_unknown_fields_reports_typos_at_every_depth_in_document_order():
    obj = json.loads(json.dumps(DEPLOYMENT))
    obj["bogus"] = 1
    obj["metadata"]["nme"] = "x"
    obj["metadata"]["managedFields"][0]["oops"] = True
    obj["spec"]["replica"] = 3
    c = obj["spec"]["template"]["spec"]["containers"]
    c.append({"name": "d", "imagee": "busybox"})
    c[0]["ports"][0]["prot"] = "TCP"
    c[0]["env"][0]["valueFrom"]["fieldRef"]["bad"] = 1
    obj["status"]["conditions"][0]["reason2"] = "x"
    assert oa.unknown_fields("apps/v1", "Deployment", obj) == [
        ".metadata.managedFields[0].oops", ".metadata.nme", ".spec.template.spec.containers[0].ports[0].prot",
        ".spec.template.spec.containers[0].env[0].valueFrom.fieldRef.bad",
        ".spec.template.spec.containers[1].imagee", ".spec.replica", ".status.conditions[0].reason2", ".bogus"]


def test_unknown_fields_other_kinds_and_bodies():
    assert oa.unknown_fields("v1", "Event", {"message": "m", "note": "n"}) == [".note"]
    assert oa.unknown_fields("events.k8s.io/v1", "Event", {"note": "n", "message": "m"}) == [".message"]
    assert oa.unknown_fields("autoscaling/v1", "Scale", {"spec": {"replicas": 1, "x": 1}}) == [".spec.x"]
    assert oa.unknown_fields("autoscaling/v2", "HorizontalPodAutoscaler", {"spec": {"metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50,
                                                                    "averageValue": "1", "avg": 1}}}]}}) == \
        [".spec.metrics[0].resource.target.avg"]
    assert oa.unknown_fields("policy/v1", "Eviction", {"deleteOptions": {"gracePeriodSeconds": 0, "y": 1}}) == \
        [".deleteOptions.y"]
    assert oa.unknown_fields("apps/v1", "DeleteOptions", {"propagationPolicy": "Orphan", "z": 1}) == [".z"]
    assert oa.unknown_fields("v1", "List", {"items": [], "x": 1}) == []
    assert oa.unknown_fields("example.com/v1", "Widget", {"x": 1}) == []


# --- timing ------------------------------------------------------------------------------------

def test_build_and_serve_times_are_small():
    code = ("import time; t=time.perf_counter(); from apiserver.api import openapi as o; "
            "a=time.perf_counter(); o.openapi_v2_bytes(); b=time.perf_counter(); o.openapi_v3_index(); "
            "c=time.perf_counter(); o.openapi_v2_protobuf(); d=time.perf_counter(); "
            "print(f'{a-t:.3f} {b-a:.3f} {c-b:.3f} {d-c:.3f}')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    t0 = time.perf_counter()
    for _ in range(100):
        oa.openapi_v2_bytes(), oa.openapi_v3_bytes("apps", "v1"), oa.openapi_v3_index()
    serve = (time.perf_counter() - t0) / 100
    t0 = time.perf_counter()
    for _ in range(100):
        oa.unknown_fields("apps/v1", "Deployment", DEPLOYMENT)
    check = (time.perf_counter() - t0) / 100
    print(f"\nimport {out[0]}s, v2 build+serialize {out[1]}s, v3 docs+index {out[2]}s, v2 protobuf {out[3]}s; "
          f"serve (cached) {serve * 1e6:.1f}us; unknown_fields(Deployment) {check * 1e6:.0f}us; "
          f"sizes: v2 json {len(oa.openapi_v2_bytes())} B, v2 pb {len(oa.openapi_v2_protobuf())} B, "
          + ", ".join(f"{g or 'core'}/{v} {len(oa.openapi_v3_bytes(g, v))} B" for g, v in GVS))


# --- every row, and the kinds the scraper could not describe ----------------------------------------

@pytest.mark.parametrize("r", [r for r in RESOURCES if r.group != "metrics.k8s.io"],
                         ids=lambda r: f"{r.group or 'core'}/{r.version}/{r.kind}")
def test_every_row_has_a_described_schema_and_paths_in_v2_and_v3(r: Resource):
    name, definition = _def_of(r)
    assert definition["description"] and "$ref" in definition["properties"]["metadata"]
    _, coll, item = _paths(r)
    ours = {p for p in (coll, item) if p in oa.openapi_v2()["paths"]}
    assert ours, r
    v3 = oa.openapi_v3(r.group, r.version)
    assert ours <= set(v3["paths"]) and name in v3["components"]["schemas"]
    assert not oa.unknown_fields(r.api_version, r.kind, {"apiVersion": r.api_version, "kind": r.kind,
                                                         "metadata": {"name": "x"}})


def _prop(defname: str, *path: str) -> dict:
    defs = oa.openapi_v2()["definitions"]
    node = defs[defname]
    for field in path:
        node = node["properties"][field]
        ref = node.get("$ref") or node.get("items", {}).get("$ref")
        if ref and field != path[-1]:
            node = defs[ref.rsplit("/", 1)[1]]
    return node


def test_statefulset_cronjob_and_pdb_are_described():
    vct = _prop("io.k8s.api.apps.v1.StatefulSet", "spec", "volumeClaimTemplates")
    assert vct["type"] == "array" and vct["items"]["$ref"].endswith("core.v1.PersistentVolumeClaim")
    assert "volumeclaimtemplates is a list of claims" in vct["description"].lower()
    assert vct["x-kubernetes-list-type"] == "atomic"
    schedule = _prop("io.k8s.api.batch.v1.CronJob", "spec", "schedule")
    assert schedule["type"] == "string" and "cron format" in schedule["description"].lower()
    assert oa.openapi_v2()["definitions"]["io.k8s.api.batch.v1.CronJobSpec"]["required"] == ["schedule",
                                                                                             "jobTemplate"]
    pdb = oa.openapi_v2()["definitions"]["io.k8s.api.policy.v1.PodDisruptionBudget"]
    assert pdb["description"].startswith("PodDisruptionBudget is an object to define the max disruption")
    assert _prop("io.k8s.api.policy.v1.PodDisruptionBudget", "spec", "minAvailable")["$ref"].endswith("IntOrString")
    crd = oa.openapi_v3("apiextensions.k8s.io", "v1")["components"]["schemas"]
    assert "openAPIV3Schema" in crd["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation"][
        "properties"]
    assert oa.unknown_fields("batch/v1", "CronJob", {"spec": {"schedule": "* * * * *", "jobTemplate": {
        "spec": {"template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}}}}, "suspended": True}}) == [
        ".spec.jobTemplate.spec.template.spec.containers[0].imagee", ".spec.suspended"]


def test_subresources_of_the_new_rows():
    paths = oa.openapi_v2()["paths"]
    approval = paths["/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval"]
    assert approval["put"]["operationId"] == "replaceCertificatesV1CertificateSigningRequestApproval"
    eph = paths["/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers"]["patch"]
    assert eph["operationId"] == "patchCoreV1NamespacedPodEphemeralcontainers"
    rc_scale = paths["/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale"]["get"]
    assert rc_scale["responses"]["200"]["schema"]["$ref"].endswith("autoscaling.v1.Scale")
    review = paths["/apis/authentication.k8s.io/v1/tokenreviews"]
    assert set(review) == {"post", "parameters"}


# --- custom resources ---------------------------------------------------------------------------

CRONTAB = Resource("stable.example.com", "v1", "CronTab", "crontabs", True, subresources=("status", "scale"))
CRONTAB_SCHEMA = {
    "type": "object", "description": "A CronTab runs a command on a schedule.",
    "properties": {
        "spec": {"type": "object", "properties": {
            "cronSpec": {"type": "string", "description": "When to run, in cron format.", "nullable": True},
            "replicas": {"type": "integer", "minimum": 1},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "required": ["name"], "properties": {
                          "name": {"type": "string"}, "port": {"x-kubernetes-int-or-string": True,
                                                               "anyOf": [{"type": "integer"}, {"type": "string"}]}}}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                         "additionalProperties": {"type": "string"}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "template": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {
                "spec": {"type": "object", "properties": {"image": {"type": "string"}}}}}}},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}},
}


@pytest.fixture
def crontab() -> Iterator[Resource]:
    oa.openapi_v2(), oa.openapi_v3_index()   # built before: registering must invalidate them
    oa.register_custom(CRONTAB, CRONTAB_SCHEMA)
    try:
        yield CRONTAB
    finally:
        oa.unregister_custom(CRONTAB)


def test_custom_kind_is_published_in_v2_and_v3(crontab: Resource):
    v2 = oa.openapi_v2()
    d = v2["definitions"]["com.example.stable.v1.CronTab"]
    assert d["x-kubernetes-group-version-kind"] == [{"group": "stable.example.com", "kind": "CronTab",
                                                     "version": "v1"}]
    assert d["description"] == "A CronTab runs a command on a schedule."
    assert d["properties"]["metadata"]["$ref"].endswith("meta.v1.ObjectMeta") and "kind" in d["properties"]
    cron = d["properties"]["spec"]["properties"]["cronSpec"]
    assert cron == {"type": "string", "description": "When to run, in cron format."}   # v2 has no nullable
    lst = v2["definitions"]["com.example.stable.v1.CronTabList"]
    assert lst["properties"]["items"]["items"] == {"$ref": "#/definitions/com.example.stable.v1.CronTab"}
    paths = v2["paths"]
    item = "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"
    assert paths[item]["patch"]["operationId"] == "patchStableExampleComV1NamespacedCronTab"
    assert any(p["name"] == "fieldValidation" for p in paths[item]["patch"]["parameters"])
    assert paths[f"{item}/scale"]["get"]["responses"]["200"]["schema"]["$ref"].endswith("autoscaling.v1.Scale")
    assert "/apis/stable.example.com/v1/crontabs" in paths
    assert "apis/stable.example.com/v1" in oa.openapi_v3_index()["paths"]
    v3 = oa.openapi_v3("stable.example.com", "v1")
    schemas = v3["components"]["schemas"]
    spec = schemas["com.example.stable.v1.CronTab"]["properties"]["spec"]["properties"]
    assert spec["ports"]["x-kubernetes-list-map-keys"] == ["name"]
    assert spec["cronSpec"]["nullable"] is True and "anyOf" in spec["ports"]["items"]["properties"]["port"]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert not any(n.startswith("io.k8s.api.apps.") for n in schemas)
    definitions = pytest.importorskip("schemathesis.specs.openapi.definitions")
    assert not list(definitions.SWAGGER_20_VALIDATOR.iter_errors(orjson.loads(oa.openapi_v2_bytes())))
    assert not list(definitions.OPENAPI_30_VALIDATOR.iter_errors(v3))
    pb = oa.openapi_v2_protobuf()
    assert b"com.example.stable.v1.CronTab" in pb


def test_custom_kind_unknown_fields(crontab: Resource):
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "a", "labelz": {}},
           "spec": {"cronSpec": "* * * * *", "replica": 1, "ports": [{"name": "p", "port": "web", "x": 1}],
                    "selector": {"a": "b"}, "extra": {"anything": {"goes": [1]}},
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "nam": "q"},
                                 "spec": {"image": "x", "imag": "y"}, "status": {}}},
           "status": {"replicas": 1, "ready": 1}, "top": 1}
    assert oa.unknown_fields("stable.example.com/v1", "CronTab", obj) == [
        ".metadata.labelz", ".spec.replica", ".spec.ports[0].x", ".spec.template.metadata.nam",
        ".spec.template.spec.imag", ".spec.template.status", ".status.ready", ".top"]
    assert oa.unknown_fields("stable.example.com/v1", "CronTabList", {"items": [{"spec": {"bad": 1}}]}) == \
        [".items[0].spec.bad"]


def test_custom_kind_without_a_schema_keeps_every_field():
    widget = Resource("example.com", "v1alpha1", "Widget", "widgets", False)
    oa.register_custom(widget, None)
    try:
        assert oa.unknown_fields("example.com/v1alpha1", "Widget", {"spec": {"any": 1}, "more": 2}) == []
        assert "/apis/example.com/v1alpha1/widgets/{name}" in oa.openapi_v2()["paths"]
    finally:
        oa.unregister_custom(widget)


def test_unregister_withdraws_the_kind_and_its_group_version(crontab: Resource):
    assert "apis/stable.example.com/v1" in oa.openapi_v3_index()["paths"]
    oa.unregister_custom(crontab)
    assert "apis/stable.example.com/v1" not in oa.openapi_v3_index()["paths"]
    assert oa.openapi_v3("stable.example.com", "v1") is None
    assert "com.example.stable.v1.CronTab" not in oa.openapi_v2()["definitions"]
    assert not any("stable.example.com" in p for p in oa.openapi_v2()["paths"])
    assert oa.unknown_fields("stable.example.com/v1", "CronTab", {"x": 1}) == []
    oa.unregister_custom(crontab)   # a second time: nothing to do


def test_generated_schema_is_current(tmp_path):
    """schema.json.gz is what tools/gen_schema.py makes of the spec and today's resource table."""
    root = Path(__file__).resolve().parents[2]
    swagger = root.parent / "shared" / "reference" / "kubernetes-1.32-swagger.json"
    if not swagger.exists():
        pytest.skip("the 1.32 spec is not checked out next to the project")
    out = tmp_path / "schema.json.gz"
    subprocess.run([sys.executable, str(root / "tools" / "gen_schema.py"), str(swagger), str(out)], check=True,
                   capture_output=True)
    assert gzip.decompress(out.read_bytes()) == gzip.decompress((root / "apiserver/api/schema.json.gz").read_bytes()), \
        "run tools/gen_schema.py"
