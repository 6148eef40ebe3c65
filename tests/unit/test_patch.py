"""PATCH content types: strategic merge (as kubectl sends it), JSON merge patch and JSON patch."""
from __future__ import annotations

import copy
import json

import pytest

from kubeling.api.errors import StatusError
from apiserver.api.patch import apply_patch, list_map_keys, merge_key, shape_at

POD = ("v1", "Pod")
DEPLOY = ("apps/v1", "Deployment")
SMP, MERGE, JSONP = ("application/strategic-merge-patch+json", "application/merge-patch+json",
                     "application/json-patch+json")


def pod() -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"},
                                                           "finalizers": ["a/x", "b/y"]},
            "spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.25", "args": ["-g", "daemon off;"],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "busybox:1.36"}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "volumes": [{"name": "data", "emptyDir": {}}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"},
                                      {"type": "PodScheduled", "status": "True"}]}}


def smp(obj: dict, patch: dict, kind=POD) -> dict:
    return apply_patch(SMP, obj, json.dumps(patch).encode(), kind)


def names(items: list) -> list:
    return [i["name"] for i in items]


# --- patch metadata -----------------------------------------------------------------------------

def test_patch_metadata_found_by_type_through_templates():
    assert merge_key(POD, ("spec", "containers")) == "name"
    assert merge_key(DEPLOY, ("spec", "template", "spec", "containers")) == "name"
    assert merge_key(DEPLOY, ("spec", "template", "spec", "containers", "env")) == "name"
    assert merge_key(DEPLOY, ("spec", "template", "spec", "containers", "ports")) == "containerPort"
    assert merge_key(DEPLOY, ("spec", "template", "spec", "containers", "volumeMounts")) == "mountPath"
    assert merge_key(("batch/v1", "Job"), ("spec", "template", "spec", "initContainers")) == "name"
    assert merge_key(POD, ("spec", "volumes")) == "name"
    assert merge_key(POD, ("spec", "hostAliases")) == "ip"
    assert merge_key(POD, ("metadata", "ownerReferences")) == "uid"
    assert merge_key(("v1", "Service"), ("spec", "ports")) == "port"
    assert merge_key(("v1", "Node"), ("status", "conditions")) == "type"
    assert merge_key(DEPLOY, ("status", "conditions")) == "type"
    for atomic in (("spec", "tolerations"), ("spec", "containers", "args"), ("spec", "containers", "command"),
                   ("spec", "containers", "envFrom"), ("metadata", "finalizers")):
        assert merge_key(POD, atomic) is None
    assert merge_key(("v1", "Endpoints"), ("subsets", "addresses")) is None
    assert list_map_keys(DEPLOY, ("spec", "template", "spec", "containers", "ports")) == ("containerPort", "protocol")
    assert list_map_keys(("v1", "Service"), ("spec", "ports")) == ("port", "protocol")
    assert shape_at(POD, ("metadata", "finalizers")).relation == "set"
    assert shape_at(DEPLOY, ("spec", "selector")).atomic


# --- strategic merge patch --------------------------------------------------------------------

def test_smp_changes_one_container_by_name():
    orig = pod()
    out = smp(orig, {"spec": {"containers": [{"name": "sidecar", "image": "busybox:1.37"}]}})
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [("nginx", "nginx:1.25"),
                                                                         ("sidecar", "busybox:1.37")]
    assert out["spec"]["containers"][0] == pod()["spec"]["containers"][0]
    assert orig == pod(), "the original is not mutated"


def test_smp_adds_env_var_merged_by_name():
    out = smp(pod(), {"spec": {"containers": [{"name": "nginx", "env": [{"name": "C", "value": "3"},
                                                                          {"name": "A", "value": "one"}]}]}})
    env = out["spec"]["containers"][0]["env"]
    assert {e["name"]: e["value"] for e in env} == {"A": "one", "B": "2", "C": "3"}
    # without ordering information, patched items come first and live-only ones keep their order
    assert names(env) == ["C", "A", "B"]


def test_smp_set_element_order_as_kubectl_sends_it():
    patch = {"spec": {"containers": [{"name": "nginx",
                                      "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                                      "env": [{"name": "C", "value": "3"}]}],
                      "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}]}}
    out = smp(pod(), patch)
    assert names(out["spec"]["containers"][0]["env"]) == ["A", "B", "C"]
    reordered = smp(pod(), {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}]}})
    assert names(reordered["spec"]["containers"]) == ["sidecar", "nginx"]
    assert "$setElementOrder/containers" not in reordered["spec"]


def test_smp_set_element_order_mismatch_is_an_error():
    with pytest.raises(StatusError) as e:
        smp(pod(), {"spec": {"$setElementOrder/containers": [{"name": "nginx"}, {"name": "x"}],
                             "containers": [{"name": "x", "image": "i"}, {"name": "nginx", "image": "j"}]}})
    assert e.value.code == 400 and e.value.message.startswith("The order in patch list:")


def test_smp_delete_port_by_merge_key():
    out = smp(pod(), {"spec": {"containers": [{"name": "nginx",
                                               "ports": [{"containerPort": 443, "$patch": "delete"}]}]}})
    assert out["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_smp_delete_list_item_and_map():
    out = smp(pod(), {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}})
    assert names(out["spec"]["containers"]) == ["nginx"]
    out = smp(pod(), {"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}


def test_smp_replace_directives():
    out = smp(pod(), {"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert out["metadata"]["labels"] == {"only": "this"}
    out = smp(pod(), {"spec": {"containers": [{"name": "solo", "image": "x"}, {"$patch": "replace"}]}})
    assert out["spec"]["containers"] == [{"name": "solo", "image": "x"}]


def test_smp_retain_keys_clears_other_strategy_fields():
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    out = smp(dep, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}},
              DEPLOY)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    vol = smp(pod(), {"spec": {"volumes": [{"name": "data", "$retainKeys": ["name", "configMap"],
                                            "configMap": {"name": "cm"}}]}})
    assert vol["spec"]["volumes"] == [{"name": "data", "configMap": {"name": "cm"}}]
    with pytest.raises(StatusError) as e:
        smp(dep, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}}, DEPLOY)
    assert (e.value.code, e.value.reason, e.value.message) == (400, "BadRequest", "invalid patch format of retainKeys")


def test_smp_primitive_lists():
    out = smp(pod(), {"metadata": {"finalizers": ["c/z", "a/x"]}})
    assert sorted(out["metadata"]["finalizers"]) == ["a/x", "b/y", "c/z"]
    out = smp(pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}})
    assert out["metadata"]["finalizers"] == ["b/y"]
    out = smp(pod(), {"spec": {"containers": [{"name": "nginx", "args": ["-v"]}]}})
    assert out["spec"]["containers"][0]["args"] == ["-v"], "lists without a patch strategy are replaced"
    out = smp(pod(), {"spec": {"tolerations": [{"key": "other", "operator": "Exists"}]}})
    assert out["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"}]


def test_smp_null_deletes_and_nested_directives_are_not_stored():
    out = smp(pod(), {"metadata": {"labels": {"tier": None, "new": "v"}}, "spec": {"nodeName": None}})
    assert out["metadata"]["labels"] == {"app": "web", "new": "v"}
    out = smp(pod(), {"spec": {"containers": [{"name": "new", "image": "x", "env": [{"name": "E", "value": None}],
                                               "ports": [{"containerPort": 1, "$patch": "delete"}]}]}})
    assert out["spec"]["containers"][0] == {"name": "new", "image": "x", "env": [{"name": "E"}], "ports": []}


def test_smp_through_deployment_template_and_status_conditions():
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}},
           "status": {"conditions": [{"type": "Available", "status": "False"}, {"type": "Progressing",
                                                                                "status": "True"}]}}
    out = smp(dep, {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}},
                    "status": {"conditions": [{"type": "Available", "status": "True"}]}}, DEPLOY)
    assert [c["image"] for c in out["spec"]["template"]["spec"]["containers"]] == ["1", "2"]
    assert {c["type"]: c["status"] for c in out["status"]["conditions"]} == {"Available": "True",
                                                                            "Progressing": "True"}


def test_smp_other_merge_keys():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "ownerReferences": [
        {"uid": "1", "name": "a", "kind": "X", "apiVersion": "v1"}]},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}}
    out = smp(svc, {"metadata": {"ownerReferences": [{"uid": "2", "name": "b", "kind": "X", "apiVersion": "v1"}]},
                    "spec": {"ports": [{"port": 443, "targetPort": 9443}]}}, ("v1", "Service"))
    assert [o["uid"] for o in out["metadata"]["ownerReferences"]] == ["2", "1"]
    assert [(p["port"], p["targetPort"]) for p in out["spec"]["ports"]] == [(80, 8080), (443, 9443)]


def test_smp_errors():
    with pytest.raises(StatusError) as e:
        smp(pod(), {"spec": {"containers": [{"image": "x"}]}})
    assert (e.value.code, e.value.message) == (400, "map: map[image:x] does not contain declared merge key: name")
    with pytest.raises(StatusError) as e:
        smp(pod(), {"spec": {"containers": [{"name": "nginx", "$patch": "explode"}]}})
    assert e.value.message == "unknown patch type: explode in map: map[$patch:explode name:nginx]"
    with pytest.raises(StatusError) as e:
        apply_patch(SMP, pod(), b"{not json", POD)
    assert (e.value.code, e.value.reason) == (400, "BadRequest")
    with pytest.raises(StatusError) as e:
        apply_patch(SMP, pod(), b"[1]", POD)
    assert e.value.message == "json: cannot unmarshal array into Go value of type map[string]interface {}"
    with pytest.raises(StatusError) as e:
        smp(pod(), {"metadata": {"$deleteFromPrimitiveList": ["a/x"]}})
    assert (e.value.code, e.value.message) == (400, "invalid patch format of primitive list")


# --- JSON merge patch -------------------------------------------------------------------------

def test_merge_patch_null_deletes_and_lists_replace():
    out = apply_patch(MERGE, pod(), json.dumps({"metadata": {"labels": {"tier": None}, "annotations": {
        "a": "b", "gone": None}}, "spec": {"containers": [{"name": "only", "image": "x"}]}}).encode(), POD)
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["metadata"]["annotations"] == {"a": "b"}
    assert out["spec"]["containers"] == [{"name": "only", "image": "x"}]
    assert out["spec"]["tolerations"] == pod()["spec"]["tolerations"]


# --- JSON patch -------------------------------------------------------------------------------

def test_json_patch_test_move_and_failures():
    ops = [{"op": "test", "path": "/metadata/name", "value": "web"},
           {"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/labels/layer"},
           {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1.27"},
           {"op": "add", "path": "/spec/containers/0/env/-", "value": {"name": "C", "value": "3"}}]
    orig = pod()
    out = apply_patch(JSONP, orig, json.dumps(ops).encode(), POD)
    assert out["metadata"]["labels"] == {"app": "web", "layer": "fe"}
    assert out["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert names(out["spec"]["containers"][0]["env"]) == ["A", "B", "C"]
    assert orig == pod()
    for bad in ([{"op": "test", "path": "/metadata/name", "value": "other"}],
                [{"op": "remove", "path": "/spec/nope/0"}],
                [{"op": "replace", "path": "/metadata/missing", "value": 1}],
                [{"op": "frobnicate", "path": "/metadata"}]):
        with pytest.raises(StatusError) as e:
            apply_patch(JSONP, pod(), json.dumps(bad).encode(), POD)
        assert (e.value.code, e.value.reason) == (422, "Invalid")
        assert e.value.message == "the server rejected our request due to an error in our request"
    with pytest.raises(StatusError) as e:
        apply_patch(JSONP, pod(), b'{"op": "add"}', POD)
    assert (e.value.code, e.value.message) == (400, "json: cannot unmarshal object into Go value of type "
                                                     "jsonpatch.Patch")
    with pytest.raises(StatusError) as e:
        apply_patch(JSONP, pod(), b"[", POD)
    assert (e.value.code, e.value.message) == (400, "unexpected end of JSON input")


def test_unknown_patch_type_and_unknown_kind():
    with pytest.raises(StatusError) as e:
        apply_patch("application/xml", pod(), b"{}", POD)
    assert e.value.code == 415
    # kinds without a schema still merge maps and replace lists
    obj = {"apiVersion": "x/v1", "kind": "Thing", "spec": {"a": {"b": 1}, "l": [1, 2]}}
    out = apply_patch(SMP, copy.deepcopy(obj), b'{"spec": {"a": {"c": 2}, "l": [3]}}', ("x/v1", "Thing"))
    assert out["spec"] == {"a": {"b": 1, "c": 2}, "l": [3]}


def test_smp_explicit_merge_directive_is_the_default():
    out = smp(pod(), {"metadata": {"labels": {"$patch": "merge", "new": "v"}},
                      "spec": {"containers": [{"name": "sidecar", "$patch": "merge", "image": "busybox:2"}]}})
    assert out["metadata"]["labels"] == {"app": "web", "tier": "fe", "new": "v"}
    assert out["spec"]["containers"][1] == {"name": "sidecar", "image": "busybox:2"}


def test_custom_kind_shapes_follow_the_registered_schema():
    from apiserver.api import schema
    from kubeling.api.resources import Resource
    widget = Resource("example.com", "v1", "Widget", "widgets", True)
    kind = ("example.com/v1", "Widget")
    assert shape_at(kind, ("spec",)).form == "any"
    schema.register_custom(widget, {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id", "zone"],
                  "items": {"type": "object", "properties": {"id": {"type": "integer"}, "zone": {"type": "string"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "size": {"x-kubernetes-int-or-string": True}}}}})
    try:
        assert shape_at(kind, ("spec",)).form == "struct"
        assert list_map_keys(kind, ("spec", "items")) == ("id", "zone")
        assert shape_at(kind, ("spec", "tags")).relation == "set"
        assert shape_at(kind, ("spec", "size")).form == "scalar"
        assert shape_at(kind, ("spec", "items", "zone")).form == "scalar"
    finally:
        schema.unregister_custom(widget)
    assert shape_at(kind, ("spec",)).form == "any"
