"""ReplicationControllers end to end on hollow nodes: defaults, self-healing, kubectl scale, table
columns and validation messages."""
from __future__ import annotations

import json

import pytest

from tests.support.clusters import wait_for
from tests.support.hollow import hollow_cluster, namespace


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with hollow_cluster(tmp_path_factory.mktemp("rc"), "replicationcontroller,nodeipam") as api:
        yield api


@pytest.fixture
def ns(cluster, request):
    return namespace(cluster, request)


def rc(replicas: int = 2, labels: dict | None = None, selector: dict | None = None) -> dict:
    spec = {"replicas": replicas, "template": {"metadata": {"labels": labels or {"app": "web"}}, "spec": {
        "containers": [{"name": "nginx", "image": "nginx:1"}]}}}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "web"}, "spec": spec}


def ready_pods(api, ns: str, n: int) -> list[dict] | None:
    ps = [p for p in api.http("GET", f"/api/v1/namespaces/{ns}/pods")[1]["items"]
          if not p["metadata"].get("deletionTimestamp")]
    ok = [p for p in ps if any(c["type"] == "Ready" and c["status"] == "True"
                               for c in p.get("status", {}).get("conditions", []))]
    return ok if len(ps) == len(ok) == n else None


def test_self_heals_scales_and_prints_upstream_columns(cluster, ns):
    k = cluster.kubectl
    stored = json.loads(k("-n", ns, "apply", "-o", "json", "-f", "-", input=json.dumps(rc())).stdout)
    assert stored["spec"]["selector"] == {"app": "web"} and stored["metadata"]["labels"] == {"app": "web"}
    ps = wait_for(lambda: ready_pods(cluster, ns, 2), 30, "2 ready pods")
    for p in ps:
        assert p["metadata"]["name"].startswith("web-")
        ref = p["metadata"]["ownerReferences"][0]
        assert (ref["apiVersion"], ref["kind"], ref["name"], ref["controller"]) == ("v1", "ReplicationController",
                                                                                    "web", True)
    gone = ps[0]["metadata"]["name"]
    k("-n", ns, "delete", "pod", gone)
    healed = wait_for(lambda: ready_pods(cluster, ns, 2), 30, "a replacement pod")
    assert gone not in {p["metadata"]["name"] for p in healed}

    k("-n", ns, "scale", "rc", "web", "--replicas=3")
    wait_for(lambda: ready_pods(cluster, ns, 3), 30, "3 ready pods")
    status = wait_for(lambda: (s := cluster.http("GET", f"/api/v1/namespaces/{ns}/replicationcontrollers/web")[1]
                               ["status"]).get("readyReplicas") == 3 and s, 30, "status readyReplicas 3")
    assert (status["replicas"], status["fullyLabeledReplicas"], status["availableReplicas"]) == (3, 3, 3)
    assert status["observedGeneration"] == 2
    out = k("-n", ns, "get", "rc").stdout.splitlines()
    assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert out[1].split()[:4] == ["web", "3", "3", "3"]
    wide = k("-n", ns, "get", "replicationcontroller", "web", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["nginx", "nginx:1", "app=web"]

    from kubernetes import client, config
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    read = core.read_namespaced_replication_controller("web", ns)
    assert (read.spec.selector, read.status.ready_replicas) == ({"app": "web"}, 3)
    core.patch_namespaced_replication_controller_scale("web", ns, {"spec": {"replicas": 1}})
    wait_for(lambda: ready_pods(cluster, ns, 1), 30, "1 pod left")


def test_matching_orphan_is_adopted(cluster, ns):
    code, orphan, _ = cluster.http("POST", f"/api/v1/namespaces/{ns}/pods", {"metadata": {
        "name": "stray", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}})
    assert code == 201, orphan
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(rc()))
    ps = wait_for(lambda: (p := ready_pods(cluster, ns, 2)) and all(x["metadata"].get("ownerReferences") for x in p)
                  and p, 30, "the stray pod adopted beside one new pod")
    stray = next(p for p in ps if p["metadata"]["name"] == "stray")
    assert stray["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"


def test_validation_messages(cluster, ns):
    def reject(body: dict) -> str:
        code, out, _ = cluster.http("POST", f"/api/v1/namespaces/{ns}/replicationcontrollers", body)
        assert code == 422, out
        return out["message"]

    assert reject(rc(selector={"app": "other"})) == (
        'ReplicationController "web" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"web"}: `selector` does not match template `labels`')
    assert reject(rc(replicas=-1)) == ('ReplicationController "web" is invalid: spec.replicas: Invalid value: -1: '
                                       'must be greater than or equal to 0')
    on_failure = rc()
    on_failure["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert reject(on_failure) == ('ReplicationController "web" is invalid: spec.template.spec.restartPolicy: '
                                  'Unsupported value: "OnFailure": supported values: "Always"')
