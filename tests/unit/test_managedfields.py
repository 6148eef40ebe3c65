"""managedFields bookkeeping and server-side apply."""
from __future__ import annotations

import copy
import json

import pytest

from kubeling.api.errors import StatusError
from apiserver.api.managedfields import (
    LAST_APPLIED, decode_fields, encode_fields, managed_fields, parse_apply_body, server_side_apply,
    update_managed_fields,
)

T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"

NGINX = b"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deploy
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"""

# What a 1.32 apiserver records for `kubectl apply --server-side` of NGINX.
NGINX_FIELDS = {
    "f:metadata": {"f:labels": {"f:app": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {'k:{"name":"nginx"}': {
                ".": {}, "f:image": {}, "f:name": {},
                "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}}}}}


def served(obj: dict) -> dict:
    """What the apiserver would store after creating an applied object: server metadata and defaults."""
    obj = copy.deepcopy(obj)
    obj["metadata"].update(namespace="default", uid="0d8e", resourceVersion="7", generation=1,
                           creationTimestamp=T0)
    c = obj["spec"]["template"]["spec"]["containers"][0]
    c.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log", resources={})
    for p in c.get("ports", []):
        p.setdefault("protocol", "TCP")
    obj["spec"].setdefault("strategy", {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    obj["status"] = {"replicas": 3}
    return obj


def apply(live: dict | None, body: bytes, manager: str = "kubectl", force: bool = False, now: str = T1) -> dict:
    return server_side_apply(live, parse_apply_body(body), manager, force, now)


def entries(obj: dict) -> dict[str, dict]:
    return {f"{e['manager']}/{e['operation']}": e for e in obj["metadata"].get("managedFields", [])}


# --- FieldsV1 ---------------------------------------------------------------------------------

def test_fieldsv1_roundtrip_marks_members_with_children():
    paths = {("f:metadata", "f:labels"), ("f:metadata", "f:labels", "f:app"), ("f:spec", "f:replicas"),
             ("f:metadata", "f:finalizers", 'v:"a/b"')}
    enc = encode_fields(paths)
    assert enc == {"f:metadata": {"f:finalizers": {'v:"a/b"': {}}, "f:labels": {".": {}, "f:app": {}}},
                   "f:spec": {"f:replicas": {}}}
    assert decode_fields(enc) == paths
    assert list(enc["f:metadata"]["f:labels"]) == [".", "f:app"]


# --- server-side apply ------------------------------------------------------------------------

def test_apply_create_records_exact_fieldsv1():
    obj = apply(None, NGINX, now=T0)
    assert obj["spec"]["replicas"] == 3 and obj["metadata"]["name"] == "nginx-deploy"
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1", "fieldsV1": NGINX_FIELDS}]


def test_reapply_unchanged_changes_nothing():
    live = served(apply(None, NGINX, now=T0))
    again = apply(live, NGINX, now=T2)
    assert again == live, "same object, same managedFields, same time"


def test_reapply_json_body_is_the_same_config():
    live = served(apply(None, NGINX, now=T0))
    body = json.dumps(parse_apply_body(NGINX)).encode()
    assert apply(live, body, now=T2) == live


def test_field_dropped_from_config_is_removed():
    live = served(apply(None, NGINX, now=T0))
    out = apply(live, NGINX.replace(b"  replicas: 3\n", b"").replace(b"        ports:\n        - containerPort: 80\n",
                                                                      b""), now=T2)
    assert "replicas" not in out["spec"]
    assert "ports" not in out["spec"]["template"]["spec"]["containers"][0]
    # defaults nobody owns stay; the entry and its time are updated
    assert out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    e = entries(out)["kubectl/Apply"]
    assert e["time"] == T2 and "f:replicas" not in e["fieldsV1"]["f:spec"]


def test_apply_conflict_with_update_manager():
    live = served(apply(None, NGINX, now=T0))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    update_managed_fields(live, scaled, "kubectl-client-side-apply", "Update", "apps/v1", T1)
    assert entries(scaled)["kubectl-client-side-apply/Update"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries(scaled)["kubectl/Apply"]["fieldsV1"]["f:spec"]
    with pytest.raises(StatusError) as e:
        apply(scaled, NGINX, now=T2)
    err = e.value
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
                           ".spec.replicas")
    assert err.details == {"causes": [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                       "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}]}
    # applying the value the other manager set is not a conflict: the field becomes shared
    shared = apply(scaled, NGINX.replace(b"replicas: 3", b"replicas: 5"), now=T2)
    assert shared["spec"]["replicas"] == 5
    assert entries(shared)["kubectl-client-side-apply/Update"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" in entries(shared)["kubectl/Apply"]["fieldsV1"]["f:spec"]


def test_force_takes_ownership():
    live = served(apply(None, NGINX, now=T0))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    scaled["metadata"]["labels"]["team"] = "x"
    update_managed_fields(live, scaled, "kubectl-edit", "Update", "apps/v1", T1)
    out = apply(scaled, NGINX, force=True, now=T2)
    assert out["spec"]["replicas"] == 3
    assert entries(out)["kubectl-edit/Update"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:team": {}}}}
    assert entries(out)["kubectl/Apply"]["fieldsV1"] == NGINX_FIELDS


def test_conflicts_between_appliers_list_every_field():
    live = served(apply(None, NGINX, manager="ci", now=T0))
    other = NGINX.replace(b"replicas: 3", b"replicas: 1").replace(b"nginx:1.14.2", b"nginx:1.25")
    with pytest.raises(StatusError) as e:
        apply(live, other, manager="me", now=T1)
    assert e.value.message == ('Apply failed with 2 conflicts: conflicts with "ci":\n- .spec.replicas\n'
                               '- .spec.template.spec.containers[name="nginx"].image')
    assert [c["field"] for c in e.value.details["causes"]] == [
        ".spec.replicas", '.spec.template.spec.containers[name="nginx"].image']


def test_two_managers_co_own_a_list_item_by_key():
    live = served(apply(None, NGINX, manager="a", now=T0))
    both = apply(live, NGINX, manager="b", now=T1)
    item = 'k:{"name":"nginx"}'
    for who in ("a/Apply", "b/Apply"):
        assert item in entries(both)[who]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    # b adds a second container; a stops applying nginx: it stays because b still owns it
    with_sidecar = NGINX + b"      - name: sidecar\n        image: busybox\n"
    both = apply(both, with_sidecar, manager="b", now=T1)
    no_nginx = NGINX.replace(b"      - name: nginx\n        image: nginx:1.14.2\n        ports:\n"
                             b"        - containerPort: 80\n", b"      - name: sidecar\n        image: busybox\n")
    kept = apply(both, no_nginx, manager="a", now=T2)
    assert [c["name"] for c in kept["spec"]["template"]["spec"]["containers"]] == ["nginx", "sidecar"]
    # once b lets go as well, the item is removed
    gone = apply(kept, no_nginx, manager="b", now=T2)
    assert [c["name"] for c in gone["spec"]["template"]["spec"]["containers"]] == ["sidecar"]


def test_apply_sets_and_ports_keyed_with_defaults():
    svc = b"""\
apiVersion: v1
kind: Service
metadata:
  name: web
  finalizers: [example.com/x]
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"""
    obj = apply(None, svc, manager="m", now=T0)
    assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:finalizers": {'v:"example.com/x"': {}}},
        "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:targetPort": {}}},
                   "f:selector": {}}}


def test_apply_errors():
    with pytest.raises(StatusError) as e:
        apply(None, b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  managedFields: []\n")
    assert (e.value.code, e.value.message) == (400, "metadata.managedFields must be nil")
    with pytest.raises(StatusError) as e:
        apply(None, b"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\nspec:\n"
                    b"  containers:\n  - image: nginx\n")
    assert e.value.code == 400
    assert e.value.message == ('failed to create typed patch object (ns/p; /v1, Kind=Pod): .spec.containers: '
                               'element 0: associative list with keys has an element that omits key field "name" '
                               "(and doesn't have default value)")


def test_parse_apply_body():
    obj = parse_apply_body(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  when: 2024-01-01\n")
    assert obj["data"] == {"when": "2024-01-01"}, "timestamps stay strings"
    assert parse_apply_body(b'{"apiVersion": "v1", "kind": "ConfigMap"}')["metadata"] == {}
    for body, msg in ((b"a: b: c", "error decoding patch: error converting YAML to JSON: yaml: line 1: "
                                   "mapping values are not allowed here"),
                      (b"- 1\n", "error decoding patch: json: cannot unmarshal array into Go value of type "
                                 "map[string]interface {}"),
                      (b"apiVersion: apps/v1\n", "invalid object type: apps/v1, Kind="),
                      (b"kind: Pod\n", "invalid object type: /, Kind=Pod")):
        with pytest.raises(StatusError) as e:
            parse_apply_body(body)
        assert (e.value.code, e.value.reason, e.value.message) == (400, "BadRequest", msg)


def test_kubectl_upgrade_from_client_side_apply_is_not_a_conflict():
    config = parse_apply_body(NGINX)
    live = served(copy.deepcopy(config))
    live["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(config)}
    update_managed_fields(None, live, "kubectl-client-side-apply", "Update", "apps/v1", T0)
    out = apply(live, NGINX.replace(b"replicas: 3", b"replicas: 4"), now=T1)
    assert out["spec"]["replicas"] == 4
    assert "f:replicas" not in json.dumps(entries(out)["kubectl-client-side-apply/Update"]["fieldsV1"])
    last = json.loads(out["metadata"]["annotations"][LAST_APPLIED])
    assert last["spec"]["replicas"] == 4, "the last-applied annotation follows server-side apply"
    # another field manager gets the conflict
    with pytest.raises(StatusError):
        apply(live, NGINX.replace(b"replicas: 3", b"replicas: 4"), manager="other", now=T1)


# --- ordinary writes --------------------------------------------------------------------------

def created_deployment() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "1", "generation": 1,
                         "creationTimestamp": T0, "labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                     "template": {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {},
                                                           "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                                           "securityContext": {}, "restartPolicy": "Always"}}},
            "status": {}}


def test_create_owns_everything_but_server_fields_and_status():
    obj = created_deployment()
    update_managed_fields(None, obj, "kubectl-create", "Update", "apps/v1", T0)
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1", "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {},
                       "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}}, "f:type": {}},
                       "f:template": {
                           "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                           "f:spec": {"f:containers": {'k:{"name":"web"}': {
                               ".": {}, "f:image": {}, "f:name": {}, "f:resources": {},
                               "f:ports": {".": {}, 'k:{"containerPort":80,"protocol":"TCP"}': {
                                   ".": {}, "f:containerPort": {}, "f:protocol": {}}}}},
                               "f:restartPolicy": {}, "f:securityContext": {}}}}}}]


def test_updates_move_fields_between_managers():
    old = created_deployment()
    update_managed_fields(None, old, "kubectl-create", "Update", "apps/v1", T0)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    del new["metadata"]["labels"]
    new["metadata"]["annotations"] = {"note": "x"}
    update_managed_fields(old, new, "kubectl-edit", "Update", "apps/v1", T1)
    mf = entries(new)
    assert mf["kubectl-edit/Update"]["fieldsV1"] == {
        "f:metadata": {"f:annotations": {".": {}, "f:note": {}}},
        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}}
    create = mf["kubectl-create/Update"]["fieldsV1"]
    assert "f:metadata" not in create, "the removed labels left every manager"
    assert "f:image" not in create["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert [e["manager"] for e in new["metadata"]["managedFields"]] == ["kubectl-create", "kubectl-edit"]
    # an update that changes nothing leaves managedFields (and times) alone
    same = copy.deepcopy(new)
    update_managed_fields(new, same, "kubectl-replace", "Update", "apps/v1", T2)
    assert same["metadata"]["managedFields"] == new["metadata"]["managedFields"]


def test_status_subresource_and_same_manager_versions():
    old = created_deployment()
    update_managed_fields(None, old, "kubectl-create", "Update", "apps/v1", T0)
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    new["spec"]["replicas"] = 9   # ignored through /status
    update_managed_fields(old, new, "kube-controller-manager", "Update", "apps/v1", T1, "status")
    e = entries(new)["kube-controller-manager/Update"]
    assert e["subresource"] == "status"
    assert e["fieldsV1"] == {"f:status": {"f:conditions": {".": {}, 'k:{"type":"Available"}': {
        ".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}}
    # the main resource never records status
    again = copy.deepcopy(new)
    again["status"]["replicas"] = 2
    update_managed_fields(new, again, "kubectl-edit", "Update", "apps/v1", T2)
    assert "kubectl-edit/Update" not in entries(again)


def test_reset_managed_fields_with_empty_entry():
    old = created_deployment()
    update_managed_fields(None, old, "kubectl-create", "Update", "apps/v1", T0)
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"] = [{}]
    update_managed_fields(old, new, "kubectl-edit", "Update", "apps/v1", T1)
    assert "managedFields" not in new["metadata"]
    assert managed_fields(new) == {}


def test_apply_to_untracked_object_meets_before_first_apply():
    live = served(parse_apply_body(NGINX))
    live["spec"]["replicas"] = 2
    with pytest.raises(StatusError) as e:
        apply(live, NGINX)
    assert e.value.message == ('Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: '
                               ".spec.replicas")
    out = apply(live, NGINX.replace(b"replicas: 3", b"replicas: 2"))
    assert set(entries(out)) == {"before-first-apply/Update", "kubectl/Apply"}
    assert entries(out)["before-first-apply/Update"]["time"] == T1


def test_update_managers_are_capped_into_ancient_changes():
    obj = created_deployment()
    update_managed_fields(None, obj, "m0", "Update", "apps/v1", "2024-05-01T10:00:00Z")
    for i in range(1, 13):
        new = copy.deepcopy(obj)
        new["metadata"]["labels"][f"l{i}"] = "v"
        update_managed_fields(obj, new, f"m{i}", "Update", "apps/v1", f"2024-05-01T10:{i:02d}:00Z")
        obj = new
    mf = entries(obj)
    assert len(mf) == 10
    assert sorted(mf) == sorted(["ancient-changes/Update"] + [f"m{i}/Update" for i in range(4, 13)])
    ancient = mf["ancient-changes/Update"]
    assert ancient["time"] == "2024-05-01T10:03:00Z"
    assert {"f:l1", "f:l2", "f:l3", "f:app"} <= set(ancient["fieldsV1"]["f:metadata"]["f:labels"])


def test_apply_to_a_custom_kind_follows_its_schema():
    """A registered CRD schema gives apply its list-map keys and atomic maps (hoisted nested objects)."""
    from apiserver.api import schema
    from kubeling.api.resources import Resource
    crontab = Resource("stable.example.com", "v1", "CronTab", "crontabs", True)
    schema.register_custom(crontab, {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                             "port": {"type": "integer"}}}},
        "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                     "additionalProperties": {"type": "string"}}}}}})
    try:
        body = b"""\
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: a}
spec:
  selector: {app: a}
  ports: [{name: http, port: 80}]
"""
        obj = apply(None, body, manager="m", now=T0)
        assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {
            "f:ports": {'k:{"name":"http"}': {".": {}, "f:name": {}, "f:port": {}}}, "f:selector": {}}}
        other = apply(obj, body.replace(b"[{name: http, port: 80}]", b"[{name: metrics, port: 9090}]")
                      .replace(b"{app: a}", b"{app: b}"), manager="n", force=True, now=T1)
        assert [p["name"] for p in other["spec"]["ports"]] == ["http", "metrics"]
        assert other["spec"]["selector"] == {"app": "b"}
    finally:
        schema.unregister_custom(crontab)
